/**
 * Reachability of ha.cf's `ping` nodes and `ping_group`s for ipfail, when the daemon's membership
 * does not carry them: each address is probed with the system `ping` (one ICMP echo, through
 * runCommand: execa, no shell) every interval; a ping node or group is up once any of its addresses
 * answers, and dead after `deadping` without an answer. The bookkeeping (PingTracker) is pure; the
 * prober is a thin loop around it.
 */
import { runCommand, type Clock, type CommandRunner, type TimerHandle } from '@tandem/core';

export interface PingTarget {
  /** The ping node's name: its address, or the ping_group's name. */
  name: string;
  addresses: readonly string[];
}

export interface PingChange {
  name: string;
  up: boolean;
}

/** Which ping nodes are up, from the replies seen and the passage of time. */
export class PingTracker {
  readonly #deadpingMs: number;
  readonly #last = new Map<string, number>();
  readonly #up = new Set<string>();

  constructor(targets: readonly PingTarget[], deadpingMs: number) {
    this.#deadpingMs = deadpingMs;
    for (const t of targets) this.#last.set(t.name, Number.NEGATIVE_INFINITY);
  }

  isUp(name: string): boolean {
    return this.#up.has(name);
  }

  /** An answer from one of the node's addresses. */
  replied(name: string, now: number): PingChange[] {
    if (!this.#last.has(name)) return [];
    this.#last.set(name, now);
    if (this.#up.has(name)) return [];
    this.#up.add(name);
    return [{ name, up: true }];
  }

  tick(now: number): PingChange[] {
    const out: PingChange[] = [];
    for (const [name, last] of this.#last) {
      if (this.#up.has(name) && now - last >= this.#deadpingMs) {
        this.#up.delete(name);
        out.push({ name, up: false });
      }
    }
    return out;
  }

  nextDeadline(): number | undefined {
    let best: number | undefined;
    for (const [name, last] of this.#last) {
      if (!this.#up.has(name)) continue;
      const d = last + this.#deadpingMs;
      if (best === undefined || d < best) best = d;
    }
    return best;
  }
}

export interface PingerOptions {
  targets: readonly PingTarget[];
  intervalMs: number;
  deadpingMs: number;
  clock: Clock;
  onChange(change: PingChange): void;
  run?: CommandRunner | undefined;
}

export class Pinger {
  readonly tracker: PingTracker;
  readonly #o: PingerOptions;
  readonly #run: CommandRunner;
  #timers: TimerHandle[] = [];
  #deadTimer: TimerHandle | undefined;
  #stopped = true;

  constructor(o: PingerOptions) {
    this.#o = o;
    this.#run = o.run ?? runCommand;
    this.tracker = new PingTracker(o.targets, o.deadpingMs);
  }

  start(): void {
    this.#stopped = false;
    for (const t of this.#o.targets) for (const a of t.addresses) this.#probe(t.name, a);
  }

  stop(): void {
    this.#stopped = true;
    for (const t of this.#timers) this.#o.clock.clearTimeout(t);
    this.#timers = [];
    this.#o.clock.clearTimeout(this.#deadTimer);
  }

  #probe(name: string, address: string): void {
    if (this.#stopped) return;
    const waitS = Math.max(1, Math.round(Math.min(this.#o.deadpingMs, this.#o.intervalMs * 2) / 1000));
    void this.#run('ping', ['-n', '-q', '-c', '1', '-W', String(waitS), address], { timeoutMs: waitS * 1000 + 2000 }).then((r) => {
      if (this.#stopped) return;
      if (r.ok) this.#emit(this.tracker.replied(name, this.#o.clock.now()));
      const h = this.#o.clock.setTimeout(() => {
        this.#timers = this.#timers.filter((x) => x !== h);
        this.#probe(name, address);
      }, this.#o.intervalMs);
      this.#timers.push(h);
    });
  }

  #emit(changes: PingChange[]): void {
    for (const c of changes) this.#o.onChange(c);
    this.#arm();
  }

  #arm(): void {
    this.#o.clock.clearTimeout(this.#deadTimer);
    const d = this.tracker.nextDeadline();
    if (d === undefined || this.#stopped) return;
    this.#deadTimer = this.#o.clock.setTimeout(() => this.#emit(this.tracker.tick(this.#o.clock.now())), Math.max(0, d - this.#o.clock.now()));
  }
}
