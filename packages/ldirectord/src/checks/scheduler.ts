import { type Clock, type TimerHandle, realClock } from '@tandem/core/clock';
import type { CheckSpec, Checker, Verdict } from './types.ts';
import { CombinedState } from './combined.ts';
import { runCheck } from './run.ts';

/**
 * The check loop. Every real is checked once per checkinterval as a **period** (ldirectord sleeps
 * checkinterval after a serial pass, so its period grows with the number of reals and with every
 * hung one). Here each distinct check has its own slot in the interval: the first check runs at
 * once (so a fresh start fills the table as fast as the checks allow), later ones start every
 * intervalMs at a phase spread evenly over the interval, so 1,000 reals at 1 s are ~1 ms apart
 * rather than one burst. A check that overruns its period (a hung real with checktimeout >
 * checkinterval) is not run twice at once: its next check starts when it settles.
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
}

export interface SchedulerStats {
  /** Distinct checks (after de-duplication). */
  entries: number;
  ids: number;
  running: number;
  queued: number;
  started: number;
  completed: number;
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

const IDENTITY_SKIP = new Set(['virtualAddress', 'virtualPort']);

/**
 * Two reals share a check when everything that affects the check is equal. The virtual is not part
 * of it (as ldirectord) except for external checks, whose arguments name the virtual.
 */
export function checkIdentity(spec: CheckSpec): string {
  const external = spec.checktype === 'external' || spec.checktype === 'external-perl';
  const keys = Object.keys(spec).sort();
  const parts: string[] = [];
  for (const k of keys) {
    if (!external && IDENTITY_SKIP.has(k)) continue;
    const v = (spec as unknown as Record<string, unknown>)[k];
    if (v === undefined) continue;
    parts.push(`${k}=${JSON.stringify(v)}`);
  }
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

  constructor(opts: SchedulerOptions) {
    this.#opts = opts;
    this.#clock = opts.clock ?? realClock;
    this.#concurrency = Math.max(1, opts.concurrency ?? 1024);
    this.#slack = Math.max(0, opts.slackMs ?? 5);
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
