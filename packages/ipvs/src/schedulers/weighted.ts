/**
 * The weighted-least family shared by wlc, sed and lblc/lblcr: the first usable server, then any
 * later one with a lower overhead/weight ratio (compared by cross-multiplying, as the kernel does,
 * so weight 0 servers after the first never win).
 */
import type { Dest } from './types.ts';

export function weightedLeast(dests: readonly Dest[], overhead: (d: Dest) => number): Dest | undefined {
  let i = 0;
  let least: Dest | undefined;
  for (; i < dests.length; i++) {
    const d = dests[i];
    if (!d.overloaded && d.weight > 0) {
      least = d;
      break;
    }
  }
  if (!least) return undefined;
  let loh = overhead(least);
  for (i++; i < dests.length; i++) {
    const d = dests[i];
    if (d.overloaded) continue;
    const doh = overhead(d);
    if (loh * d.weight > doh * least.weight) {
      least = d;
      loh = doh;
    }
  }
  return least;
}
