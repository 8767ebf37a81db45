/**
 * The thin shell around the resource machine: it sends the machine's messages, runs its jobs one at
 * a time through the agent runner (groups in the order given, each group's resources in haresources
 * order to start and in reverse to stop), reports each job back, and arms one timer at the machine's
 * next deadline. Everything it decides comes from the machine.
 */
import type { Clock, Logger, TimerHandle } from '@tandem/core';
import type { ResourceGroup, GroupResult } from '@tandem/resources';
import type { HbFields } from '../types.ts';
import type { ResourceMachine, RmAction } from './machine.ts';

export interface GroupRunner {
  startGroup(g: ResourceGroup): Promise<GroupResult>;
  stopGroup(g: ResourceGroup): Promise<GroupResult>;
}

export interface ExecutorOptions {
  machine: ResourceMachine;
  groups: readonly ResourceGroup[];
  runner: GroupRunner;
  clock: Clock;
  logger: Logger;
  send(fields: HbFields): void;
  onStopped?: (() => void) | undefined;
  onFatal?: ((reason: string) => void) | undefined;
}

interface PendingJob {
  job: number;
  kind: 'acquire' | 'release';
  groups: string[];
  reason: string;
}

export class RmExecutor {
  readonly machine: ResourceMachine;
  readonly #o: ExecutorOptions;
  readonly #byKey: Map<string, ResourceGroup>;
  readonly #pending: PendingJob[] = [];
  #busy = false;
  #timer: TimerHandle | undefined;
  #timerAt: number | undefined;
  #closed = false;
  #idleWaiters: (() => void)[] = [];

  constructor(o: ExecutorOptions) {
    this.#o = o;
    this.machine = o.machine;
    this.#byKey = new Map(o.groups.map((g) => [g.key, g]));
  }

  /** Feeds one input to the machine at the clock's now and carries out what it returns. */
  input(fn: (m: ResourceMachine, now: number) => RmAction[]): void {
    if (this.#closed) return;
    this.dispatch(fn(this.machine, this.#o.clock.now()));
  }

  dispatch(actions: RmAction[]): void {
    for (const a of actions) {
      switch (a.type) {
        case 'log':
          this.#o.logger[a.level](a.msg);
          break;
        case 'send':
          try {
            this.#o.send(a.fields);
          } catch (err) {
            this.#o.logger.error(`cannot send ${a.fields.get('t')}: ${(err as Error).message}`);
          }
          break;
        case 'acquire':
        case 'release':
          this.#pending.push({ job: a.job, kind: a.type, groups: a.groups, reason: a.reason });
          break;
        case 'stopped':
          this.#o.onStopped?.();
          break;
        case 'fatal':
          this.#o.onFatal?.(a.reason);
          break;
      }
    }
    void this.#pump();
    this.#arm();
  }

  /** Resolves when no job runs or waits (tests; a stop waits through the machine instead). */
  idle(): Promise<void> {
    if (!this.#busy && this.#pending.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  close(): void {
    this.#closed = true;
    this.#o.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(): void {
    if (this.#closed) return;
    const d = this.machine.nextDeadline();
    if (d === this.#timerAt) return;
    this.#o.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = d;
    if (d === undefined) return;
    this.#timer = this.#o.clock.setTimeout(() => {
      this.#timer = undefined;
      this.#timerAt = undefined;
      this.input((m, now) => m.tick(now));
    }, Math.max(0, d - this.#o.clock.now()));
  }

  async #pump(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      while (this.#pending.length > 0 && !this.#closed) {
        const job = this.#pending.shift()!;
        const failedGroups: string[] = [];
        const stopFailedGroups: string[] = [];
        const details: string[] = [];
        for (const key of job.groups) {
          const g = this.#byKey.get(key);
          if (!g) {
            this.#o.logger.error(`no haresources group ${key} (asked by ${job.reason})`);
            if (job.kind === 'acquire') failedGroups.push(key);
            continue;
          }
          let r: GroupResult;
          try {
            r = job.kind === 'acquire' ? await this.#o.runner.startGroup(g) : await this.#o.runner.stopGroup(g);
          } catch (err) {
            r = { group: g, ok: false, steps: [], rolledBack: [], failed: undefined };
            details.push(`${key}: ${(err as Error).message}`);
          }
          if (!r.ok) {
            (job.kind === 'acquire' ? failedGroups : stopFailedGroups).push(key);
            if (r.failed?.error) details.push(r.failed.error);
          }
        }
        this.dispatch(this.machine.jobDone(job.job, { failedGroups, stopFailedGroups, detail: details.join('; ') || undefined }, this.#o.clock.now()));
      }
    } finally {
      this.#busy = false;
      if (this.#pending.length === 0) for (const w of this.#idleWaiters.splice(0)) w();
    }
  }
}
