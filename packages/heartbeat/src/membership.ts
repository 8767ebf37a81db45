/**
 * Membership: who is alive, over which links. A pure state machine: it is fed authenticated messages
 * (`heard`) and the passage of time (`tick`), each with an explicit monotonic `now` in ms, and returns
 * the typed events that follow. It owns no timer and no socket; the daemon (or a simulation) asks
 * `nextDeadline()` when to call `tick` next, so a death is declared exactly when it falls due rather
 * than on the next poll (heartbeat 3.0.6 polls every 250 ms and so declares up to ~0.5 s late).
 *
 * Rules, as heartbeat 3.0.6 applies them (reference/heartbeat.md §3, §5.2, §6):
 * - A node is alive while ANY link delivers: node liveness is the latest packet over all links;
 *   a link is dead when that link alone has been silent for the node's dead time.
 * - The dead time of a peer is the `dt` it advertises in its status packets (its own deadtime),
 *   falling back to the local deadtime until it has advertised one.
 * - A node never heard from is declared dead `initdead` after start (communications never came up).
 * - A packet arriving more than `warntime` after the previous one is a late heartbeat (a warning).
 * - `hg` (generation) rises on every restart of the peer and its `seq` starts again: a higher
 *   generation is a restart; a lower one, or a seq not above the last one seen, is a duplicate or a
 *   replay and is ignored (a copy over a second medium still refreshes that medium's link).
 * - A status `st=dead` (sent on graceful shutdown, `shutdone`) declares the node dead at once, so the
 *   peer takes over without waiting for the dead time.
 */
import type { Clock, TimerHandle } from '@tandem/core';
import type { Timing } from './types.ts';

export type NodeState = 'init' | 'up' | 'active' | 'dead' | 'ping';
export type LinkState = 'up' | 'dead';
export type NodeType = 'normal' | 'ping';

/** What the daemon passes in for each authenticated packet. */
export interface HeardMessage {
  node: string;
  link: string;
  /** Message type (`t`): `status`, `resource`, ... */
  type: string;
  /** `st` of a status message (`init`, `up`, `active`, `dead`, `ping`). */
  status?: string | undefined;
  /** `seq`, parsed from hex. Messages without one (NS_*) do not count as signs of life. */
  seq?: number | undefined;
  /** `hg`, parsed from hex. */
  generation?: number | undefined;
  /** `dt`, parsed from hex ms: the sender's own dead time. */
  deadtimeMs?: number | undefined;
}

export type MembershipEvent =
  | { type: 'node-up'; at: number; node: string; status: NodeState; generation: number | undefined }
  | { type: 'node-status'; at: number; node: string; status: NodeState; previous: NodeState }
  | { type: 'node-dead'; at: number; node: string; reason: 'timeout' | 'initdead' | 'shutdown'; silentMs: number }
  | { type: 'link-up'; at: number; node: string; link: string }
  | { type: 'link-dead'; at: number; node: string; link: string; silentMs: number }
  | { type: 'late-heartbeat'; at: number; node: string; intervalMs: number }
  | { type: 'node-restarted'; at: number; node: string; generation: number; previous: number };

/** Why `heard` ignored a message (for counters). */
export type IgnoreReason = 'unknown-node' | 'local-node' | 'no-seq' | 'old-generation' | 'duplicate';

export interface HeardResult {
  events: MembershipEvent[];
  /** Set when the message was not new for the node (the link may still have been refreshed). */
  ignored?: IgnoreReason | undefined;
}

export interface LinkView {
  name: string;
  state: LinkState;
  lastHeard: number | undefined;
}

export interface NodeView {
  name: string;
  type: NodeType;
  state: NodeState;
  generation: number | undefined;
  lastSeq: number | undefined;
  lastHeard: number | undefined;
  /** The dead time in force for this node (advertised `dt`, else local). */
  deadtimeMs: number;
  links: LinkView[];
}

export interface MembershipOptions {
  /** This node's name; it is listed but never timed out (its state is set by the daemon). */
  localNode: string;
  /** Configured peers and the local node. */
  nodes: readonly string[];
  /** Ping pseudo-nodes (ping, ping_group names). */
  pingNodes?: readonly string[];
  /** Link names (one per local medium, as cl_status lists them). */
  links: readonly string[];
  timing: Timing;
  /** Dead time for ping nodes (deadping); defaults to deadtime. */
  deadpingMs?: number | undefined;
  /** Monotonic time of start; initdead counts from here. */
  now: number;
}

