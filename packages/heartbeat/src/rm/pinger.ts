/**
 * Reachability of ha.cf's `ping` nodes and `ping_group`s for ipfail, when the daemon's membership
 * does not carry them: each address is probed by one long-running system `ping -i INTERVAL` (execa,
 * no shell) whose reply lines are read as they come; a ping node or group is up once any of its
 * addresses answers, and dead after `deadping` without an answer. One process per address instead of
 * one per probe: spawning a process per echo costs more than the echo and, on a loaded machine,
 * takes long enough to make a ping node look dead. The bookkeeping (PingTracker) is pure; the prober
 * is a thin shell around it.
 */
import { execa, type ResultPromise } from 'execa';
import type { Clock, TimerHandle } from '@tandem/core';

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

/** Starts `ping ARGS`; the prober reads its standard output. Tests replace it to watch the calls. */
export type PingSpawner = (args: string[]) => ResultPromise;

export const spawnPing: PingSpawner = (args) =>
  execa('ping', args, { reject: false, buffer: false, stdin: 'ignore', stdout: 'pipe', stderr: 'ignore' });

export interface PingerOptions {
  targets: readonly PingTarget[];
  /** Echo interval; keep it well under deadping (the resource manager uses at most deadping/4). */
  intervalMs: number;
  deadpingMs: number;
  clock: Clock;
  onChange(change: PingChange): void;
  spawn?: PingSpawner | undefined;
}

/** The echo interval for a keepalive and deadping: several echoes per deadping, 20 ms to 1 s. */
export function pingInterval(keepaliveMs: number, deadpingMs: number): number {
  return Math.min(1000, Math.max(20, Math.min(keepaliveMs, deadpingMs / 4)));
}

export class Pinger {
  readonly tracker: PingTracker;
  readonly #o: PingerOptions;
  readonly #spawn: PingSpawner;
  readonly #procs = new Map<string, ResultPromise>();
  #timers: TimerHandle[] = [];
  #deadTimer: TimerHandle | undefined;
  #stopped = true;

  constructor(o: PingerOptions) {
    this.#o = o;
    this.#spawn = o.spawn ?? spawnPing;
    this.tracker = new PingTracker(o.targets, o.deadpingMs);
  }

  start(): void {
    this.#stopped = false;
    for (const t of this.#o.targets) for (const a of t.addresses) this.#probe(t.name, a);
    this.#arm();
  }

  stop(): void {
    this.#stopped = true;
    for (const t of this.#timers) this.#o.clock.clearTimeout(t);
    this.#timers = [];
    this.#o.clock.clearTimeout(this.#deadTimer);
    for (const p of this.#procs.values()) p.kill('SIGTERM');
    this.#procs.clear();
  }

  #probe(name: string, address: string): void {
    if (this.#stopped) return;
    // -n: no DNS; -i: the interval (below 0.2 s only for root, which heartbeat is); -W: per-echo wait.
    const intervalS = (this.#o.intervalMs / 1000).toFixed(3);
    const waitS = String(Math.max(1, Math.ceil(this.#o.deadpingMs / 1000)));
    const p = this.#spawn(['-n', '-i', intervalS, '-W', waitS, address]);
    const key = `${name} ${address}`;
    this.#procs.set(key, p);
    let buf = '';
    p.stdout?.setEncoding('utf8');
    p.stdout?.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (!this.#stopped && / bytes from /.test(line)) this.#emit(this.tracker.replied(name, this.#o.clock.now()));
      }
    });
    void p.then(() => {
      if (this.#procs.get(key) !== p) return;
      this.#procs.delete(key);
      if (this.#stopped) return;
      // ping ended (interval refused, address unusable): try again after a deadping.
      const h = this.#o.clock.setTimeout(() => {
        this.#timers = this.#timers.filter((x) => x !== h);
        this.#probe(name, address);
      }, this.#o.deadpingMs);
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
