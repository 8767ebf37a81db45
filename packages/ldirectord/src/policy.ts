import type { EntryChange } from '@tandem/ipvs/diff';
import { endpoint, serviceId, type IpvsOp, type IpvsTable, type RealServer, type ServiceKey, type VirtualService } from '@tandem/ipvs/model';
import type { Verdict } from './checks/types.ts';
import type { LdConfig, LdReal, LdVirtual } from './config.ts';

/**
 * ldirectord's decisions as a pure state machine (reference/ldirectord.md §4): verdicts, forced
 * downs (maintenance) and the actual table go in; the desired IPVS table and a list of decisions
 * (the log lines ldirectord writes, fallbackcommand runs, e-mail alerts) come out. No I/O, no
 * clock: the daemon passes the time of each verdict, applies the table and runs the commands.
 *
 * What it keeps from ldirectord: failurecount counts consecutive failures only while a real is up
 * and a success resets it; quiescent=yes sets weight 0 on failure and the configured weight on
 * recovery, quiescent=no deletes and re-adds; the fallback (weight 1, never checked, never
 * quiesced) is in the table exactly while no real of its virtual is up; fallbackcommand runs
 * `start`/`stop` once per change of that; readdquiescent re-adds a missing down real at weight 0;
 * reals already in the table with a weight are taken as up at start-up and reload.
 *
 * What it does differently, on purpose: no start-up flap (a real never checked is never given
 * traffic); a gate/ipip real on another port than its virtual is restored (ldirectord never
 * restores it after a quiesce); the desired table is complete, so a real deleted or re-weighted
 * behind its back is healed on the next pass, not at the next transition; thresholds survive a
 * quiesce.
 */

export type DecisionKind =
  | 'virtual-added' | 'virtual-changed' | 'virtual-purged'
  | 'real-added' | 'real-restored' | 'real-quiesced' | 'real-readded-quiescent' | 'real-deleted' | 'real-down-absent'
  | 'real-purged' | 'soft-failure' | 'failure-reset' | 'maintenance-on' | 'maintenance-off'
  | 'fallback-added' | 'fallback-deleted' | 'fallbackcommand';

export interface Decision {
  kind: DecisionKind;
  /** The line ldirectord would log for it (`Deleted real server: 127.0.0.12:80 (127.0.0.100:80)`). */
  message: string;
  virtualId?: string | undefined;
  realId?: string | undefined;
  /** ldirectord sends an e-mail alert for this one (add/restore/quiesce/delete of a real or fallback). */
  alert?: boolean | undefined;
  /** For fallbackcommand: shell text to run (`<cmd> start 127.0.0.100:80 tcp`). */
  command?: string | undefined;
}

export interface RealState {
  up: boolean;
  /** No verdict yet since this config was loaded (and not found up in the table). */
  pending: boolean;
  failCount: number;
  maintenance: boolean;
  /**
   * While down in a quiescent virtual: 'place' keeps it in the table at weight 0 (start-up,
   * readdquiescent=yes); 'keep-if-present' leaves it out once someone removed it (readdquiescent=no).
   */
  placement: 'place' | 'keep-if-present';
  lastVerdict?: (Verdict & { at: number }) | undefined;
  /** When up/down last changed (the daemon's clock), for status. */
  since?: number | undefined;
}

interface VirtualState {
  /** Last fallbackcommand action run ('start' = no real up), undefined before the first. */
  command?: 'start' | 'stop' | undefined;
  /** Whether the fallback is (about to be) in the table, as decided so far. */
  fallbackOn?: boolean | undefined;
}

export interface RealStatus {
  id: string;
  address: string;
  port: number;
  forwarding: string;
  weight: number;
  configuredWeight: number;
  up: boolean;
  pending: boolean;
  failCount: number;
  maintenance: boolean;
  lastVerdict?: { up: boolean; reason: string; durationMs: number; at: number } | undefined;
}

export interface VirtualStatus {
  id: string;
  label: string;
  scheduler: string;
  quiescent: boolean;
  fallback?: string | undefined;
  fallbackActive: boolean;
  realsUp: number;
  reals: RealStatus[];
}

