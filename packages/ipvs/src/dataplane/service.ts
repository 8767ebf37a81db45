/**
 * One virtual service of the data plane: its scheduling state, its real servers with their live
 * counters, persistence templates, and its statistics. Sockets live in tcp.ts/udp.ts; this part is
 * driven by them and by the table swap, and is pure apart from reading the clock.
 */
import { isIPv4 } from 'node:net';
import type { Clock } from '@tandem/core';
import type { RealServer, VirtualService } from '../model.ts';
import { ServiceScheduling } from '../schedulers/service.ts';
import { Dest, afterBind, afterUnbind } from '../schedulers/index.ts';
import { addrFold, ipv6Groups } from '../schedulers/hash.ts';
import { CounterSet, InactiveRing } from './stats.ts';

export class Real extends Dest {
  readonly counters = new CounterSet();
  readonly ring: InactiveRing;
  forwarding: RealServer['forwarding'] = 'masq';

  constructor(address: string, port: number, weight: number, holdS: number) {
    super(address, port, weight);
    this.ring = new InactiveRing(holdS);
  }
}

interface Template {
  real: Real;
  lastUse: number;
  /** Connections opened through this template and still open. */
  controlled: number;
}

export interface ServiceOptions {
  clock: Clock;
  /** Seconds an ended TCP connection still counts as InActConn (kernel TIME_WAIT: 120). */
  inactiveHoldS: number;
  /** Kernel sysctl expire_quiescent_template: a weight-0 server's templates stop sticking. */
  expireQuiescentTemplate: boolean;
}

/** A masking function for persistence: client address → template key. */
function persistMask(netmask: string | undefined): (addr: string) => string {
  if (!netmask) return (a) => a;
  if (netmask.includes('.')) {
    const m = addrFold(netmask);
    if (m === 0xffffffff) return (a) => a;
    return (a) => (a.includes(':') && !a.startsWith('::ffff:') ? a : String((addrFold(a) & m) >>> 0));
  }
  const bits = Number(netmask);
  if (!Number.isInteger(bits) || bits >= 128 || bits < 0) return (a) => a;
  return (a) => {
    if (isIPv4(a)) return a;
    const g = ipv6Groups(a);
    const out: number[] = [];
    for (let i = 0; i < 8; i++) {
      const keep = Math.max(0, Math.min(16, bits - i * 16));
      out.push(keep === 0 ? 0 : g[i] & ((0xffff << (16 - keep)) & 0xffff));
    }
    return out.map((x) => x.toString(16)).join(':');
  };
}

export class ServiceState {
  readonly id: string;
  config: VirtualService;
  readonly sched: ServiceScheduling;
  readonly counters = new CounterSet();
  /** Removed reals that may still have open connections; re-adding revives them (kernel trash). */
  readonly #trash = new Map<string, Real>();
  readonly #templates = new Map<string, Template>();
  #mask: (addr: string) => string = (a) => a;
  readonly #opts: ServiceOptions;
  /** Warnings already given for this service (one per kind). */
  readonly warned = new Set<string>();
  /** Set when the service was deleted from the table; open connections finish. */
  deleted = false;
  /** Whether scheduling needs the client's address (persistence, source hashing). */
  needsClientAddress = false;

  constructor(id: string, config: VirtualService, opts: ServiceOptions) {
    this.id = id;
    this.config = config;
    this.#opts = opts;
    this.sched = new ServiceScheduling(config.scheduler, {
      flags: config.schedFlags ?? [],
      clock: opts.clock,
      protocol: config.protocol,
    });
    this.#mask = persistMask(config.persistence?.netmask);
  }

  get reals(): Real[] {
    return this.sched.dests as Real[];
  }

