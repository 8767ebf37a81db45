/**
 * Source hashing (ip_vs_sh.c): a 256-bucket table, each server holding `weight` consecutive
 * buckets, keyed by the client address (plus the client port with sh-port). With sh-fallback an
 * unusable server (weight 0 or overloaded) makes the lookup walk the table from the original hash
 * to the next usable one; without it the connection gets no server.
 */
import { TAB_BITS, TAB_MASK, TAB_SIZE, assignBuckets } from './buckets.ts';
import { addrFold, hash32 } from './hash.ts';
import { registerScheduler } from './registry.ts';
import { type Dest, type SchedService, type Scheduler, hasFlag } from './types.ts';

const unavailable = (d: Dest | undefined) => !d || d.weight <= 0 || d.overloaded;

export function shHashKey(addr: string, port: number, offset: number): number {
  return (offset + hash32((port + addrFold(addr)) >>> 0, TAB_BITS)) & TAB_MASK;
}

export function createSh(svc: SchedService): Scheduler {
  let table = assignBuckets(svc.dests, true);
  const reassign = () => {
    table = assignBuckets(svc.dests, true);
  };
  return {
    name: 'sh',
    schedule(req) {
      const usePort = hasFlag(svc.flags, 'port', 'sh') && svc.protocol !== 'fwm';
      const port = usePort ? req.sport : 0;
      const ihash = shHashKey(req.saddr, port, 0);
      const first = table[ihash];
      if (!hasFlag(svc.flags, 'fallback', 'sh')) return unavailable(first) ? undefined : first;
      if (!first) return undefined;
      if (!unavailable(first)) return first;
      for (let offset = 0; offset < TAB_SIZE; offset++) {
        const roffset = (offset + ihash) % TAB_SIZE;
        const d = table[shHashKey(req.saddr, port, roffset)];
        if (!unavailable(d)) return d;
      }
      return undefined;
    },
    addDest: reassign,
    delDest: reassign,
    updDest: reassign,
  };
}

registerScheduler({ name: 'sh', description: 'source hashing', create: createSh });