interface LinkRec {
  name: string;
  state: LinkState;
  lastHeard: number | undefined;
  lastSeq: number | undefined;
  generation: number | undefined;
}

interface NodeRec {
  name: string;
  type: NodeType;
  state: NodeState;
  generation: number | undefined;
  lastSeq: number | undefined;
  lastHeard: number | undefined;
  advertisedDeadtimeMs: number | undefined;
  links: Map<string, LinkRec>;
}

export class Membership {
  readonly localNode: string;
  readonly timing: Readonly<Timing>;
  readonly #startedAt: number;
  readonly #deadpingMs: number;
  readonly #nodes = new Map<string, NodeRec>();
  readonly #linkNames: string[];

  constructor(opts: MembershipOptions) {
    this.localNode = opts.localNode;
    this.timing = Object.freeze({ ...opts.timing });
    this.#startedAt = opts.now;
    this.#deadpingMs = opts.deadpingMs ?? opts.timing.deadtimeMs;
    this.#linkNames = [...opts.links];
    for (const n of opts.nodes) this.#add(n, 'normal');
    for (const n of opts.pingNodes ?? []) this.#add(n, 'ping');
  }

  #add(name: string, type: NodeType): void {
    if (this.#nodes.has(name)) return;
    const links = new Map<string, LinkRec>();
    const names = type === 'ping' ? [name] : this.#linkNames;
    for (const l of names) links.set(l, { name: l, state: 'dead', lastHeard: undefined, lastSeq: undefined, generation: undefined });
    this.#nodes.set(name, {
      name, type, state: 'init', generation: undefined, lastSeq: undefined,
      lastHeard: undefined, advertisedDeadtimeMs: undefined, links,
    });
  }

  /** The dead time in force for a node. */
  deadtimeFor(node: string): number {
    const n = this.#nodes.get(node);
    if (!n) return this.timing.deadtimeMs;
    if (n.type === 'ping') return this.#deadpingMs;
    return n.advertisedDeadtimeMs ?? this.timing.deadtimeMs;
  }

  /** Sets the local node's own state (init → up → active; dead on shutdown). */
  setLocalState(state: NodeState): void {
    const n = this.#nodes.get(this.localNode);
    if (n) n.state = state;
  }

  /** Feeds one authenticated message. */
  heard(msg: HeardMessage, now: number): HeardResult {
    const n = this.#nodes.get(msg.node);
    if (!n) return { events: [], ignored: 'unknown-node' };
    const events: MembershipEvent[] = [];
    if (msg.node === this.localNode) {
      // Our own packets come back over a self-addressed ucast or a looped multicast: they prove the
      // link works (heartbeat shows `Link node1:eth0 up`), nothing more.
      this.#touchLink(n, msg, now, events);
      return { events, ignored: 'local-node' };
    }
    if (n.type !== 'ping' && msg.seq === undefined) return { events, ignored: 'no-seq' };

    let restarted = false;
    if (n.type !== 'ping' && msg.generation !== undefined && n.generation !== undefined) {
      if (msg.generation < n.generation) return { events, ignored: 'old-generation' };
      if (msg.generation > n.generation) restarted = true;
    }

    this.#touchLink(n, msg, now, events);
    const fresh = n.type === 'ping' || restarted || n.lastSeq === undefined || (msg.seq !== undefined && msg.seq > n.lastSeq);
    if (!fresh) return { events, ignored: 'duplicate' };

    if (restarted) {
      events.push({ type: 'node-restarted', at: now, node: n.name, generation: msg.generation!, previous: n.generation! });
    }
    const wasDead = n.state === 'dead' || n.lastHeard === undefined;
    if (!wasDead && !restarted && n.lastHeard !== undefined && now - n.lastHeard > this.timing.warntimeMs) {
      events.push({ type: 'late-heartbeat', at: now, node: n.name, intervalMs: Math.round(now - n.lastHeard) });
    }
    if (msg.generation !== undefined) n.generation = msg.generation;
    if (msg.seq !== undefined) n.lastSeq = msg.seq;
    n.lastHeard = now;
    if (msg.deadtimeMs !== undefined && msg.deadtimeMs > 0) n.advertisedDeadtimeMs = msg.deadtimeMs;

    if (msg.status === 'dead') {
      if (n.state !== 'dead') {
        n.state = 'dead';
        events.push({ type: 'node-dead', at: now, node: n.name, reason: 'shutdown', silentMs: 0 });
      }
      // The links stay up: they still deliver; the node is what stopped.
      return { events };
    }

    const status = this.#statusOf(n, msg);
    if (wasDead) {
      n.state = status;
      events.push({ type: 'node-up', at: now, node: n.name, status, generation: n.generation });
    } else if (status !== n.state) {
      const previous = n.state;
      n.state = status;
      events.push({ type: 'node-status', at: now, node: n.name, status, previous });
    }
    return { events };
  }

  #statusOf(n: NodeRec, msg: HeardMessage): NodeState {
    if (n.type === 'ping') return 'ping';
    switch (msg.status) {
      case 'init': case 'up': case 'active': return msg.status;
      // A non-status message proves life but says nothing of the state.
      default: return n.state === 'dead' || n.state === 'init' ? 'up' : n.state;
    }
  }

  /** Refreshes the link the message came over; returns whether it was new for that link. */
  #touchLink(n: NodeRec, msg: HeardMessage, now: number, events: MembershipEvent[]): boolean {
    let l = n.links.get(msg.link);
    if (!l) {
      // A link not among the local media (a medium added by reload, or a peer on a bcast alias).
      l = { name: msg.link, state: 'dead', lastHeard: undefined, lastSeq: undefined, generation: undefined };
      n.links.set(msg.link, l);
    }
    if (n.type !== 'ping' && msg.seq !== undefined && l.lastSeq !== undefined) {
      const sameGen = msg.generation === undefined || l.generation === undefined || msg.generation === l.generation;
      if (msg.generation !== undefined && l.generation !== undefined && msg.generation < l.generation) return false;
      if (sameGen && msg.seq <= l.lastSeq) return false;
    }
    if (msg.seq !== undefined) l.lastSeq = msg.seq;
    if (msg.generation !== undefined) l.generation = msg.generation;
    l.lastHeard = now;
    if (l.state !== 'up') {
      l.state = 'up';
      events.push({ type: 'link-up', at: now, node: n.name, link: l.name });
    }
    return true;
  }

  /** Declares every death that has fallen due by `now`. */
  tick(now: number): MembershipEvent[] {
    const events: MembershipEvent[] = [];
    for (const n of this.#nodes.values()) {
      if (n.name === this.localNode) continue;
      const dt = this.deadtimeFor(n.name);
      for (const l of n.links.values()) {
        if (l.state === 'up' && l.lastHeard !== undefined && now - l.lastHeard >= dt) {
          l.state = 'dead';
          events.push({ type: 'link-dead', at: now, node: n.name, link: l.name, silentMs: now - l.lastHeard });
        }
      }
      if (n.state === 'dead') continue;
      if (n.lastHeard === undefined) {
        const initdead = n.type === 'ping' ? Math.max(this.timing.initdeadMs, dt) : this.timing.initdeadMs;
        if (now - this.#startedAt >= initdead) {
          n.state = 'dead';
          events.push({ type: 'node-dead', at: now, node: n.name, reason: 'initdead', silentMs: now - this.#startedAt });
        }
      } else if (now - n.lastHeard >= dt) {
        n.state = 'dead';
        events.push({ type: 'node-dead', at: now, node: n.name, reason: 'timeout', silentMs: now - n.lastHeard });
      }
    }
    return events;
  }

  /** The earliest time at which `tick` may declare something; undefined when nothing is pending. */
  nextDeadline(): number | undefined {
    let best: number | undefined;
    const consider = (t: number) => { if (best === undefined || t < best) best = t; };
    for (const n of this.#nodes.values()) {
      if (n.name === this.localNode) continue;
      const dt = this.deadtimeFor(n.name);
      for (const l of n.links.values()) if (l.state === 'up' && l.lastHeard !== undefined) consider(l.lastHeard + dt);
      if (n.state === 'dead') continue;
      if (n.lastHeard === undefined) {
        const initdead = n.type === 'ping' ? Math.max(this.timing.initdeadMs, dt) : this.timing.initdeadMs;
        consider(this.#startedAt + initdead);
      } else consider(n.lastHeard + dt);
    }
    return best;
  }

  /** True once every configured peer has been heard from at least once (communications are up). */
  get commsUp(): boolean {
    for (const n of this.#nodes.values()) if (n.name !== this.localNode && n.type === 'normal' && n.lastHeard === undefined) return false;
    return true;
  }

  node(name: string): NodeView | undefined {
    const n = this.#nodes.get(name);
    return n ? this.#view(n) : undefined;
  }

  nodes(): NodeView[] {
    return [...this.#nodes.values()].map((n) => this.#view(n));
  }

  #view(n: NodeRec): NodeView {
    return {
      name: n.name, type: n.type, state: n.state, generation: n.generation, lastSeq: n.lastSeq, lastHeard: n.lastHeard,
      deadtimeMs: this.deadtimeFor(n.name),
      links: [...n.links.values()].map((l) => ({ name: l.name, state: l.state, lastHeard: l.lastHeard })),
    };
  }
}

/** The log line heartbeat writes for each event (the classic texts, so log watchers keep working). */
export function describeEvent(e: MembershipEvent): { level: 'info' | 'warn'; msg: string } {
  switch (e.type) {
    case 'node-up': return { level: 'info', msg: `Status update for node ${e.node}: status ${e.status}` };
    case 'node-status': return { level: 'info', msg: `Status update for node ${e.node}: status ${e.status}` };
    case 'node-dead':
      return e.reason === 'shutdown'
        ? { level: 'info', msg: `Received shutdown notice from '${e.node}'.` }
        : { level: 'warn', msg: `node ${e.node}: is dead` };
    case 'link-up': return { level: 'info', msg: `Link ${e.node}:${e.link} up.` };
    case 'link-dead': return { level: 'info', msg: `Link ${e.node}:${e.link} dead.` };
    case 'late-heartbeat': return { level: 'warn', msg: `Late heartbeat: Node ${e.node}: interval ${e.intervalMs} ms` };
    case 'node-restarted': return { level: 'info', msg: `Heartbeat restart on node ${e.node} (generation ${e.previous} -> ${e.generation})` };
  }
}

/**
 * Drives a Membership on a Clock: after every input it re-arms one timer for the next deadline, so a
 * death is declared when it falls due and no timer polls in between. `confirm` lets the daemon run the
 * decision after one more I/O poll (see daemon.ts: a timer that fires late, after the event loop was
 * blocked, must not declare a node dead whose packets already wait in the socket buffer).
 */
export class MembershipDriver {
  readonly membership: Membership;
  readonly #clock: Clock;
  readonly #onEvents: (events: MembershipEvent[]) => void;
  readonly #confirm: (fn: () => void) => void;
  #timer: TimerHandle | undefined;
  #armedFor: number | undefined;
  #stopped = false;

  constructor(
    membership: Membership,
    clock: Clock,
    onEvents: (events: MembershipEvent[]) => void,
    confirm: (fn: () => void) => void = (fn) => fn(),
  ) {
    this.membership = membership;
    this.#clock = clock;
    this.#onEvents = onEvents;
    this.#confirm = confirm;
    this.#arm();
  }

  heard(msg: HeardMessage): HeardResult {
    const r = this.membership.heard(msg, this.#clock.now());
    if (r.events.length) this.#onEvents(r.events);
    this.#arm();
    return r;
  }

  /** Runs due deadlines now (also called by the timer). */
  check(): void {
    if (this.#stopped) return;
    const events = this.membership.tick(this.#clock.now());
    if (events.length) this.#onEvents(events);
    this.#arm();
  }

  stop(): void {
    this.#stopped = true;
    this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(): void {
    if (this.#stopped) return;
    const due = this.membership.nextDeadline();
    // A timer already armed for an earlier time stays: it fires, finds nothing due, and re-arms. This
    // spares a clear/set pair on every packet.
    if (this.#timer && this.#armedFor !== undefined && due !== undefined && this.#armedFor <= due) return;
    this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#armedFor = due;
    if (due === undefined) return;
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      this.#armedFor = undefined;
      this.#confirm(() => this.check());
    }, Math.max(0, due - this.#clock.now()));
  }
}
