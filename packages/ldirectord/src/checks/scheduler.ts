import { availableParallelism } from 'node:os';
import { type Clock, type TimerHandle, realClock } from '@tandem/core/clock';
import type { CheckSpec, Checker, Verdict } from './types.ts';
import { CombinedState } from './combined.ts';
import { runCheck } from './run.ts';
import { FirstPassPool } from './first-pass.ts';

/**
 * The check loop. Every real is checked once per checkinterval as a **period** (ldirectord sleeps
 * checkinterval after a serial pass, so its period grows with the number of reals and with every
 * hung one). Here each distinct check has its own slot in the interval: the first check runs at
 * once (so a fresh start fills the table as fast as the checks allow), later ones start every
 * intervalMs at a phase spread evenly over the interval, so 1,000 reals at 1 s are ~1 ms apart
 * rather than one burst. A check that overruns its period (a hung real with checktimeout >
 * checkinterval) is not run twice at once: its next check starts when it settles.
 *
 * When a thousand or more reals are new at once, their first checks are shared with a worker
 * thread (first-pass.ts) that is ended once every real has been checked.
 *
 * Reals with an identical check identity in several virtuals are checked once and the verdict is
 * reported for every id that shares it. Concurrency is bounded; due checks beyond the bound wait in
 * FIFO order. Time comes from an injected Clock (ManualClock in tests).
 */
export interface ScheduledCheck {
  /** The caller's key for this (virtual, real) pair; verdicts are reported with it. */
  id: string;
  spec: CheckSpec;
  intervalMs: number;
}

export interface SchedulerOptions {
  onVerdict: (id: string, verdict: Verdict) => void;
  /** The checker; default runCheck. */
  check?: Checker;
  clock?: Clock;
  /** Most checks in flight at once. Default 1024: at 10,000 reals every 5 s a slow server (300 ms per answer on a loaded machine) already needs 600 in flight; waiting sockets cost no CPU. */
  concurrency?: number;
  /** Due checks within this many ms are started together by one timer wake-up (fewer event-loop turns per check). Default 5 ms. */
  slackMs?: number;
  /** Called when onVerdict throws; default: ignore. */
  onError?: (err: unknown) => void;
  /**
   * First checks of at least this many new reals at once share the work with a worker thread
   * (first-pass.ts). Default 1000 on a machine with more than one CPU, off otherwise; 0 turns it
   * off. Only with the default checker (a custom `check` cannot be sent to another thread).
   */
  offloadMin?: number;
  /**
   * The share of the concurrency bound the worker may hold; this thread runs first checks in the
   * rest. Default 0.75: this thread also turns every verdict into table changes, so it is the
   * busier one (at 10,000 reals 0.5 gave 1.62 s to a full table, 0.8 gave 1.56 s, 1.0 1.57 s).
   */
  offloadShare?: number;
}

export interface SchedulerStats {
  /** Distinct checks (after de-duplication). */
  entries: number;
  ids: number;
  running: number;
  queued: number;
  started: number;
  completed: number;
  /** Checks run by the first-pass worker thread so far. */
  offloaded: number;
  /** The first-pass worker: none (not needed, or ended), booting, or ready. */
  firstPassWorker: 'none' | 'booting' | 'ready';
}

interface Entry {
  key: string;
  spec: CheckSpec;
  ids: string[];
  intervalMs: number;
  phaseMs: number;
  /** When the next check is planned (clock ms). */
  due: number;
  /** Position in the heap, -1 when not in it. */
  heapIndex: number;
  state: 'idle' | 'queued' | 'running';
  removed: boolean;
  firstDone: boolean;
  combined: CombinedState | undefined;
  negotiateSpec: CheckSpec | undefined;
  connectSpec: CheckSpec | undefined;
  /** on/off need no repeated check: one verdict per (re)configuration is the whole story. */
  once: boolean;
}

/** Checks the worker runs: network exchanges. External commands and pings stay on this thread (their cost is another process's). */
const OFFLOADABLE = new Set<CheckSpec['checktype']>(['negotiate', 'connect', 'combined']);

/**
 * Every field of a CheckSpec, checked complete by the compiler (a new field must be listed here,
 * or two reals differing only in it would share one check). `false`: not part of the identity
 * (the virtual), except for external checks, whose arguments name the virtual.
 */
