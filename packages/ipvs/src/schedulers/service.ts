/**
 * A virtual service as its scheduler sees it, with ip_vs_ctl.c's bookkeeping: an added server goes
 * to the front of the list and the scheduler's add_dest hook runs; a removed one leaves the list
 * (marked unavailable) and del_dest runs; an edit runs upd_dest; a scheduler change (ipvsadm -E -s)
 * starts a fresh scheduler instance over the current list. Pure: the data plane and the tests
 * drive it the same way.
 */
import { type Clock, realClock } from '@tandem/core/clock';
import { getScheduler } from './registry.ts';
import { Dest, type SchedRequest, type SchedService, type Scheduler } from './types.ts';
import './index.ts';

export class SchedulerNotFound extends Error {
  readonly scheduler: string;
  constructor(name: string) {
    super(`unknown scheduler ${name}`);
    this.scheduler = name;
  }
}

export class ServiceScheduling implements SchedService {
  readonly dests: Dest[] = [];
  flags: ReadonlySet<string>;
  readonly clock: Clock;
  readonly protocol: SchedService['protocol'];
  #scheduler: Scheduler;

  constructor(scheduler: string, opts: { flags?: Iterable<string>; clock?: Clock; protocol?: SchedService['protocol'] } = {}) {
    this.flags = new Set(opts.flags ?? []);
    this.clock = opts.clock ?? realClock;
    this.protocol = opts.protocol ?? 'tcp';
    this.#scheduler = this.#make(scheduler);
  }

  get schedulerName(): string {
    return this.#scheduler.name;
  }

  get scheduler(): Scheduler {
    return this.#scheduler;
  }

  #make(name: string): Scheduler {
    const f = getScheduler(name);
    if (!f) throw new SchedulerNotFound(name);
    return f.create(this);
  }

  setScheduler(name: string): void {
    if (name !== this.#scheduler.name) this.#scheduler = this.#make(name);
  }

  setFlags(flags: Iterable<string>): void {
    this.flags = new Set(flags);
  }

  find(address: string, port: number): Dest | undefined {
    for (const d of this.dests) if (d.port === port && d.address === address) return d;
    return undefined;
  }

  /** ipvsadm -a. `revive` re-adds a removed Dest object (its live connections keep counting). */
  add(address: string, port: number, weight: number, thresholds: { upper?: number; lower?: number } = {}, revive?: Dest): Dest {
    const d = revive ?? new Dest(address, port, weight);
    d.setWeight(weight);
    d.upperThreshold = thresholds.upper ?? 0;
    d.lowerThreshold = thresholds.lower ?? 0;
    d.available = true;
    this.dests.unshift(d);
    this.#scheduler.addDest?.(d);
    return d;
  }

  /** ipvsadm -e. */
  edit(d: Dest, weight: number, thresholds: { upper?: number; lower?: number } = {}): void {
    d.setWeight(weight);
    d.upperThreshold = thresholds.upper ?? 0;
    d.lowerThreshold = thresholds.lower ?? 0;
    // A raised threshold or cleared one may lift the overload mark (ip_vs_ctl re-evaluates it).
    if (d.upperThreshold === 0 || d.activeConns + d.inactConns < d.upperThreshold) d.overloaded = false;
    this.#scheduler.updDest?.(d);
  }

  /** ipvsadm -d. */
  remove(d: Dest): void {
    const i = this.dests.indexOf(d);
    if (i < 0) return;
    this.dests.splice(i, 1);
    d.available = false;
    this.#scheduler.delDest?.(d, i);
  }

  schedule(req: SchedRequest): Dest | undefined {
    return this.#scheduler.schedule(req);
  }
}
