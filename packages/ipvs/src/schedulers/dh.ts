/**
 * Destination hashing (ip_vs_dh.c): a static 256-bucket table keyed by the packet's DESTINATION
 * address. Behind the userspace proxy the destination is always the virtual address, so one
 * service sends every connection to one server (as kernel dh does for a plain VIP; dh is meant for
 * firewall-mark cache clusters). No fallback: an unusable bucket server means no server.
 */
import { TAB_MASK, assignBuckets } from './buckets.ts';
import { addrFold, multHash } from './hash.ts';
import { registerScheduler } from './registry.ts';
import type { SchedService, Scheduler } from './types.ts';

export function createDh(svc: SchedService): Scheduler {
  let table = assignBuckets(svc.dests, false);
  const reassign = () => {
    table = assignBuckets(svc.dests, false);
  };
  return {
    name: 'dh',
    schedule(req) {
      const d = table[multHash(addrFold(req.daddr), TAB_MASK)];
      if (!d || !d.available || d.weight <= 0 || d.overloaded) return undefined;
      return d;
    },
    addDest: reassign,
    delDest: reassign,
    updDest: reassign,
  };
}

registerScheduler({ name: 'dh', description: 'destination hashing', create: createDh });
