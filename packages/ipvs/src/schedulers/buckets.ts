/**
 * The 256-bucket tables of dh and sh (IP_VS_{DH,SH}_TAB_BITS = 8), filled as the kernel's
 * reassign does: walk the server list around and around, giving each server one bucket (dh) or
 * `weight` consecutive buckets (sh; a weight-0 server still gets one bucket).
 */
import type { Dest } from './types.ts';

export const TAB_BITS = 8;
export const TAB_SIZE = 1 << TAB_BITS;
export const TAB_MASK = TAB_SIZE - 1;

export function assignBuckets(dests: readonly Dest[], weighted: boolean): (Dest | undefined)[] {
  const table: (Dest | undefined)[] = new Array(TAB_SIZE).fill(undefined);
  if (dests.length === 0) return table;
  let p = 0;
  let count = 0;
  for (let i = 0; i < TAB_SIZE; i++) {
    const d = dests[p];
    table[i] = d;
    if (!weighted || ++count >= d.weight) {
      p = (p + 1) % dests.length;
      count = 0;
    }
  }
  return table;
}
