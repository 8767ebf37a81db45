/**
 * A deterministic simulation of resource managers talking over an in-memory wire, in virtual time:
 * messages arrive after `latencyMs`, jobs finish after `jobMs` (a start can be made to fail), ticks
 * fire at each machine's `nextDeadline()`. It records the wire (who sent what, when), every log line,
 * and where each group runs over time, so tests check the conversation and the invariant that a
 * group never runs on two nodes at once. A stopped node's `stopped` action is followed by the
 * daemon's `shutdone st=dead`, as the real daemon sends it.
 */
import { ResourceMachine, type MachineOptions, type RmAction, type JobResult } from './machine.ts';
import type { HbFields } from '../types.ts';

export interface WireRecord {
  at: number;
  from: string;
  fields: HbFields;
}

interface Ev {
  at: number;
  /** At equal times, packets and finished jobs (0) come before timers (1): they are already waiting. */
  prio: number;
  seq: number;
  fn: () => void;
}

export interface SimNodeOptions extends Omit<MachineOptions, 'now' | 'localNode'> {
  name: string;
  /** How late this node notices a due timer (heartbeat polls every 250 ms). */
  tickDelayMs?: number | undefined;
  /** Extra delay of every message to this node (a busy or slow node). */
  inboundDelayMs?: number | undefined;
}

export class SimNode {
  readonly name: string;
  machine: ResourceMachine;
  alive = true;
  stopped = false;
  fatal: string | undefined;
  /** Groups whose start fails on this node. */
  readonly failStart = new Set<string>();
  /** Groups whose stop fails on this node (they keep running). */
  readonly failStop = new Set<string>();
  readonly logs: { at: number; level: string; msg: string }[] = [];
  tickAt: number | undefined;
  readonly opts: SimNodeOptions;
  constructor(opts: SimNodeOptions, now: number) {
    this.name = opts.name;
    this.opts = opts;
    this.machine = new ResourceMachine({ ...opts, localNode: opts.name, now });
  }
}

export class RmSim {
  now = 0;
  readonly latencyMs: number;
  readonly jobMs: number;
  readonly nodes = new Map<string, SimNode>();
  readonly wire: WireRecord[] = [];
  /** Where each group runs: group key → nodes running it. */
  readonly running = new Map<string, Set<string>>();
  /** Every moment a group ran on more than one node. */
  readonly violations: string[] = [];
  #events: Ev[] = [];
  #seq = 0;

  constructor(opts: { latencyMs?: number; jobMs?: number } = {}) {
    this.latencyMs = opts.latencyMs ?? 1;
    this.jobMs = opts.jobMs ?? 50;
  }

  add(opts: SimNodeOptions): SimNode {
    const n = new SimNode(opts, this.now);
    this.nodes.set(n.name, n);
    return n;
  }

  node(name: string): SimNode {
    const n = this.nodes.get(name);
    if (!n) throw new Error(`no node ${name}`);
    return n;
  }

  at(at: number, fn: () => void, prio = 0): void {
    this.#events.push({ at, prio, seq: ++this.#seq, fn });
  }

  /** Feeds the result of one machine input to the simulated world. */
  apply(n: SimNode, actions: RmAction[]): void {
    for (const a of actions) {
      switch (a.type) {
        case 'log':
          n.logs.push({ at: this.now, level: a.level, msg: a.msg });
          break;
        case 'send':
          this.#send(n, a.fields);
          break;
        case 'acquire': {
          // Counted as running from the moment its start begins: the strictest reading.
          const failed = a.groups.filter((g) => n.failStart.has(g));
          for (const g of a.groups) if (!failed.includes(g)) this.#run(g, n.name, true);
          this.#finishJob(n, a.job, { failedGroups: failed, detail: failed.length ? 'simulated start failure' : undefined });
          break;
        }
        case 'release': {
          const job = a.job;
          const stuck = a.groups.filter((g) => n.failStop.has(g));
          const groups = a.groups.filter((g) => !stuck.includes(g));
          this.at(this.now + this.jobMs, () => {
            for (const g of groups) this.#run(g, n.name, false);
          });
          this.#finishJob(n, job, { stopFailedGroups: stuck }, 0.5);
          break;
        }
        case 'stopped':
          n.stopped = true;
          this.#send(n, new Map([['t', 'shutdone'], ['st', 'dead']]));
          n.alive = false;
          break;
        case 'fatal':
          n.fatal = a.reason;
          break;
      }
    }
    this.#scheduleTick(n);
  }

