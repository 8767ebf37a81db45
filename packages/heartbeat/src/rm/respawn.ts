/**
 * `respawn user /path/to/program [args]` from ha.cf: heartbeat starts the program when
 * communications come up and starts it again whenever it exits, unless it exits with code 100
 * ("do not respawn me"). A program that keeps dying is restarted with a growing pause, so a broken
 * one cannot eat the machine. The restart policy is pure; the supervisor is a thin shell on execa.
 *
 * `respawn hacluster /usr/lib/heartbeat/ipfail` is not run at all: ha.cf's parser maps it to
 * tandem's own ipfail, which lives in the resource machine (machine.ts).
 */
import { basename } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { runCommand, type Clock, type Logger, type TimerHandle } from '@tandem/core';

/** heartbeat's "do not respawn" exit code. */
export const NO_RESPAWN_EXIT = 100;

export function isIpfail(command: string): boolean {
  return basename(command) === 'ipfail';
}

export interface RespawnPolicyOptions {
  /** A run shorter than this counts as a quick death. Default 10 s. */
  minUptimeMs?: number | undefined;
  /** First pause after a quick death; doubles each further quick death. Default 1 s. */
  baseDelayMs?: number | undefined;
  /** The longest pause. Default 60 s. */
  maxDelayMs?: number | undefined;
}

export interface RespawnDecision {
  restart: boolean;
  delayMs: number;
  reason: string;
}

export class RespawnPolicy {
  readonly #min: number;
  readonly #base: number;
  readonly #max: number;
  #quickDeaths = 0;

  constructor(o: RespawnPolicyOptions = {}) {
    this.#min = o.minUptimeMs ?? 10_000;
    this.#base = o.baseDelayMs ?? 1000;
    this.#max = o.maxDelayMs ?? 60_000;
  }

  /** What to do after the program, started at `startedAt`, exited at `now`. */
  onExit(startedAt: number, now: number, exitCode: number | undefined, signal?: string): RespawnDecision {
    if (exitCode === NO_RESPAWN_EXIT) return { restart: false, delayMs: 0, reason: `exited with ${NO_RESPAWN_EXIT}: not respawned` };
    const how = exitCode !== undefined ? `exited with ${exitCode}` : `killed by ${signal ?? 'a signal'}`;
    if (now - startedAt >= this.#min) {
      this.#quickDeaths = 0;
      return { restart: true, delayMs: 0, reason: `${how}; respawning` };
    }
    const delayMs = Math.min(this.#max, this.#base * 2 ** this.#quickDeaths);
    this.#quickDeaths++;
    return { restart: true, delayMs, reason: `${how} after ${Math.round(now - startedAt)} ms; respawning in ${delayMs} ms (too fast)` };
  }
}

export interface RespawnEntryLike {
  user: string;
  command: string;
  args: readonly string[];
}

export interface RespawnerOptions {
  logger: Logger;
  clock: Clock;
  policy?: RespawnPolicyOptions | undefined;
  env?: Record<string, string | undefined> | undefined;
}

/** Supervises one program. */
export class Respawner {
  readonly entry: RespawnEntryLike;
  readonly #o: RespawnerOptions;
  readonly #policy: RespawnPolicy;
  #child: ResultPromise | undefined;
  #timer: TimerHandle | undefined;
  #stopped = false;
  #ids: { uid?: number; gid?: number } | undefined;
  /** How many times it was started. */
  starts = 0;
  lastExit: RespawnDecision | undefined;

  constructor(entry: RespawnEntryLike, o: RespawnerOptions) {
    this.entry = entry;
    this.#o = o;
    this.#policy = new RespawnPolicy(o.policy);
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  async start(): Promise<void> {
    this.#stopped = false;
    this.#ids ??= await this.#lookupUser();
    this.#spawn();
  }

  async #lookupUser(): Promise<{ uid?: number; gid?: number }> {
    // Only root can switch users; anyone else runs the program as itself.
    if (typeof process.getuid !== 'function' || process.getuid() !== 0) return {};
    const u = await runCommand('id', ['-u', this.entry.user], { timeoutMs: 5000 });
    const g = await runCommand('id', ['-g', this.entry.user], { timeoutMs: 5000 });
    if (!u.ok || !g.ok) {
      this.#o.logger.warn(`respawn: unknown user ${this.entry.user}; running ${this.entry.command} as root`);
      return {};
    }
    return { uid: Number(u.stdout.trim()), gid: Number(g.stdout.trim()) };
  }

  #spawn(): void {
    if (this.#stopped) return;
    const startedAt = this.#o.clock.now();
    this.starts++;
    this.#o.logger.info(`Starting child client "${[this.entry.command, ...this.entry.args].join(' ')}" (${this.entry.user})`);
    const child = execa(this.entry.command, [...this.entry.args], {
      reject: false, stdin: 'ignore', stdout: 'ignore', stderr: 'ignore', env: this.#o.env, ...this.#ids,
    });
    this.#child = child;
    void child.then((r) => {
      if (this.#child !== child) return;
      this.#child = undefined;
      if (this.#stopped) return;
      const spawnFailed = r.exitCode === undefined && !r.signal;
      const d = this.#policy.onExit(startedAt, this.#o.clock.now(), spawnFailed ? 127 : r.exitCode, r.signal ?? undefined);
      this.lastExit = d;
      this.#o.logger[d.restart ? 'warn' : 'info'](`Client ${this.entry.command} ${d.reason}`);
      if (d.restart) this.#timer = this.#o.clock.setTimeout(() => this.#spawn(), d.delayMs);
    });
  }

  /** Stops supervising and terminates the program (SIGTERM, SIGKILL after 5 s). */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#o.clock.clearTimeout(this.#timer);
    const c = this.#child;
    this.#child = undefined;
    if (!c) return;
    c.kill('SIGTERM');
    const hard = setTimeout(() => c.kill('SIGKILL'), 5000);
    await c.catch(() => undefined);
    clearTimeout(hard);
  }
}
