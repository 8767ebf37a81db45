/**
 * Locality-based least connection with replication (ip_vs_lblcr.c): a cache maps a destination
 * address to a SET of servers. The least loaded usable member serves; when it is missing or
 * overloaded (lblc's sense) weighted least connection picks one more member. A set with more than
 * one member that has not changed for the expiration time loses its most loaded member.
 */
import { lblcOverloaded } from './lblc.ts';
import { registerScheduler } from './registry.ts';
import { type Dest, type SchedService, type Scheduler, connOverhead } from './types.ts';
import { weightedLeast } from './weighted.ts';

export const LBLCR_EXPIRATION_MS = 24 * 3600 * 1000;

interface DestSet {
  /** Most recently inserted first, as list_add_rcu. */
  members: Dest[];
  lastMod: number;
  lastUse: number;
}

function setMin(set: DestSet): Dest | undefined {
  let i = 0;
  let least: Dest | undefined;
  for (; i < set.members.length; i++) {
    const d = set.members[i];
    if (d.overloaded) continue;
    if (d.weight > 0 && d.available) {
      least = d;
      break;
    }
  }
  if (!least) return undefined;
  let loh = connOverhead(least);
  for (i++; i < set.members.length; i++) {
    const d = set.members[i];
    if (d.overloaded) continue;
    const doh = connOverhead(d);
    if (loh * d.weight > doh * least.weight && d.available) {
      least = d;
      loh = doh;
    }
  }
  return least;
}

function setMax(set: DestSet): Dest | undefined {
  if (set.members.length === 0) return undefined;
  let most = set.members[0];
  let moh = connOverhead(most);
  for (const d of set.members.slice(1)) {
    const doh = connOverhead(d);
    if (moh * d.weight < doh * most.weight && d.weight > 0) {
      most = d;
      moh = doh;
    }
  }
  return most;
}

export function createLblcr(svc: SchedService, expirationMs = LBLCR_EXPIRATION_MS): Scheduler {
  const cache = new Map<string, DestSet>();
  const insert = (set: DestSet, d: Dest, now: number) => {
    if (!set.members.includes(d)) set.members.unshift(d);
    set.lastMod = now;
  };
  return {
    name: 'lblcr',
    schedule(req) {
      const now = svc.clock.now();
      let en = cache.get(req.daddr);
      if (en && now - en.lastUse > expirationMs) {
        cache.delete(req.daddr);
        en = undefined;
      }
      if (en) {
        en.lastUse = now;
        const min = setMin(en);
        if (en.members.length > 1 && now - en.lastMod > expirationMs) {
          const m = setMax(en);
          if (m) {
            en.members.splice(en.members.indexOf(m), 1);
            en.lastMod = now;
          }
        }
        if (min && !lblcOverloaded(min, svc.dests)) return min;
        const dest = weightedLeast(svc.dests, connOverhead);
        if (!dest) return undefined;
        insert(en, dest, now);
        return dest;
      }
      const dest = weightedLeast(svc.dests, connOverhead);
      if (!dest) return undefined;
      const set: DestSet = { members: [], lastMod: now, lastUse: now };
      insert(set, dest, now);
      cache.set(req.daddr, set);
      return dest;
    },
    dump: () => ({ cacheEntries: cache.size }),
  };
}

registerScheduler({ name: 'lblcr', description: 'locality-based least-connection with replication', create: (svc) => createLblcr(svc) });
