/**
 * Weighted overflow (ip_vs_ovf.c): the highest-weight server whose active connections do not
 * exceed its weight; when it has more, the next highest takes the overflow.
 */
import { registerScheduler } from './registry.ts';
import type { Dest, SchedService, Scheduler } from './types.ts';

export function createOvf(svc: SchedService): Scheduler {
  return {
    name: 'ovf',
    schedule() {
      let h: Dest | undefined;
      for (const d of svc.dests) {
        const w = d.weight;
        if (d.overloaded || d.activeConns > w || w === 0) continue;
        if (!h || w > h.weight) h = d;
      }
      return h;
    },
  };
}

registerScheduler({ name: 'ovf', description: 'weighted overflow', create: createOvf });
