/**
 * One monotonic time source for everything that measures intervals (deadtime, check periods,
 * timeouts). Wall-clock time (Date.now) jumps with NTP and must never drive a failover decision.
 * Production code takes a Clock; tests pass a ManualClock and step virtual time.
 */
export interface TimerHandle {
  /** Opaque; pass back to clearTimeout. */
  readonly id: number;
}

export interface Clock {
  /** Monotonic milliseconds (fractional) since an arbitrary origin. */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle | undefined): void;
}

class RealTimer implements TimerHandle {
  readonly id: number;
  readonly inner: NodeJS.Timeout;
  constructor(id: number, inner: NodeJS.Timeout) {
    this.id = id;
    this.inner = inner;
  }
}

let realIds = 0;

/** The process's monotonic clock (performance.now is monotonic and sub-millisecond). */
export const realClock: Clock = {
  now: () => performance.now(),
  setTimeout(fn, ms) {
    return new RealTimer(++realIds, setTimeout(fn, Math.max(0, ms)));
  },
  clearTimeout(handle) {
    if (handle instanceof RealTimer) clearTimeout(handle.inner);
  },
};

interface ManualTimer {
  id: number;
  at: number;
  seq: number;
  fn: () => void;
}

/**
 * Virtual time for deterministic tests and simulations. Timers fire in due order (ties in the
 * order they were set) only when the test advances the clock.
 */
export class ManualClock implements Clock {
  #now: number;
  #seq = 0;
  #timers = new Map<number, ManualTimer>();

  constructor(start = 0) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = ++this.#seq;
    this.#timers.set(id, { id, at: this.#now + Math.max(0, ms), seq: id, fn });
    return { id };
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    if (handle) this.#timers.delete(handle.id);
  }

  /** Number of timers still pending. */
  get pending(): number {
    return this.#timers.size;
  }

  /** Time of the next pending timer, or undefined when none is set. */
  nextAt(): number | undefined {
    let best: ManualTimer | undefined;
    for (const t of this.#timers.values()) if (!best || t.at < best.at || (t.at === best.at && t.seq < best.seq)) best = t;
    return best?.at;
  }

  /** Advance virtual time by ms, firing every timer that falls due (including ones set meanwhile). */
  advance(ms: number): void {
    this.advanceTo(this.#now + ms);
  }

  advanceTo(target: number): void {
    // Bounded so a timer that re-arms itself with 0 ms cannot spin forever.
    for (let guard = 0; guard < 10_000_000; guard++) {
      let due: ManualTimer | undefined;
      for (const t of this.#timers.values()) {
        if (t.at <= target && (!due || t.at < due.at || (t.at === due.at && t.seq < due.seq))) due = t;
      }
      if (!due) break;
      this.#timers.delete(due.id);
      this.#now = Math.max(this.#now, due.at);
      due.fn();
    }
    this.#now = Math.max(this.#now, target);
  }
}

/** Resolves after ms on the given clock. */
export function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.setTimeout(resolve, ms));
}