const IDENTITY_FIELDS = {
  checktype: true, combinedConnects: true, service: true, protocol: true, host: true, port: true, realPort: true,
  virtualAddress: false, virtualPort: false, request: true, receive: true, httpMethod: true, virtualHost: true,
  login: true, passwd: true, database: true, secret: true, checkcommand: true, checkTimeoutMs: true,
  negotiateTimeoutMs: true, checkCount: true, httpKeepAlive: true,
} satisfies Record<keyof CheckSpec, boolean>;
const IDENTITY_KEYS = Object.keys(IDENTITY_FIELDS) as (keyof CheckSpec)[];

/**
 * Two reals share a check when everything that affects the check is equal. The virtual is not part
 * of it (as ldirectord) except for external checks, whose arguments name the virtual. Built once
 * per real at every update: a fixed field order and no sort (10,000 reals at a start).
 */
export function checkIdentity(spec: CheckSpec): string {
  const external = spec.checktype === 'external' || spec.checktype === 'external-perl';
  const parts: string[] = [];
  for (const k of IDENTITY_KEYS) {
    if (!external && !IDENTITY_FIELDS[k]) continue;
    const v = spec[k];
    if (v === undefined) continue;
    parts.push(`${k}=${typeof v === 'string' ? JSON.stringify(v) : String(v)}`);
  }
  // join makes one flat string; appending with += would keep each identity (a Map key for the
  // real's life) as a tree of ~20 string pieces, ~1 KB per real instead of ~200 bytes.
  return parts.join('\u0001');
}

export class CheckScheduler {
  readonly #opts: SchedulerOptions;
  readonly #clock: Clock;
  readonly #concurrency: number;
  readonly #slack: number;
  #entries = new Map<string, Entry>();
  #heap: Entry[] = [];
  #queue: Entry[] = [];
  #queueHead = 0;
  #timer: TimerHandle | undefined;
  #timerAt = Infinity;
  #running = 0;
  #started = 0;
  #completed = 0;
  #active = false;
  /** Set by stop(); each check in flight has its own controller (see #launch). */
  #stopped = false;
  #inflight = new Set<AbortController>();
  #idle: (() => void) | undefined;
  /** Entries (not removed) whose first check has not settled yet. */
  #unchecked = 0;
  #offloaded = 0;
  #pool: FirstPassPool | undefined;
  readonly #offloadMin: number;
  readonly #poolCap: number;

  constructor(opts: SchedulerOptions) {
    this.#opts = opts;
    this.#clock = opts.clock ?? realClock;
    this.#concurrency = Math.max(1, opts.concurrency ?? 1024);
    this.#slack = Math.max(0, opts.slackMs ?? 5);
    const ownChecker = opts.check === undefined || opts.check === runCheck;
    this.#offloadMin = !ownChecker ? 0 : (opts.offloadMin ?? (availableParallelism() > 1 ? 1000 : 0));
    this.#poolCap = Math.max(1, Math.floor(this.#concurrency * (opts.offloadShare ?? 0.75)));
  }