/** Shared empty result of verdict(); callers only read it. */
const NO_DECISIONS: Decision[] = [];
Object.freeze(NO_DECISIONS);

function sameSpec(a: LdReal, b: LdReal): boolean {
  return JSON.stringify(a.check) === JSON.stringify(b.check);
}

interface RealEntry {
  real: LdReal;
  virtual: LdVirtual;
  state: RealState;
  /** Position of its entry in desired() (virtuals in order, each one's reals, then its fallback). */
  rank: number;
  /** Its endpoint in the table, made on first use (each transition looks it up). */
  ep?: string | undefined;
}

interface VirtualEntry {
  virtual: LdVirtual;
  state: VirtualState;
  /** The service as desired() gives it, without reals: the one object every EntryChange of this virtual names. */
  service: VirtualService;
  /** rank of the fallback's entry (after every real of the virtual). */
  fallbackRank: number;
}

export class Policy {
  readonly config: LdConfig;
  readonly #reals = new Map<string, RealEntry>();
  readonly #virtuals = new Map<string, VirtualEntry>();
  /**
   * Reals whose entry in desired() may differ from the one in the last table handed out
   * (takeChanges, dropChanges), and virtuals whose fallback entry may: what a reconcile between
   * heal passes has to look at instead of the whole table.
   */
  readonly #changedReals = new Set<RealEntry>();
  readonly #changedFallbacks = new Set<VirtualEntry>();
  readonly #owned: Set<string>;
  #lastActual: IpvsTable = { services: [] };
  /** #lastActual by service id and real endpoint (built on demand: 10,000 reals must not cost N² lookups). */
  #index: Map<string, { service: VirtualService; reals: Map<string, RealServer> }> | undefined;
  /** Reals up per virtual, kept with every change of a real's up flag. */
  readonly #upCount = new Map<string, number>();
  /** Bumped by every change desired() depends on (a real's up flag, and with it its placement). */
  #version = 0;
  /**
   * The last desired() result, reused while nothing it depends on changed: the table it was
   * computed from matters only when a readdquiescent=no real's presence was looked up (`actual`).
   */
  #desiredCache: { version: number; actual: IpvsTable | undefined; table: IpvsTable } | undefined;

  /**
   * `previous` is the policy of the configuration this one replaces (reload): a real with the same
   * id and the same check keeps its state (up/down, soft failures, maintenance, last verdict), and
   * each virtual keeps its fallbackcommand state, so a reload that changes nothing decides nothing.
   */
  constructor(config: LdConfig, previous?: Policy) {
    this.config = config;
    let rank = 0;
    for (const v of config.virtuals) {
      const pv = previous ? previous.#virtuals.get(v.id) : undefined;
      const service = this.#service(v);
      this.#virtuals.set(v.id, { virtual: v, state: { command: pv?.state.command, fallbackOn: undefined }, service, fallbackRank: rank + v.reals.length });
      for (const r of v.reals) {
        const prev = previous ? previous.#reals.get(r.id) : undefined;
        const state: RealState = prev && sameSpec(prev.real, r)
          ? { ...prev.state, placement: 'place' }
          : { up: false, pending: true, failCount: 0, maintenance: false, placement: 'place' };
        if (prev && !sameSpec(prev.real, r)) state.maintenance = prev.state.maintenance;
        this.#reals.set(r.id, { real: r, virtual: v, state, rank: rank++ });
        if (state.up) this.#upCount.set(v.id, (this.#upCount.get(v.id) ?? 0) + 1);
      }
      rank++;
    }
    this.#owned = new Set(config.virtuals.map((v) => v.id));
  }

  /** True for the virtual services this config manages; nothing else in the table is touched. */
  owns(key: ServiceKey): boolean {
    return this.#owned.has(serviceId(key));
  }

