/** Weighted failover (ip_vs_fo.c): the usable server with the highest weight; ties: first in list. */
import { registerScheduler } from './registry.ts';
import type { Dest, SchedService, Scheduler } from './types.ts';

export function createFo(svc: SchedService): Scheduler {
  return {
    name: 'fo',
    schedule() {
      let best: Dest | undefined;
      let hw = 0;
      for (const d of svc.dests) {
        if (!d.overloaded && d.weight > hw) {
          best = d;
          hw = d.weight;
        }
      }
      return best;
    },
  };
}

registerScheduler({ name: 'fo', description: 'weighted failover', create: createFo });
