/**
 * Never queue (ip_vs_nq.c): the first idle server (no active connections) in list order, else
 * shortest expected delay.
 */
import { registerScheduler } from './registry.ts';
import type { Dest, SchedService, Scheduler } from './types.ts';

export function createNq(svc: SchedService): Scheduler {
  return {
    name: 'nq',
    schedule() {
      let least: Dest | undefined;
      let loh = 0;
      for (const d of svc.dests) {
        if (d.overloaded || !d.weight) continue;
        const doh = d.activeConns + 1;
        if (d.activeConns === 0) return d;
        if (!least || loh * d.weight > doh * least.weight) {
          least = d;
          loh = doh;
        }
      }
      return least;
    },
  };
}

registerScheduler({ name: 'nq', description: 'never queue', create: createNq });