  /** Applies a new version of the service: scheduler, flags, persistence, reals (ipvsadm -E/-a/-e/-d). */
  reconfigure(next: VirtualService): void {
    // First, because an unknown scheduler throws and must leave the service as it was.
    this.sched.setScheduler(next.scheduler);
    this.config = next;
    this.sched.setFlags(next.schedFlags ?? []);
    this.#mask = persistMask(next.persistence?.netmask);
    if (!next.persistence) this.#templates.clear();
    this.needsClientAddress = !!next.persistence || next.scheduler === 'sh' || next.scheduler === 'mh';
    const wanted = new Map(next.reals.map((r) => [`${r.address}|${r.port}`, r]));
    for (const d of [...this.reals]) {
      if (!wanted.has(`${d.address}|${d.port}`)) {
        this.sched.remove(d);
        this.#trash.set(`${d.address}|${d.port}`, d);
      }
    }
    for (const r of next.reals) {
      const th = { upper: r.upperThreshold ?? 0, lower: r.lowerThreshold ?? 0 };
      const have = this.sched.find(r.address, r.port) as Real | undefined;
      if (have) {
        if (have.weight !== r.weight || have.upperThreshold !== th.upper || have.lowerThreshold !== th.lower) this.sched.edit(have, r.weight, th);
        have.forwarding = r.forwarding;
        continue;
      }
      const key = `${r.address}|${r.port}`;
      const revive = this.#trash.get(key);
      this.#trash.delete(key);
      const d = this.sched.add(r.address, r.port, r.weight, th, revive ?? new Real(r.address, r.port, r.weight, this.#opts.inactiveHoldS)) as Real;
      d.forwarding = r.forwarding;
    }
  }

  /**
   * Chooses the real server for a new connection from `saddr:sport`: the persistence template if
   * one is valid, else the scheduler. `exclude` holds reals that already failed for this client
   * connection; a scheduler answer among them is replaced by the first other usable real.
   */
  pick(saddr: string, sport: number, exclude?: readonly Real[]): Real | undefined {
    const persist = this.config.persistence;
    let key = '';
    if (persist && persist.timeoutS > 0) {
      key = this.#mask(saddr);
      const t = this.#templates.get(key);
      if (t) {
        const now = this.#opts.clock.now();
        const expired = t.controlled === 0 && now - t.lastUse >= persist.timeoutS * 1000;
        const invalid = !t.real.available || (this.#opts.expireQuiescentTemplate && t.real.weight === 0);
        if (!expired && !invalid && !exclude?.includes(t.real)) {
          t.lastUse = now;
          return t.real;
        }
        this.#dropTemplate(key, t);
      }
    }
    let d = this.sched.schedule({ saddr, sport, daddr: this.config.address, dport: this.config.port }) as Real | undefined;
    if (d && exclude?.includes(d)) {
      d = undefined;
      for (const x of this.reals) {
        if (x.weight > 0 && !x.overloaded && !exclude.includes(x)) {
          d = x;
          break;
        }
      }
    }
    if (d && key) {
      this.#templates.set(key, { real: d, lastUse: this.#opts.clock.now(), controlled: 0 });
      d.persistConns++;
    }
    return d;
  }

  #dropTemplate(key: string, t: Template): void {
    this.#templates.delete(key);
    t.real.persistConns--;
  }

  /** A connection of client `saddr` now runs through a template (keeps it alive). */
  templateHold(saddr: string, delta: 1 | -1): void {
    if (!this.config.persistence) return;
    const t = this.#templates.get(this.#mask(saddr));
    if (!t) return;
    t.controlled = Math.max(0, t.controlled + delta);
    t.lastUse = this.#opts.clock.now();
  }

  /** A new connection was bound to d (counted as inactive until established). */
  bind(d: Real): void {
    d.inactConns++;
    d.counters.conns++;
    this.counters.conns++;
    afterBind(d);
  }

  /** Housekeeping: expire persistence templates and TIME_WAIT-like inactive entries. */
  tick(nowMs: number): void {
    const persist = this.config.persistence;
    if (persist) {
      for (const [k, t] of this.#templates) {
        if (t.controlled === 0 && nowMs - t.lastUse >= persist.timeoutS * 1000) this.#dropTemplate(k, t);
      }
    }
    for (const d of this.reals) expireInactive(d, nowMs);
    for (const [k, d] of this.#trash) {
      expireInactive(d, nowMs);
      if (d.activeConns === 0 && d.inactConns === 0 && d.persistConns <= 0) this.#trash.delete(k);
    }
  }

  get templateCount(): number {
    return this.#templates.size;
  }
}

function expireInactive(d: Real, nowMs: number): void {
  const gone = d.ring.advance(nowMs / 1000);
  if (gone > 0) {
    d.inactConns -= gone;
    afterUnbind(d);
  }
}
