/**
 * A heartbeat cluster in virtual time: each simulated node sends a status every keepalive on every
 * medium (with seq, generation and its dead time, as the daemon does) and runs the real Membership
 * through the real MembershipDriver, over the in-memory network of the media (loss, delay, jitter,
 * cut links and ports, partitions) on a ManualClock. Nodes crash (fall silent), restart (new
 * generation, seq from 1) and shut down gracefully (one `st=dead`). Every membership event is
 * recorded with its observer. Packets are plain JSON: the wire codec is tested on its own and in the
 * daemon tests; here only membership is under test.
 */
import { ManualClock, type TimerHandle } from '@tandem/core';
import { Membership, MembershipDriver, type HeardMessage, type MembershipEvent, type NodeState } from '../membership.ts';
import { MemoryNetwork } from '../media/memory.ts';
import type { Medium, Timing } from '../types.ts';

export interface SimPacket {
  type: string;
  src: string;
  status: string;
  seq: number;
  generation: number;
  deadtimeMs: number;
}

export type Observed = MembershipEvent & { observer: string };

export interface SimClusterOptions {
  nodes: readonly string[];
  media: readonly string[];
  timing: Timing;
  seed?: number;
  /** Per-node start offsets in ms (default 0). */
  startAt?: Record<string, number>;
}

export class SimNode {
  readonly name: string;
  readonly cluster: SimCluster;
  generation = 0;
  seq = 0;
  alive = false;
  status: NodeState = 'init';
  driver: MembershipDriver | undefined;
  #sendTimer: TimerHandle | undefined;
  #nextSend = 0;
  #media: Medium[] = [];

  constructor(name: string, cluster: SimCluster) {
    this.name = name;
    this.cluster = cluster;
  }

  get membership(): Membership {
    if (!this.driver) throw new Error(`${this.name} is not running`);
    return this.driver.membership;
  }

  start(): void {
    const c = this.cluster;
    this.generation++;
    this.seq = 0;
    this.alive = true;
    this.status = 'active';
    const m = new Membership({ localNode: this.name, nodes: c.nodeNames, links: c.media, timing: c.timing, now: c.clock.now() });
    m.setLocalState('active');
    this.driver = new MembershipDriver(m, c.clock, (events) => {
      for (const e of events) c.events.push({ ...e, observer: this.name });
    });
    this.#media = c.media.map((link) => c.network.medium(this.name, link));
    for (const m of this.#media) void m.start((r) => this.#receive(JSON.parse(r.packet.toString('utf8')) as SimPacket, r.link));
    this.#nextSend = c.clock.now();
    this.#sendLoop();
  }

  #receive(p: SimPacket, link: string): void {
    if (!this.alive || !this.driver) return;
    const msg: HeardMessage = { node: p.src, link, type: p.type, status: p.status, seq: p.seq, generation: p.generation, deadtimeMs: p.deadtimeMs };
    this.driver.heard(msg);
  }

  #send(status: string): void {
    this.seq++;
    const p: SimPacket = { type: 'status', src: this.name, status, seq: this.seq, generation: this.generation, deadtimeMs: this.cluster.timing.deadtimeMs };
    const packet = Buffer.from(JSON.stringify(p));
    for (const m of this.#media) m.send(packet);
  }

  #sendLoop(): void {
    const c = this.cluster;
    this.#send(this.status);
    // Deadline-based: the next send is due a whole keepalive after the previous due time, not after
    // whenever this callback ran, so a late timer does not shift every later packet.
    this.#nextSend += c.timing.keepaliveMs;
    this.#sendTimer = c.clock.setTimeout(() => this.#sendLoop(), this.#nextSend - c.clock.now());
  }

  /** Falls silent at once (SIGKILL, power off). */
  crash(): void {
    this.alive = false;
    this.cluster.clock.clearTimeout(this.#sendTimer);
    this.driver?.stop();
    this.driver = undefined;
    for (const m of this.#media.splice(0)) void m.close();
  }

  /** Graceful stop: one `st=dead` on every medium, then silence. */
  shutdown(): void {
    this.#send('dead');
    this.crash();
  }
}

export class SimCluster {
  readonly clock = new ManualClock(0);
  readonly network: MemoryNetwork;
  readonly timing: Timing;
  readonly media: readonly string[];
  readonly nodeNames: readonly string[];
  readonly nodes = new Map<string, SimNode>();
  readonly events: Observed[] = [];

  constructor(opts: SimClusterOptions) {
    this.timing = opts.timing;
    this.media = opts.media;
    this.nodeNames = opts.nodes;
    this.network = new MemoryNetwork(this.clock, opts.seed ?? 1);
    for (const n of opts.nodes) this.nodes.set(n, new SimNode(n, this));
    for (const n of opts.nodes) {
      const at = opts.startAt?.[n] ?? 0;
      if (at === 0) this.node(n).start();
      else this.clock.setTimeout(() => this.node(n).start(), at);
    }
  }

  node(name: string): SimNode {
    const n = this.nodes.get(name);
    if (!n) throw new Error(`no node ${name}`);
    return n;
  }

  /** Schedules an action at an absolute virtual time. */
  at(ms: number, fn: () => void): void {
    this.clock.setTimeout(fn, ms - this.clock.now());
  }

  runUntil(ms: number): void {
    this.clock.advanceTo(ms);
  }

  /** Events seen by `observer` (optionally of one type, about one node). */
  seen(observer: string, type?: MembershipEvent['type'], about?: string): Observed[] {
    return this.events.filter((e) => e.observer === observer && (type === undefined || e.type === type) && (about === undefined || e.node === about));
  }
}
