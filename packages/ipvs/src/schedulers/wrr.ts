/**
 * Weighted round robin (ip_vs_wrr.c): the interleaved, gcd-stepped form. A current weight `cw`
 * starts at the maximum weight (less gcd-1) and drops by the gcd at each pass over the list;
 * servers whose weight is at least `cw` are chosen in list order. Weights 5 and 10 give the
 * sequence 10,10,5 repeated (seed 003), starting where the pass state stands.
 */
import { registerScheduler } from './registry.ts';
import type { Dest, SchedService, Scheduler } from './types.ts';

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

export function createWrr(svc: SchedService): Scheduler {
  const gcdWeight = () => {
    let g = 0;
    for (const d of svc.dests) if (d.weight > 0) g = g > 0 ? gcd(d.weight, g) : d.weight;
    return g || 1;
  };
  const maxWeight = () => svc.dests.reduce((m, d) => Math.max(m, d.weight), 0);
  // cl: index of the last chosen server, -1 = the list head.
  let cl = -1;
  let di = gcdWeight();
  let mw = maxWeight() - (di - 1);
  let cw = mw;

  const changed = () => {
    cl = -1;
    di = gcdWeight();
    mw = maxWeight() - (di - 1);
    if (cw > mw || !di) cw = 0;
    else if (di > 1) cw = Math.trunc(cw / di) * di + 1;
  };

  return {
    name: 'wrr',
    schedule() {
      const list = svc.dests;
      if (mw <= 0 || list.length === 0) return undefined;
      let pos = cl;
      const last = cl;
      let stop = -2;
      let lastPass = false;
      let restarted = false;
      // Each pass lowers cw by di >= 1 from at most mw, so this ends within mw/di + 2 passes.
      for (let guard = 0; guard < 2 * mw + 4; guard++) {
        for (let i = pos + 1; i < list.length; i++) {
          const d = list[i];
          if (!d.overloaded && d.weight >= cw) {
            cl = i;
            return d;
          }
          if (i === stop) {
            cl = i;
            return undefined;
          }
        }
        cw -= di;
        if (cw <= 0) {
          cw = mw;
          if (lastPass || last === -1) {
            cl = -1;
            return undefined;
          }
          restarted = true;
        }
        lastPass = cw <= di;
        if (lastPass && restarted && last !== -1) stop = last;
        pos = -1;
      }
      return undefined;
    },
    addDest: changed,
    delDest: changed,
    updDest: changed,
    dump: () => ({ cl, cw, mw, di }),
  };
}

registerScheduler({ name: 'wrr', description: 'weighted round robin', create: createWrr });