  #finishJob(n: SimNode, job: number, result: JobResult, extra = 0): void {
    const machine = n.machine;
    this.at(this.now + this.jobMs + extra, () => {
      if (!n.alive || n.machine !== machine) return;
      this.apply(n, machine.jobDone(job, result, this.now));
    });
  }

  #run(group: string, node: string, on: boolean): void {
    let s = this.running.get(group);
    if (!s) this.running.set(group, (s = new Set()));
    if (on) s.add(node);
    else s.delete(node);
    if (s.size > 1) this.violations.push(`${this.now}: ${group} runs on ${[...s].join(' and ')}`);
  }

  #send(from: SimNode, f: HbFields): void {
    this.wire.push({ at: this.now, from: from.name, fields: f });
    for (const to of this.nodes.values()) {
      if (to === from) continue;
      const dest = f.get('dest');
      if (dest !== undefined && dest !== to.name) continue;
      const machine = to.machine;
      const msg = new Map(f);
      msg.set('src', from.name);
      this.at(this.now + this.latencyMs + (to.opts.inboundDelayMs ?? 0), () => {
        if (!to.alive || !from.alive && f.get('t') !== 'shutdone' || to.machine !== machine) return;
        this.apply(to, machine.message(msg, this.now));
      });
    }
  }

  #scheduleTick(n: SimNode): void {
    const d = n.machine.nextDeadline();
    if (d === undefined || d === n.tickAt) return;
    n.tickAt = d;
    const machine = n.machine;
    this.at(Math.max(d + (n.opts.tickDelayMs ?? 0), this.now), () => {
      if (n.tickAt !== d) return;
      n.tickAt = undefined;
      if (!n.alive || n.machine !== machine) return;
      this.apply(n, machine.tick(this.now));
    }, 1);
  }

  /** Runs events until `until` (virtual ms) or until nothing is left. */
  run(until: number): void {
    for (let guard = 0; guard < 1_000_000; guard++) {
      let best = -1;
      for (let i = 0; i < this.#events.length; i++) {
        const e = this.#events[i]!;
        const b = this.#events[best];
        if (!b || e.at < b.at || (e.at === b.at && (e.prio < b.prio || (e.prio === b.prio && e.seq < b.seq)))) best = i;
      }
      if (best < 0 || this.#events[best]!.at > until) break;
      const e = this.#events.splice(best, 1)[0]!;
      this.now = Math.max(this.now, e.at);
      e.fn();
    }
    this.now = Math.max(this.now, until);
  }

  // ---- scenario helpers ----

  commUp(name: string, at = this.now): void {
    this.at(at, () => {
      const n = this.node(name);
      if (n.alive) this.apply(n, n.machine.commUp(this.now));
    });
  }

  /** The node vanishes without a word (crash); the others declare it dead after `deadtimeMs`. */
  crash(name: string, deadtimeMs: number): void {
    const n = this.node(name);
    n.alive = false;
    for (const g of this.running.values()) g.delete(name);
    for (const other of this.nodes.values()) {
      if (other === n) continue;
      this.at(this.now + deadtimeMs, () => {
        if (other.alive) this.apply(other, other.machine.nodeDead(name, this.now));
      });
    }
  }

  /** A fresh start of a node's daemon: the peers hear it, then its comms come up. */
  restart(name: string, at = this.now): void {
    this.at(at, () => {
      const n = this.node(name);
      n.machine = new ResourceMachine({ ...n.opts, localNode: n.name, now: this.now });
      n.alive = true;
      n.stopped = false;
      n.tickAt = undefined;
      for (const other of this.nodes.values()) {
        if (other !== n && other.alive) this.apply(other, other.machine.nodeUp(name, this.now));
        if (other !== n && other.alive) this.apply(n, n.machine.nodeUp(other.name, this.now));
      }
      this.apply(n, n.machine.commUp(this.now));
    });
  }

  input(name: string, fn: (m: ResourceMachine, now: number) => RmAction[], at = this.now): void {
    this.at(at, () => {
      const n = this.node(name);
      if (n.alive) this.apply(n, fn(n.machine, this.now));
    });
  }

  /** Nodes a group runs on now. */
  holders(group: string): string[] {
    return [...(this.running.get(group) ?? [])].sort();
  }

  /** The wire as `node: t=... k=v ...` lines, optionally only some message types. */
  transcript(types?: readonly string[], since = 0): string[] {
    return this.wire
      .filter((w) => w.at >= since && (!types || types.includes(w.fields.get('t') ?? '')))
      .map((w) => `${w.from}: ${[...w.fields].map(([k, v]) => `${k}=${v}`).join(' ')}`);
  }
}