  /**
   * Replaces the whole set of checks. Checks whose identity is unchanged keep their schedule and
   * combined state; new ones are checked at once and then take a phase; vanished ones stop (a
   * verdict of a check already in flight for them is dropped).
   */
  update(checks: readonly ScheduledCheck[]): void {
    const next = new Map<string, { spec: CheckSpec; ids: string[]; intervalMs: number }>();
    for (const c of checks) {
      const key = checkIdentity(c.spec);
      const have = next.get(key);
      if (have) {
        if (!have.ids.includes(c.id)) have.ids.push(c.id);
        have.intervalMs = Math.min(have.intervalMs, c.intervalMs);
      } else next.set(key, { spec: c.spec, ids: [c.id], intervalMs: c.intervalMs });
    }
    for (const [key, e] of this.#entries) {
      if (next.has(key)) continue;
      e.removed = true;
      if (!e.firstDone) this.#unchecked--;
      this.#heapRemove(e);
      this.#entries.delete(key);
    }
    const now = this.#clock.now();
    const fresh: Entry[] = [];
    for (const [key, n] of next) {
      const e = this.#entries.get(key);
      if (e) {
        e.ids = n.ids;
        if (e.intervalMs !== n.intervalMs) {
          e.intervalMs = Math.max(1, n.intervalMs);
          if (e.heapIndex >= 0 && e.due > now + e.intervalMs) this.#reschedule(e, now + e.phaseMs % e.intervalMs);
        }
        if (e.once && e.state === 'idle' && e.heapIndex < 0) this.#reschedule(e, now);
        continue;
      }
      const spec = n.spec;
      const combined = spec.checktype === 'combined' ? new CombinedState(spec.combinedConnects ?? 0) : undefined;
      const entry: Entry = {
        key,
        spec,
        ids: n.ids,
        intervalMs: Math.max(1, n.intervalMs),
        phaseMs: 0,
        due: now,
        heapIndex: -1,
        state: 'idle',
        removed: false,
        firstDone: false,
        combined,
        negotiateSpec: combined ? { ...spec, checktype: 'negotiate' } : undefined,
        connectSpec: combined ? { ...spec, checktype: 'connect' } : undefined,
        once: spec.checktype === 'on' || spec.checktype === 'off',
      };
      this.#entries.set(key, entry);
      fresh.push(entry);
    }
    // Spread the new checks' phases evenly over the interval, in the order given.
    fresh.forEach((e, i) => {
      e.phaseMs = (i * e.intervalMs) / fresh.length;
      if (this.#active) this.#heapPush(e);
    });
    this.#unchecked += fresh.length;
    if (this.#offloadMin > 0 && fresh.length >= this.#offloadMin && !this.#pool && !this.#stopped) {
      this.#pool = new FirstPassPool({ fallback: runCheck, onReady: () => this.#pump() });
    }
    if (this.#active) this.#pump();
  }

  start(): void {
    if (this.#active) return;
    this.#active = true;
    this.#stopped = false;
    const now = this.#clock.now();
    for (const e of this.#entries.values()) {
      if (e.state === 'idle' && e.heapIndex < 0) {
        e.due = e.firstDone ? Math.max(now, e.due) : now;
        this.#heapPush(e);
      }
    }
    this.#pump();
  }

  /** Stops scheduling, aborts checks in flight and resolves when they have all settled. */
  async stop(): Promise<void> {
    this.#active = false;
    this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
    this.#heap = [];
    for (const e of this.#entries.values()) {
      e.heapIndex = -1;
      if (e.state === 'queued') e.state = 'idle';
    }
    this.#queue = [];
    this.#queueHead = 0;
    this.#stopped = true;
    this.#closePool(true);
    for (const c of this.#inflight) c.abort();
    if (this.#running > 0) await new Promise<void>((resolve) => (this.#idle = resolve));
  }

  stats(): SchedulerStats {
    let ids = 0;
    for (const e of this.#entries.values()) ids += e.ids.length;
    return {
      entries: this.#entries.size,
      ids,
      running: this.#running,
      queued: this.#queue.length - this.#queueHead,
      started: this.#started,
      completed: this.#completed,
      offloaded: this.#offloaded,
      firstPassWorker: this.#pool ? (this.#pool.ready ? 'ready' : 'booting') : 'none',
    };
  }

  /** When the next check of a shared identity is due (for tests and status output). */
  nextDue(id: string): number | undefined {
    for (const e of this.#entries.values()) if (e.ids.includes(id)) return e.state === 'idle' && e.heapIndex >= 0 ? e.due : undefined;
    return undefined;
  }

  #reschedule(e: Entry, due: number): void {
    this.#heapRemove(e);
    e.due = due;
    this.#heapPush(e);
  }

  /** Starts every check that is due (within slack) while slots are free, then arms one timer. */
  #pump(): void {
    if (!this.#active) return;
    const now = this.#clock.now();
    while (this.#heap.length > 0 && this.#heap[0]!.due <= now + this.#slack) {
      const e = this.#heapPop();
      e.state = 'queued';
      this.#queue.push(e);
    }
    while (this.#running < this.#concurrency && this.#queueHead < this.#queue.length) {
      const e = this.#queue[this.#queueHead++]!;
      if (e.removed || e.state !== 'queued') continue;
      this.#launch(e);
    }
    if (this.#queueHead > 1024 && this.#queueHead * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#queueHead);
      this.#queueHead = 0;
    }
    this.#arm();
  }

  #arm(): void {
    const first = this.#heap[0];
    const at = first ? first.due : Infinity;
    if (at === this.#timerAt) return;
    this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = at;
    if (at === Infinity) return;
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      this.#timerAt = Infinity;
      this.#pump();
    }, at - this.#clock.now());
  }

  #launch(e: Entry): void {
    e.state = 'running';
    this.#running++;
    this.#started++;
    // A check that starts more than half an interval late (an overloaded event loop, a full
    // concurrency bound) re-bases its schedule on the actual start, so catching up never produces
    // two checks of one real in quick succession.
    const now = this.#clock.now();
    const plannedAt = now - e.due > e.intervalMs / 2 ? now : e.due;
    const step = e.combined ? e.combined.next() : undefined;
    const spec = step === 'connect' ? e.connectSpec! : step === 'negotiate' ? e.negotiateSpec! : e.spec;
    // One controller per check, not one signal shared by all: an EventTarget scans its listeners
    // on every addEventListener, which with a thousand checks in flight costs more than the check.
    const ctl = new AbortController();
    this.#inflight.add(ctl);
    const pool = this.#pool;
    if (pool && !e.firstDone && pool.ready && pool.inflight < this.#poolCap && OFFLOADABLE.has(spec.checktype)) {
      this.#offloaded++;
      pool.submit(spec, ctl.signal, (v) => this.#settle(e, ctl, plannedAt, step, v));
      return;
    }
    let p: Promise<Verdict>;
    try {
      p = (this.#opts.check ?? runCheck)(spec, ctl.signal);
    } catch (err) {
      p = Promise.resolve({ up: false, reason: `check threw: ${(err as Error)?.message ?? String(err)}`, durationMs: 0 });
    }
    p.then(
      (v) => this.#settle(e, ctl, plannedAt, step, v),
      (err) => this.#settle(e, ctl, plannedAt, step, { up: false, reason: `check failed: ${(err as Error)?.message ?? String(err)}`, durationMs: 0 }),
    );
  }

  #settle(e: Entry, ctl: AbortController, plannedAt: number, step: 'negotiate' | 'connect' | undefined, v: Verdict): void {
    this.#inflight.delete(ctl);
    this.#running--;
    this.#completed++;
    e.state = 'idle';
    const aborted = this.#stopped;
    if (!e.removed && !aborted) {
      if (!e.firstDone && --this.#unchecked === 0) this.#closePool(false);
      if (e.combined && step) e.combined.record(step, v.up);
      for (const id of e.ids) {
        try {
          this.#opts.onVerdict(id, v);
        } catch (err) {
          this.#opts.onError?.(err);
        }
      }
      if (this.#active && !e.once) {
        const now = this.#clock.now();
        let due: number;
        if (!e.firstDone) {
          // Second check at the entry's phase, between half and one and a half intervals after the first.
          due = plannedAt + e.phaseMs + (e.phaseMs < e.intervalMs / 2 ? e.intervalMs : 0);
        } else due = plannedAt + e.intervalMs;
        if (due < now) due = now;
        e.due = due;
        this.#heapPush(e);
      }
      e.firstDone = true;
    }
    if (this.#running === 0 && this.#idle) {
      const idle = this.#idle;
      this.#idle = undefined;
      idle();
    }
    this.#pump();
  }

  /** The first pass is over (or the scheduler stops): the worker's memory goes back. */
  #closePool(abort: boolean): void {
    const pool = this.#pool;
    this.#pool = undefined;
    pool?.close(abort);
  }

  // A binary min-heap on due time; ties keep no particular order.
  #heapPush(e: Entry): void {
    if (e.heapIndex >= 0) return;
    e.heapIndex = this.#heap.length;
    this.#heap.push(e);
    this.#up(e.heapIndex);
  }

  #heapPop(): Entry {
    const top = this.#heap[0]!;
    const last = this.#heap.pop()!;
    if (last !== top) {
      this.#heap[0] = last;
      last.heapIndex = 0;
      this.#down(0);
    }
    top.heapIndex = -1;
    return top;
  }

  #heapRemove(e: Entry): void {
    const i = e.heapIndex;
    if (i < 0) return;
    const last = this.#heap.pop()!;
    e.heapIndex = -1;
    if (last === e) return;
    this.#heap[i] = last;
    last.heapIndex = i;
    this.#up(i);
    this.#down(last.heapIndex);
  }

  #up(i: number): void {
    const h = this.#heap;
    const e = h[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p]!.due <= e.due) break;
      h[i] = h[p]!;
      h[i]!.heapIndex = i;
      i = p;
    }
    h[i] = e;
    e.heapIndex = i;
  }

  #down(i: number): void {
    const h = this.#heap;
    const n = h.length;
    const e = h[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && h[r]!.due < h[l]!.due ? r : l;
      if (h[c]!.due >= e.due) break;
      h[i] = h[c]!;
      h[i]!.heapIndex = i;
      i = c;
    }
    h[i] = e;
    e.heapIndex = i;
  }
}