  realIds(): string[] {
    return [...this.#reals.keys()];
  }

  real(id: string): { real: LdReal; virtual: LdVirtual; state: Readonly<RealState> } | undefined {
    return this.#reals.get(id);
  }

  /**
   * Start-up and reload against the table as it is: reals present with a weight are up (their
   * traffic keeps flowing), checktype=on reals are up, everything else waits for its first check.
   * `previouslyOwned` are the virtuals of the replaced config (reload), purged when dropped.
   */
  start(actual: IpvsTable, previouslyOwned: Iterable<string> = []): Decision[] {
    this.#observe(actual);
    const out: Decision[] = [];
    const actualById = new Map(actual.services.map((s) => [serviceId(s), s]));
    for (const { virtual: v } of this.#virtuals.values()) {
      const have = actualById.get(v.id);
      const want = this.#service(v);
      if (!have) out.push({ kind: 'virtual-added', virtualId: v.id, message: `Added virtual server: ${v.label}` });
      else if (serviceDiffers(have, want)) out.push({ kind: 'virtual-changed', virtualId: v.id, message: `Changed virtual server: ${v.label}` });
      const configured = new Set<string>();
      for (const r of v.reals) {
        const entry = this.#reals.get(r.id)!;
        const st = entry.state;
        configured.add(endpoint(r.address, r.ipvsPort));
        const present = this.#present(v.id, r.address, r.ipvsPort);
        if (v.checktype === 'on' && !st.maintenance) {
          this.#setUp(entry, true);
          st.pending = false;
        } else if (v.checktype === 'off') {
          this.#setUp(entry, false);
          st.pending = false;
        } else if (st.pending && present && present.weight > 0 && !st.maintenance) {
          this.#setUp(entry, true);
        }
        if (st.up && present && realDiffers(present, this.#realEntry(r, r.weight))) {
          out.push({ kind: 'real-restored', virtualId: v.id, realId: r.id, alert: true, message: `Restored real server: ${this.#rl(r, v)} (Weight set to ${r.weight})` });
        } else if (st.up && !present) {
          out.push({ kind: 'real-added', virtualId: v.id, realId: r.id, alert: true, message: `Added real server: ${this.#rl(r, v)} (Weight set to ${r.weight})` });
        } else if (!st.up && v.quiescent && !present) {
          out.push({ kind: 'real-readded-quiescent', virtualId: v.id, realId: r.id, message: `Readd Quiescent real server: ${this.#rl(r, v)} (Weight set to 0)` });
        } else if (!st.up && v.quiescent && present && present.weight !== 0) {
          out.push({ kind: 'real-quiesced', virtualId: v.id, realId: r.id, alert: true, message: `Quiescent real server: ${this.#rl(r, v)} (Weight set to 0)` });
        } else if (!st.up && !v.quiescent && present) {
          out.push({ kind: 'real-deleted', virtualId: v.id, realId: r.id, alert: true, message: `Deleted real server: ${this.#rl(r, v)}` });
        }
      }
      if (have) {
        const fb = v.fallback ? endpoint(v.fallback.address, v.fallback.ipvsPort) : undefined;
        for (const x of have.reals) {
          const ep = endpoint(x.address, x.port);
          if (configured.has(ep) || ep === fb) continue;
          out.push({ kind: 'real-purged', virtualId: v.id, message: `Purged real server (start): ${ep} (${v.label})` });
        }
      }
      out.push(...this.#fallbackDecisions(v));
    }
    for (const id of previouslyOwned) {
      if (this.#owned.has(id) || !actualById.has(id)) continue;
      const s = actualById.get(id)!;
      out.push({ kind: 'virtual-purged', virtualId: id, message: `Purged virtual server (start): ${s.protocol === 'fwm' ? String(s.fwmark) : endpoint(s.address, s.port)}` });
    }
    return out;
  }

  /** A check result for one real (by its id). `at` is the daemon's clock, for status only. */
  verdict(realId: string, v: Verdict, at = 0): Decision[] {
    const entry = this.#reals.get(realId);
    if (!entry) return [];
    const { real: r, virtual: vs, state: st } = entry;
    // Updated in place: a new object per verdict would outlive the young generation (it stays
    // referenced until the next check) and fill the old one with garbage at thousands of checks a second.
    const last = st.lastVerdict;
    if (last) {
      last.up = v.up;
      last.reason = v.reason;
      last.durationMs = v.durationMs;
      last.at = at;
    } else st.lastVerdict = { up: v.up, reason: v.reason, durationMs: v.durationMs, at };
    if (st.maintenance) return NO_DECISIONS;
    if (vs.checktype === 'on') return this.#transition(entry, true, at);
    if (vs.checktype === 'off') return this.#transition(entry, false, at);
    if (v.up && st.failCount === 0 && st.up) {
      // The common case (an up real stays up) decides nothing and allocates nothing.
      st.pending = false;
      return NO_DECISIONS;
    }
    if (!v.up && !st.up) {
      // ldirectord counts failures only while a real is up; a real that is down stays down quietly.
      st.pending = false;
      return NO_DECISIONS;
    }
    const out: Decision[] = [];
    if (v.up) {
      if (st.failCount > 0) out.push({ kind: 'failure-reset', virtualId: vs.id, realId: r.id, message: `Resetting soft failure count: ${this.#rl2(r, vs)}` });
      st.failCount = 0;
      if (!st.up) out.push(...this.#transition(entry, true, at));
      st.pending = false;
      return out;
    }
    if (!st.up) {
      // ldirectord counts failures only while a real is up; a real that is down stays down quietly.
      st.pending = false;
      return out;
    }
    st.failCount++;
    if (st.failCount < vs.failureCount) {
      out.push({ kind: 'soft-failure', virtualId: vs.id, realId: r.id, message: `Soft failure real server: ${this.#rl2(r, vs)} failure ${st.failCount}/${vs.failureCount} (${v.reason})` });
      return out;
    }
    out.push(...this.#transition(entry, false, at, v.reason));
    return out;
  }

  /** A real forced down (a file for it in maintenancedir) or released. Forced downs skip failurecount. */
  maintenance(realId: string, on: boolean, at = 0): Decision[] {
    const entry = this.#reals.get(realId);
    if (!entry || entry.state.maintenance === on) return [];
    const { real: r, virtual: v, state: st } = entry;
    st.maintenance = on;
    if (on) {
      const out: Decision[] = [{ kind: 'maintenance-on', virtualId: v.id, realId: r.id, message: `Real server in maintenance: ${this.#rl2(r, v)}` }];
      st.failCount = 0;
      out.push(...this.#transition(entry, false, at, 'maintenance'));
      return out;
    }
    // Released: it comes back with its next successful check (checktype=on at once).
    st.pending = v.checktype !== 'on';
    const out: Decision[] = [{ kind: 'maintenance-off', virtualId: v.id, realId: r.id, message: `Real server out of maintenance: ${this.#rl2(r, v)}` }];
    if (v.checktype === 'on') out.push(...this.#transition(entry, true, at));
    return out;
  }

  #transition(entry: RealEntry, up: boolean, at: number, reason?: string): Decision[] {
    const { real: r, virtual: v, state: st } = entry;
    st.pending = false;
    if (st.up === up) return [];
    const present = this.#indexed().get(v.id)?.reals.get(entry.ep ??= endpoint(r.address, r.ipvsPort));
    const out: Decision[] = [];
    this.#setUp(entry, up);
    st.since = at;
    if (up) {
      st.failCount = 0;
      if (present) out.push({ kind: 'real-restored', virtualId: v.id, realId: r.id, alert: true, message: `Restored real server: ${this.#rl(r, v)} (Weight set to ${r.weight})` });
      else out.push({ kind: 'real-added', virtualId: v.id, realId: r.id, alert: true, message: `Added real server: ${this.#rl(r, v)} (Weight set to ${r.weight})` });
    } else {
      const why = reason ? ` (${reason})` : '';
      if (v.quiescent) {
        if (present) {
          st.placement = this.config.global.readdQuiescent ? 'place' : 'keep-if-present';
          out.push({ kind: 'real-quiesced', virtualId: v.id, realId: r.id, alert: true, message: `Quiescent real server: ${this.#rl(r, v)} (Weight set to 0)${why}` });
        } else if (this.config.global.readdQuiescent) {
          st.placement = 'place';
          out.push({ kind: 'real-readded-quiescent', virtualId: v.id, realId: r.id, alert: true, message: `Readd Quiescent real server: ${this.#rl(r, v)} (Weight set to 0)${why}` });
        } else {
          st.placement = 'keep-if-present';
          out.push({ kind: 'real-down-absent', virtualId: v.id, realId: r.id, message: `Real server down, not in the table (readdquiescent=no): ${this.#rl(r, v)}${why}` });
        }
      } else {
        out.push({ kind: 'real-deleted', virtualId: v.id, realId: r.id, alert: true, message: `Deleted real server: ${this.#rl(r, v)}${why}` });
      }
    }
    out.push(...this.#fallbackDecisions(v));
    return out;
  }

  /** Fallback and fallbackcommand follow "is any real of this virtual up", each once per change. */
  #fallbackDecisions(v: LdVirtual): Decision[] {
    const out: Decision[] = [];
    const anyUp = this.#anyUp(v);
    const vs = this.#virtuals.get(v.id)!.state;
    if (v.fallback) {
      // Known at start-up from the table, afterwards from the decisions taken (the table may lag).
      const fbPresent = vs.fallbackOn ?? this.#present(v.id, v.fallback.address, v.fallback.ipvsPort) !== undefined;
      vs.fallbackOn = !anyUp;
      const fl = `${endpoint(v.fallback.address, v.fallback.port)} (${v.label})`;
      if (!anyUp && !fbPresent) out.push({ kind: 'fallback-added', virtualId: v.id, alert: true, message: `Added fallback server: ${fl} (Weight set to 1)` });
      if (anyUp && fbPresent) out.push({ kind: 'fallback-deleted', virtualId: v.id, alert: true, message: `Deleted fallback server: ${fl}` });
    }
    const action = anyUp ? 'stop' : 'start';
    if (v.fallbackCommand && vs.command !== action) {
      out.push({
        kind: 'fallbackcommand', virtualId: v.id,
        command: `${v.fallbackCommand} ${action} ${v.label} ${v.protocol}`,
        message: `Running fallbackcommand: ${v.fallbackCommand} ${action} ${v.label} ${v.protocol}`,
      });
    }
    if (v.fallbackCommand) vs.command = action;
    return out;
  }

  #anyUp(v: LdVirtual): boolean {
    return (this.#upCount.get(v.id) ?? 0) > 0;
  }

  /** The one place a real's up flag changes (its placement changes only together with it). */
  #setUp(entry: RealEntry, up: boolean): void {
    const { virtual: v, state: st } = entry;
    if (st.up === up) return;
    st.up = up;
    this.#version++;
    this.#changedReals.add(entry);
    const before = this.#upCount.get(v.id) ?? 0;
    const after = before + (up ? 1 : -1);
    this.#upCount.set(v.id, after);
    if (v.fallback && (before === 0) !== (after === 0)) this.#changedFallbacks.add(this.#virtuals.get(v.id)!);
  }

  #observe(actual: IpvsTable): void {
    if (actual === this.#lastActual) return;
    this.#lastActual = actual;
    this.#index = undefined;
  }

  #indexed(): Map<string, { service: VirtualService; reals: Map<string, RealServer> }> {
    if (!this.#index) {
      this.#index = new Map();
      for (const s of this.#lastActual.services) this.#index.set(serviceId(s), { service: s, reals: new Map(s.reals.map((r) => [endpoint(r.address, r.port), r])) });
    }
    return this.#index;
  }

  #present(virtualId: string, address: string, port: number): RealServer | undefined {
    return this.#indexed().get(virtualId)?.reals.get(endpoint(address, port));
  }

  #service(v: LdVirtual): VirtualService {
    return {
      ...v.key,
      scheduler: v.scheduler,
      persistence: v.persistent !== undefined ? { timeoutS: v.persistent, netmask: v.netmask } : undefined,
      schedFlags: v.schedFlags,
      ops: v.ops || undefined,
      reals: [],
    };
  }

  #realEntry(r: LdReal, weight: number): RealServer {
    return { address: r.address, port: r.ipvsPort, forwarding: r.forwarding, weight, upperThreshold: r.upperThreshold, lowerThreshold: r.lowerThreshold };
  }

  /**
   * The table this config wants, given the table as it is (only used for readdquiescent=no: a
   * down real that someone removed stays out). Services the config does not own are not in it.
   */
  desired(actual: IpvsTable): IpvsTable {
    this.#observe(actual);
    const c = this.#desiredCache;
    if (c && c.version === this.#version && (c.actual === undefined || c.actual === actual)) return c.table;
    let usedActual = false;
    const services: VirtualService[] = [];
    for (const { virtual: v } of this.#virtuals.values()) {
      const svc = this.#service(v);
      let anyUp = false;
      for (const r of v.reals) {
        const st = this.#reals.get(r.id)!.state;
        if (st.up) {
          anyUp = true;
          svc.reals.push(this.#realEntry(r, r.weight));
        } else if (v.quiescent) {
          if (st.placement === 'place') {
            svc.reals.push(this.#realEntry(r, 0));
          } else {
            usedActual = true;
            if (this.#present(v.id, r.address, r.ipvsPort)) svc.reals.push(this.#realEntry(r, 0));
          }
        }
      }
      if (!anyUp && v.fallback) {
        svc.reals.push({ address: v.fallback.address, port: v.fallback.ipvsPort, forwarding: v.fallback.forwarding, weight: 1, upperThreshold: 0, lowerThreshold: 0 });
      }
      services.push(svc);
    }
    const table = { services };
    this.#desiredCache = { version: this.#version, actual: usedActual ? actual : undefined, table };
    return table;
  }

  /**
   * The entries of desired() that may have changed since the last takeChanges() or dropChanges(),
   * in desired()'s order (virtuals in order, each one's entries together), as StoredTable.diffEntries
   * takes them: a reconcile against a table that held the previous desired table needs only these.
   * Entries of a readdquiescent=no real that is down are 'keep-if-present', as desired() keeps them
   * only when the table has them.
   */
  takeChanges(): EntryChange[] {
    const ranked: { rank: number; change: EntryChange }[] = [];
    for (const e of this.#changedReals) {
      const { real: r, virtual: v, state: st } = e;
      const service = this.#virtuals.get(v.id)!.service;
      let change: EntryChange;
      if (st.up) change = { service, real: this.#realEntry(r, r.weight), mode: 'place' };
      else if (v.quiescent) change = { service, real: this.#realEntry(r, 0), mode: st.placement === 'place' ? 'place' : 'keep-if-present' };
      else change = { service, real: this.#realEntry(r, 0), mode: 'remove' };
      ranked.push({ rank: e.rank, change });
    }
    for (const ve of this.#changedFallbacks) {
      const v = ve.virtual;
      const fb = v.fallback!;
      const real: RealServer = { address: fb.address, port: fb.ipvsPort, forwarding: fb.forwarding, weight: 1, upperThreshold: 0, lowerThreshold: 0 };
      ranked.push({ rank: ve.fallbackRank, change: { service: ve.service, real, mode: this.#anyUp(v) ? 'remove' : 'place' } });
    }
    this.dropChanges();
    ranked.sort((a, b) => a.rank - b.rank);
    return ranked.map((x) => x.change);
  }

  /** Forgets the changes: the caller is about to reconcile against the whole of desired(). */
  dropChanges(): void {
    this.#changedReals.clear();
    this.#changedFallbacks.clear();
  }

  /**
   * Tells the policy that a batch was applied to the table it last saw (the one given to
   * desired() or start(), with the batches since), so the next decisions see the table as it now
   * is without reading it back. Costs O(the batch) once the table is indexed.
   */
  appliedOps(ops: readonly IpvsOp[]): void {
    if (ops.length === 0) return;
    const index = this.#indexed();
    for (const op of ops) {
      switch (op.op) {
        case 'add-service':
        case 'edit-service': {
          const id = serviceId(op.service);
          const have = index.get(id);
          index.set(id, { service: op.service, reals: have?.reals ?? new Map() });
          break;
        }
        case 'delete-service':
          index.delete(serviceId(op.key));
          break;
        case 'add-real':
        case 'edit-real':
          index.get(serviceId(op.key))?.reals.set(endpoint(op.real.address, op.real.port), op.real);
          break;
        case 'delete-real':
          index.get(serviceId(op.key))?.reals.delete(endpoint(op.address, op.port));
          break;
      }
    }
    // desired() may have looked presence up (readdquiescent=no): its cached table is stale now.
    this.#version++;
  }

  /**
   * Tells the policy that `desired` (from desired()) was applied, so the next decisions see the
   * table as it now is without reading it back (their log lines say Added vs Restored from it).
   */
  applied(desired: IpvsTable): void {
    const ids = new Set(desired.services.map((s) => serviceId(s)));
    this.#observe({ services: [...desired.services, ...this.#lastActual.services.filter((s) => !ids.has(serviceId(s)))] });
  }

  /**
   * What `stop` does (cleanstop, per virtual): yes removes the virtual service (its reals with it),
   * no leaves it as it is. Returns the operations and the lines ldirectord logs for them.
   */
  stop(actual: IpvsTable): { ops: IpvsOp[]; decisions: Decision[] } {
    const ops: IpvsOp[] = [];
    const decisions: Decision[] = [];
    for (const { virtual: v } of this.#virtuals.values()) {
      if (!v.cleanstop) continue;
      const have = actual.services.find((s) => serviceId(s) === v.id);
      if (!have) continue;
      const inTable = new Set(have.reals.map((x) => endpoint(x.address, x.port)));
      for (const r of v.reals) {
        const st = this.#reals.get(r.id)!.state;
        if (st.up && inTable.has(endpoint(r.address, r.ipvsPort))) {
          decisions.push({ kind: 'real-purged', virtualId: v.id, realId: r.id, message: `Purged real server (stop): ${this.#rl(r, v)}` });
        }
      }
      ops.push({ op: 'delete-service', key: v.key });
      decisions.push({ kind: 'virtual-purged', virtualId: v.id, message: `Purged virtual server (stop): ${v.label}` });
    }
    return { ops, decisions };
  }

  status(): VirtualStatus[] {
    const desired = this.desired(this.#lastActual);
    const byId = new Map(desired.services.map((s) => [serviceId(s), new Map(s.reals.map((x) => [endpoint(x.address, x.port), x]))]));
    return [...this.#virtuals.values()].map(({ virtual: v }) => {
      const svc = byId.get(v.id);
      const reals: RealStatus[] = v.reals.map((r) => {
        const st = this.#reals.get(r.id)!.state;
        const inTable = svc?.get(endpoint(r.address, r.ipvsPort));
        return {
          id: r.id, address: r.address, port: r.port, forwarding: r.forwarding,
          weight: inTable?.weight ?? -1, configuredWeight: r.weight,
          up: st.up, pending: st.pending, failCount: st.failCount, maintenance: st.maintenance,
          lastVerdict: st.lastVerdict && { ...st.lastVerdict },
        };
      });
      return {
        id: v.id, label: v.label, scheduler: v.scheduler, quiescent: v.quiescent,
        fallback: v.fallback ? endpoint(v.fallback.address, v.fallback.port) : undefined,
        fallbackActive: !this.#anyUp(v) && v.fallback !== undefined,
        realsUp: reals.filter((r) => r.up).length,
        reals,
      };
    });
  }

  /** `127.0.0.12:80 (127.0.0.100:80)`, as ldirectord names a real in table-change lines. */
  #rl(r: LdReal, v: LdVirtual): string {
    return `${endpoint(r.address, r.port)} (${v.label})`;
  }
  /** `127.0.0.12:80 (tcp:127.0.0.100:80)`, as ldirectord names a real in check lines. */
  #rl2(r: LdReal, v: LdVirtual): string {
    return `${endpoint(r.address, r.port)} (${v.protocol}:${v.label})`;
  }
}

function serviceDiffers(a: VirtualService, b: VirtualService): boolean {
  return (
    a.scheduler !== b.scheduler ||
    (a.persistence?.timeoutS ?? 0) !== (b.persistence?.timeoutS ?? 0) ||
    (a.persistence?.netmask ?? '') !== (b.persistence?.netmask ?? '') && !!b.persistence ||
    (a.schedFlags ?? []).join(',') !== (b.schedFlags ?? []).join(',') ||
    !!a.ops !== !!b.ops
  );
}

function realDiffers(a: RealServer, b: RealServer): boolean {
  return a.forwarding !== b.forwarding || a.weight !== b.weight || (a.upperThreshold ?? 0) !== (b.upperThreshold ?? 0) || (a.lowerThreshold ?? 0) !== (b.lowerThreshold ?? 0);
}
