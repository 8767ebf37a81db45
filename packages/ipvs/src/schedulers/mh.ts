/**
 * Maglev hashing (ip_vs_mh.c, Eisenbud et al. NSDI'16 section 3.4): every server gets a
 * permutation of the lookup table from two hsiphash values of its address and port, and the
 * servers take turns (weight/gcd turns each) claiming their next free preferred slot until the
 * table is full. A client address (plus port with mh-port) hashes to one slot. The table has the
 * kernel's default size, 4093 entries (CONFIG_IP_VS_MH_TAB_INDEX=12); another prime of the kernel's
 * list may be chosen. A quiesced (weight 0) server keeps its slots (last_weight), so its clients
 * are not remapped to others when it comes back; with mh-fallback they go to the next usable slot
 * meanwhile.
 */
import { addrFold, hsiphash32 } from './hash.ts';
import { registerScheduler } from './registry.ts';
import { type Dest, type SchedService, type Scheduler, hasFlag } from './types.ts';

export const MH_PRIMES = [251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071] as const;
export const MH_DEFAULT_TAB_INDEX = 12;

const K1 = 2654435761n;
const K2 = 2654435801n;

const unavailable = (d: Dest) => d.weight <= 0 || d.overloaded;

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

function fls(x: number): number {
  return x === 0 ? 0 : 32 - Math.clz32(x);
}

export function mhHashKey(addr: string, port: number, key: bigint, offset: number): number {
  return hsiphash32((offset + port + addrFold(addr)) >>> 0, key, key);
}

/** Builds the lookup table for the servers in list order (ip_vs_mh_permutate + populate). */
export function mhPopulate(dests: readonly Dest[], tabIndex = MH_DEFAULT_TAB_INDEX): (Dest | undefined)[] {
  const size = MH_PRIMES[tabIndex - 8];
  if (size === undefined) throw new RangeError(`mh table index ${tabIndex} outside 8..17`);
  const bits = Math.trunc(tabIndex / 2);
  const lookup: (Dest | undefined)[] = new Array(size).fill(undefined);
  let g = 0;
  let maxW = 0;
  for (const d of dests) {
    if (d.lastWeight > 0) g = g > 0 ? gcd(d.lastWeight, g) : d.lastWeight;
    if (d.lastWeight > maxW) maxW = d.lastWeight;
  }
  if (g < 1) return lookup;
  const shift = Math.max(0, fls(Math.trunc(maxW / g)) - bits);
  const setup = dests.map((d) => {
    const offset = mhHashKey(d.address, d.port, K1, 0) % size;
    const skip = (mhHashKey(d.address, d.port, K2, 0) % (size - 1)) + 1;
    const turns = (Math.trunc(d.lastWeight / g) >> shift) || (d.lastWeight !== 0 ? 1 : 0);
    return { offset, skip, perm: offset, turns };
  });
  const taken = new Uint8Array(size);
  let n = 0;
  let dtCount = 0;
  // Every pass over the list fills at least one slot (g >= 1 means some server has turns >= 1).
  while (n < size) {
    for (let p = 0; p < dests.length; ) {
      const ds = setup[p];
      if (ds.turns < 1) {
        p++;
        continue;
      }
      let c = ds.perm;
      while (taken[c]) {
        ds.perm += ds.skip;
        if (ds.perm >= size) ds.perm -= size;
        c = ds.perm;
      }
      taken[c] = 1;
      lookup[c] = dests[p];
      if (++n === size) return lookup;
      if (++dtCount >= ds.turns) {
        dtCount = 0;
        p++;
      }
    }
  }
  return lookup;
}

export function createMh(svc: SchedService, tabIndex = MH_DEFAULT_TAB_INDEX): Scheduler {
  const size = MH_PRIMES[tabIndex - 8];
  let lookup = mhPopulate(svc.dests, tabIndex);
  const changed = () => {
    lookup = mhPopulate(svc.dests, tabIndex);
  };
  return {
    name: 'mh',
    schedule(req) {
      const port = hasFlag(svc.flags, 'port', 'mh') && svc.protocol !== 'fwm' ? req.sport : 0;
      const ihash = mhHashKey(req.saddr, port, K1, 0) % size;
      const first = lookup[ihash];
      if (!first) return undefined;
      if (!unavailable(first)) return first;
      if (!hasFlag(svc.flags, 'fallback', 'mh')) return undefined;
      for (let offset = 0; offset < size; offset++) {
        const roffset = (offset + ihash) % size;
        const d = lookup[mhHashKey(req.saddr, port, K1, roffset) % size];
        if (!d) break;
        if (!unavailable(d)) return d;
      }
      return undefined;
    },
    addDest: changed,
    delDest: changed,
    updDest: changed,
    dump: () => ({ tableSize: size }),
  };
}

registerScheduler({ name: 'mh', description: 'maglev hashing', create: (svc) => createMh(svc) });
