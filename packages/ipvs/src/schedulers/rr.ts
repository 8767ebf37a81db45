/**
 * Round robin (ip_vs_rr.c): continue after the last chosen server, skip overloaded and weight-0
 * ones, at most one full turn. Removing the server under the cursor moves the cursor back one, so
 * the next pick is the server that followed it.
 */
import { registerScheduler } from './registry.ts';
import type { Dest, SchedService, Scheduler } from './types.ts';

export function createRr(svc: SchedService): Scheduler {
  let cursor: Dest | undefined; // undefined = list head
  return {
    name: 'rr',
    schedule() {
      const list = svc.dests;
      const n = list.length;
      if (n === 0) return undefined;
      const start = cursor ? list.indexOf(cursor) : -1;
      for (let k = 1; k <= n; k++) {
        const i = (start + k) % n;
        const d = list[i];
        if (!d.overloaded && d.weight > 0) {
          cursor = d;
          return d;
        }
      }
      return undefined;
    },
    delDest(d, formerIndex) {
      if (cursor === d) cursor = formerIndex > 0 ? svc.dests[formerIndex - 1] : undefined;
    },
    dump: () => ({ cursor: cursor?.id ?? null }),
  };
}

registerScheduler({ name: 'rr', description: 'round robin', create: createRr });
