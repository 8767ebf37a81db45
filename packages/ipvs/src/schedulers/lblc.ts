/**
 * Locality-based least connection (ip_vs_lblc.c): a cache maps a DESTINATION address to the server
 * last chosen for it; that server keeps the address unless it is gone, at weight 0, or overloaded
 * in lblc's sense (more active connections than its weight while some server is under half its
 * weight). Otherwise weighted least connection picks a new one and the cache is updated. Entries
 * unused for 24 hours expire (lblc_expiration). Behind the proxy the destination is the virtual
 * address, so a service behaves as wlc with stickiness to the last server.
 */
import { registerScheduler } from './registry.ts';
import { type Dest, type SchedService, type Scheduler, connOverhead } from './types.ts';
import { weightedLeast } from './weighted.ts';

export const LBLC_EXPIRATION_MS = 24 * 3600 * 1000;

/** is_overloaded of lblc/lblcr. */
export function lblcOverloaded(d: Dest, dests: readonly Dest[]): boolean {
  if (d.activeConns > d.weight) {
    for (const x of dests) if (x.activeConns * 2 < x.weight) return true;
  }
  return false;
}

export function createLblc(svc: SchedService, expirationMs = LBLC_EXPIRATION_MS): Scheduler {
  const cache = new Map<string, { dest: Dest; lastUse: number }>();
  return {
    name: 'lblc',
    schedule(req) {
      const now = svc.clock.now();
      const en = cache.get(req.daddr);
      if (en && now - en.lastUse > expirationMs) cache.delete(req.daddr);
      else if (en) {
        en.lastUse = now;
        const d = en.dest;
        if (d.available && d.weight > 0 && !lblcOverloaded(d, svc.dests)) return d;
      }
      const dest = weightedLeast(svc.dests, connOverhead);
      if (!dest) return undefined;
      cache.set(req.daddr, { dest, lastUse: now });
      return dest;
    },
    dump: () => ({ cacheEntries: cache.size }),
  };
}

registerScheduler({ name: 'lblc', description: 'locality-based least-connection', create: (svc) => createLblc(svc) });
