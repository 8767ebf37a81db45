/** Least connection (ip_vs_lc.c): lowest active*256+inactive; ties keep the first in list order. */
import { registerScheduler } from './registry.ts';
import { type Dest, type SchedService, type Scheduler, connOverhead } from './types.ts';

export function createLc(svc: SchedService): Scheduler {
  return {
    name: 'lc',
    schedule() {
      let least: Dest | undefined;
      let loh = 0;
      for (const d of svc.dests) {
        if (d.overloaded || d.weight === 0) continue;
        const doh = connOverhead(d);
        if (!least || doh < loh) {
          least = d;
          loh = doh;
        }
      }
      return least;
    },
  };
}

registerScheduler({ name: 'lc', description: 'least-connection', create: createLc });
