/**
 * The resource manager's decisions, as a pure state machine: events in (membership, cluster
 * messages, control requests, finished jobs, the passage of time), actions out (messages to send,
 * groups to acquire or release, log lines). It owns no timer, socket or process; every input carries
 * an explicit monotonic `now` and `nextDeadline()` says when `tick` is due. A thin executor
 * (executor.ts) runs the jobs through the agent runner.
 *
 * It speaks heartbeat 3.0.6's R1 resource conversation, with the same state variables and the same
 * reactions, so that a tandem node and a real heartbeat node hand their groups over correctly:
 *
 * - `starting`, then `resource rsc_hold=none|local|foreign|all rtype=full isstable=0|1 [info=...]`;
 *   after RQSTDELAY (10 s) with both nodes starting, the first to time out takes its local groups
 *   and says so with `isstable=1`; the other then takes its own.
 * - Standby, a three-phase handshake that releases BEFORE the other side acquires, so a VIP is never
 *   up twice: `ask_resources info=me` (from the node giving up), `info=other` (from the taker), the
 *   giver releases (`resource ... info=standby`, then `ask_resources info=done`), the taker acquires
 *   and says `done`. hb_standby starts it locally; hb_takeover asks the peer (`hb_takeover`) to start
 *   it; auto_failback starts it for the foreign groups when the preferred node is back and stable.
 * - Graceful stop: `resource rsc_hold=none info=shutdown`, release everything, then the daemon sends
 *   `shutdone st=dead`; the peer takes over at once (`resource rsc_hold=foreign info=mach_down`, then
 *   its own groups with `info=req_our_resources()`).
 * - A peer declared dead (deadtime, or initdead before it was ever heard): its groups are taken over.
 * - `auto_failback legacy` is heartbeat's "nice_failback off": each node asks for its own groups at
 *   start (`ip-request`, answered with `ip-request-resp` after the holder released them), no
 *   `resource` messages, and no standby.
 *
 * Every message this node sends is also processed by it, as heartbeat processes its own messages:
 * messages sent by heartbeat's forked children (the end of a release or acquisition) are processed
 * before they reach the wire, those of the main process after.
 */
import type { HbFields } from '../types.ts';

export const NONE = 0;
export const LOCAL = 1;
export const FOREIGN = 2;
export const ALL = 3;
export const RSC_NAMES = ['none', 'local', 'foreign', 'all'] as const;
export type RscName = (typeof RSC_NAMES)[number];

export type AutoFailbackMode = 'on' | 'off' | 'legacy';
export type ResourceState = 'init' | 'starting' | 'bothstarting' | 'rscrcvd' | 'stable' | 'shutdown';
export type Standby = 'not' | 'me' | 'other' | 'done';

export interface GroupRef {
  key: string;
  /** Preferred node, lowercased. */
  node: string;
}

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';

export type RmAction =
  | { type: 'send'; fields: HbFields }
  | { type: 'acquire'; job: number; groups: string[]; reason: string }
  | { type: 'release'; job: number; groups: string[]; reason: string }
  | { type: 'log'; level: LogLevel; msg: string }
  /** The graceful release is complete: the daemon may now send `shutdone st=dead` and exit. */
  | { type: 'stopped' }
  /** A resource could not be stopped and still runs: heartbeat would reboot here (see README). */
  | { type: 'fatal'; reason: string };

export interface JobResult {
  /** Groups whose start failed (they were rolled back and are not held). */
  failedGroups?: string[] | undefined;
  /** Groups with a resource that failed to stop and still reports running. */
  stopFailedGroups?: string[] | undefined;
  detail?: string | undefined;
}

export interface MachineOptions {
  localNode: string;
  /** Every normal node (`node` lines), this one included. */
  nodes: readonly string[];
  /** Ping pseudo-nodes (ping addresses and ping_group names). */
  pingNodes?: readonly string[] | undefined;
  groups: readonly GroupRef[];
  autoFailback: AutoFailbackMode;
  now: number;
  /** Heartbeat's fixed RQSTDELAY: how long both starting nodes wait before taking their groups. */
  rqstDelayMs?: number | undefined;
  /** How long a standby request waits for the other side's `other` (heartbeat: 10 s). */
  standbyInitTimeoutMs?: number | undefined;
  /** How long the rest of a standby handover may take (heartbeat: 1 h). */
  standbyResourceTimeoutMs?: number | undefined;
  /** After a failed start, go standby for that group's set this much later (ResourceManager: 30 s). */
  failedStartStandbyDelayMs?: number | undefined;
  /** Retry interval of a delayed auto failback (heartbeat: 1 s). */
  autoFailbackRetryMs?: number | undefined;
  ipfail?: IpfailOptions | undefined;
}

export interface IpfailOptions {
  /** The giveup delay is two keepalives, as ipfail's. */
  keepaliveMs: number;
  /** After the other side becomes stable, how long before a pending giveup is re-checked (ipfail: 10 s). */
  recheckMs?: number | undefined;
}

interface Job {
  id: number;
  kind: 'acquire' | 'release';
  purpose: 'req_our_resources' | 'mach_down' | 'standby_me' | 'standby_other' | 'giveup' | 'ip_request' | 'ip_request_resp';
  groups: string[];
  /** ask_resources rsc_hold of the standby job, as heartbeat's child copied it at fork. */
  standbyRsc?: number | undefined;
  peer?: string | undefined;
  key?: string | undefined;
  node?: string | undefined;
  /** req_our_resources: groups announced to ourselves with ip-request-resp as the child ends. */
  announce?: string[] | undefined;
}

type Queued =
  | { kind: 'mach_down'; node: string }
  | { kind: 'hb_takeover'; rsc: number }
  | { kind: 'ip_request'; from: string; key: string }
  | { kind: 'ip_request_resp'; key: string };

interface Peer {
  name: string;
  up: boolean;
  anyPacketsYet: boolean;
  /** Taken over after its death or shutdown; cleared when it starts again. */
  gone: boolean;
}

function fields(...pairs: [string, string | undefined][]): HbFields {
  const m: HbFields = new Map();
  for (const [k, v] of pairs) if (v !== undefined) m.set(k, v);
  return m;
}

export function encodeRsc(s: string | undefined): number {
  const i = RSC_NAMES.indexOf((s ?? '') as RscName);
  return i < 0 ? NONE : i;
}

export class ResourceMachine {
  readonly localNode: string;
  readonly niceFailback: boolean;
  readonly autoFailback: boolean;
  readonly mode: AutoFailbackMode;
  readonly groups: readonly GroupRef[];
  readonly #pingNodes: Set<string>;
  readonly #rqstDelayMs: number;
  readonly #standbyInitMs: number;
  readonly #standbyRscMs: number;
  readonly #failedStartDelayMs: number;
  readonly #autoFailbackRetryMs: number;

  // heartbeat's state, same names where it helps reading both side by side
  resourceState: ResourceState = 'init';
  iHold = NONE;
  otherHolds = NONE;
  otherIsStable = false;
  takeoverInProgress = false;
  goingStandby: Standby = 'not';
  standbyRsctype = ALL;
  /** Deadline of the running standby, 0 when none. */
  standbyRunningUntil = 0;
  rscNeedsFailback = false;
  rscNeedsShutdown = false;
  shutdownInProgress = false;
  #resourceShutdownStarted = false;
  #localTakeoverAt = 0;
  #localTakeoverWorkDone = false;
  #foreignTakeoverWorkDone = false;
  #initAnnounced = false;
  #autoFailbackAt = 0;
  #commUp = false;
  #legacyRequested = false;
  readonly #failedStartTimers: { at: number; rsc: RscName }[] = [];

  readonly #peers = new Map<string, Peer>();
  readonly #jobs = new Map<number, Job>();
  #jobSeq = 0;
  readonly #queue: Queued[] = [];
  /** Groups actually held (acquired without failure, not released). */
  readonly held = new Set<string>();
  /** Groups whose last start failed. */
  readonly failed = new Set<string>();

  readonly ipfail: Ipfail | undefined;

  #now = 0;
  #out: RmAction[] = [];
  #own: HbFields[] = [];

  constructor(o: MachineOptions) {
    this.localNode = o.localNode.toLowerCase();
    this.mode = o.autoFailback;
    // heartbeat's set_auto_failback: on/off keep nice_failback; legacy is nice_failback off.
    this.niceFailback = o.autoFailback !== 'legacy';
    this.autoFailback = o.autoFailback === 'on';
    this.groups = o.groups.map((g) => ({ key: g.key, node: g.node.toLowerCase() }));
    this.#pingNodes = new Set((o.pingNodes ?? []).map((n) => n.toLowerCase()));
    this.#rqstDelayMs = o.rqstDelayMs ?? 10_000;
    this.#standbyInitMs = o.standbyInitTimeoutMs ?? 10_000;
    this.#standbyRscMs = o.standbyResourceTimeoutMs ?? 3_600_000;
    this.#failedStartDelayMs = o.failedStartStandbyDelayMs ?? 30_000;
    this.#autoFailbackRetryMs = o.autoFailbackRetryMs ?? 1000;
    for (const n of o.nodes) {
      const name = n.toLowerCase();
      if (name !== this.localNode) this.#peers.set(name, { name, up: false, anyPacketsYet: false, gone: false });
    }
    this.#now = o.now;
    if (o.ipfail) {
      const peer = [...this.#peers.keys()][0];
      this.ipfail = new Ipfail({ localNode: this.localNode, peer, pingNodes: [...this.#pingNodes], autoFailback: this.autoFailback, ...o.ipfail });
    }
  }

  // ------------------------------------------------------------------------------------------
  // Queries

  /** ourkeys / otherkeys / allkeys of ResourceManager, in file order. */
  keys(set: number): string[] {
    return this.groups
      .filter((g) => (g.node === this.localNode ? (set & LOCAL) !== 0 : (set & FOREIGN) !== 0))
      .map((g) => g.key);
  }

  keysOfNode(node: string): string[] {
    return this.groups.filter((g) => g.node === node.toLowerCase()).map((g) => g.key);
  }

  get jobsRunning(): number {
    return this.#jobs.size;
  }

  /** hb_rsc_isstable(). */
  isStable(): boolean {
    if (!this.niceFailback) return this.#jobs.size === 0;
    if (this.shutdownInProgress && this.resourceState === 'init') return true;
    return this.otherIsStable && !this.takeoverInProgress && this.goingStandby === 'not' && this.standbyRunningUntil === 0
      && this.#jobs.size === 0 && (this.resourceState === 'stable' || this.resourceState === 'shutdown' || this.resourceState === 'init');
  }

  /** `cl_status rscstatus`: all, local, foreign, none, or transition while anything is moving. */
  rscstatus(): string {
    return this.isStable() ? RSC_NAMES[this.iHold]! : 'transition';
  }

  snapshot(): Record<string, unknown> {
    return {
      mode: this.mode, resourceState: this.resourceState, iHold: RSC_NAMES[this.iHold], otherHolds: RSC_NAMES[this.otherHolds],
      otherIsStable: this.otherIsStable, goingStandby: this.goingStandby, jobs: this.#jobs.size, queued: this.#queue.length,
      held: [...this.held], failed: [...this.failed], rscstatus: this.rscstatus(),
    };
  }

  nextDeadline(): number | undefined {
    const c: number[] = [];
    if (this.niceFailback && this.resourceState === 'rscrcvd' && this.#localTakeoverAt) c.push(this.#localTakeoverAt);
    if (this.standbyRunningUntil) c.push(this.standbyRunningUntil);
    if (this.#autoFailbackAt) c.push(this.#autoFailbackAt);
    for (const t of this.#failedStartTimers) c.push(t.at);
    const ip = this.ipfail?.nextDeadline();
    if (ip !== undefined) c.push(ip);
    return c.length ? Math.min(...c) : undefined;
  }

  // ------------------------------------------------------------------------------------------
  // Inputs

  /** Communications are up (this node went active: every peer heard, or initdead passed). */
  commUp(now: number): RmAction[] {
    return this.#step(now, () => {
      if (this.#commUp) return;
      this.#commUp = true;
      if (this.#peers.size === 0 || [...this.#peers.values()].every((p) => p.up || p.gone)) this.#foreignTakeoverWorkDone = true;
      if (this.niceFailback) {
        this.#send(fields(['t', 'starting']));
        this.resourceState = 'starting';
      } else if (!this.#legacyRequested) {
        this.#legacyRequested = true;
        this.#reqOurResources(false);
      }
    });
  }

  /** A normal peer was heard (node-up). */
  nodeUp(node: string, now: number): RmAction[] {
    return this.#step(now, () => {
      const p = this.#peers.get(node.toLowerCase());
      if (!p) return;
      p.up = true;
      p.anyPacketsYet = true;
      // Heard again after a death or a shutdown: a new death is a new takeover.
      p.gone = false;
      if (this.ipfail) this.#ipfail(this.ipfail.peerUp(now));
    });
  }

  /** A peer was declared dead after its dead time (or initdead without ever being heard). */
  nodeDead(node: string, now: number): RmAction[] {
    return this.#step(now, () => {
      const name = node.toLowerCase();
      if (this.#pingNodes.has(name)) {
        if (this.ipfail) this.#ipfail(this.ipfail.pingStatus(name, false, now));
        return;
      }
      const p = this.#peers.get(name);
      if (!p) return;
      p.up = false;
      if (p.gone) return;
      this.#recoverDeadResources(p);
    });
  }

  /**
   * The peer shut down gracefully: a `shutdone` (or the `st=dead` status that follows it). The
   * groups are taken over at once; a second notice of the same shutdown changes nothing.
   */
  peerShutdown(node: string, now: number): RmAction[] {
    return this.#step(now, () => this.#peerShutdone(node.toLowerCase()));
  }

  /** A ping node (or ping group) answers again, or stopped answering. */
  pingStatus(node: string, up: boolean, now: number): RmAction[] {
    return this.#step(now, () => {
      if (this.ipfail) this.#ipfail(this.ipfail.pingStatus(node.toLowerCase(), up, now));
    });
  }

  /** A heartbeat link of a peer went dead (ipfail compares ping counts then). */
  linkDead(node: string, link: string, now: number): RmAction[] {
    return this.#step(now, () => {
      if (this.ipfail && !this.#pingNodes.has(node.toLowerCase())) this.#ipfail(this.ipfail.linkDead(node, link, now));
    });
  }

  /** A cluster message from a peer (messages from this node are processed internally). */
  message(msg: HbFields, now: number): RmAction[] {
    return this.#step(now, () => {
      const src = (msg.get('src') ?? '').toLowerCase();
      if (src === this.localNode || src === '') return;
      const p = this.#peers.get(src);
      if (p) {
        p.anyPacketsYet = true;
        p.up = true;
      }
      this.#dispatch(msg, false);
    });
  }

  /** hb_standby [all|foreign|local]: heartbeat writes `ask_resources info=me` to its FIFO. */
  standbyRequest(rsc: 'all' | 'foreign' | 'local', now: number): RmAction[] {
    return this.#step(now, () => {
      this.#log('info', `Going standby [${rsc}].`);
      this.#send(fields(['t', 'ask_resources'], ['rsc_hold', rsc], ['info', 'me']));
    });
  }

  /** hb_takeover [all|foreign|local]: asks the peer to go standby for the matching set. */
  takeoverRequest(rsc: 'all' | 'foreign' | 'local', now: number): RmAction[] {
    return this.#step(now, () => {
      this.#log('info', `Taking over [${rsc}]: asking the other node to go standby.`);
      this.#send(fields(['t', 'hb_takeover'], ['rsc_hold', rsc]));
    });
  }

  /** Graceful stop: release everything, then emit `stopped`. */
  shutdown(now: number): RmAction[] {
    return this.#step(now, () => this.#giveupResources());
  }

  jobDone(id: number, result: JobResult, now: number): RmAction[] {
    return this.#step(now, () => this.#jobFinished(id, result));
  }

  tick(now: number): RmAction[] {
    return this.#step(now, () => {
      if (this.standbyRunningUntil && now >= this.standbyRunningUntil) {
        this.standbyRunningUntil = 0;
        this.otherIsStable = true;
        this.goingStandby = 'not';
        this.#log('warn', 'No reply to standby request.  Standby request cancelled.');
      }
      if (this.niceFailback && this.resourceState === 'rscrcvd' && this.#localTakeoverAt && now >= this.#localTakeoverAt) {
        this.resourceState = 'stable';
        this.#reqOurResources(false);
        this.#log('info', 'local resource transition completed.');
        this.#sendHeld(true);
        this.#audit();
      }
      if (this.#autoFailbackAt && now >= this.#autoFailbackAt) {
        this.#autoFailbackAt = 0;
        this.#performAutoFailback();
      }
      for (let i = this.#failedStartTimers.length - 1; i >= 0; i--) {
        const t = this.#failedStartTimers[i]!;
        if (now >= t.at) {
          this.#failedStartTimers.splice(i, 1);
          this.#log('info', `Going standby [${t.rsc}] after the failed start.`);
          this.#send(fields(['t', 'ask_resources'], ['rsc_hold', t.rsc], ['info', 'me']));
        }
      }
      if (this.ipfail) this.#ipfail(this.ipfail.tick(now, this.rscstatus() !== 'transition'));
    });
  }

  // ------------------------------------------------------------------------------------------
  // Plumbing

  #step(now: number, fn: () => void): RmAction[] {
    this.#now = Math.max(this.#now, now);
    this.#out = [];
    fn();
    this.#drainOwn();
    this.#shutdownIfNeeded();
    this.#drainOwn();
    return this.#out;
  }

  #log(level: LogLevel, msg: string): void {
    this.#out.push({ type: 'log', level, msg });
  }

  /** Sent by the main process: on the wire first, processed by this node afterwards. */
  #send(f: HbFields): void {
    this.#out.push({ type: 'send', fields: f });
    this.#own.push(f);
  }

  /** Sent by a resource child: processed by this node as it is queued, then on the wire. */
  #sendFromChild(f: HbFields): void {
    this.#dispatch(f, true);
    this.#out.push({ type: 'send', fields: f });
  }

  #drainOwn(): void {
    for (let guard = 0; this.#own.length > 0 && guard < 1000; guard++) this.#dispatch(this.#own.shift()!, true);
  }

  #dispatch(msg: HbFields, fromSelf: boolean): void {
    const t = msg.get('t') ?? '';
    switch (t) {
      case 'starting':
      case 'resource':
        this.#processResources(t, msg, fromSelf);
        break;
      case 'ask_resources':
        this.#askForResources(msg, fromSelf);
        break;
      case 'shutdone':
        if (fromSelf) {
          this.resourceState = 'shutdown';
          this.iHold = NONE;
        } else {
          this.#peerShutdone((msg.get('src') ?? '').toLowerCase());
        }
        break;
      case 'hb_takeover':
        if (!fromSelf) this.#enqueue({ kind: 'hb_takeover', rsc: encodeRsc(msg.get('rsc_hold')) });
        break;
      case 'ip-request':
        if (!fromSelf && msg.get('ipaddr')) this.#enqueue({ kind: 'ip_request', from: (msg.get('src') ?? '').toLowerCase(), key: msg.get('ipaddr')! });
        break;
      case 'ip-request-resp':
        // Our own self-addressed responses only mirror heartbeat's wire; we acquired directly.
        if (!fromSelf && (msg.get('dest') ?? '').toLowerCase() === this.localNode && msg.get('ok') === 'OK' && msg.get('ipaddr')) {
          this.#enqueue({ kind: 'ip_request_resp', key: msg.get('ipaddr')! });
        }
        break;
      case 'num_ping_nodes':
      case 'you_are_dead':
      case 'abort_giveup':
        if (!fromSelf && this.ipfail) this.#ipfail(this.ipfail.message(msg, this.#now, this.rscstatus() !== 'transition'));
        break;
      default:
        break;
    }
  }

  #newJob(j: Omit<Job, 'id'>, reason: string): Job {
    const job: Job = { ...j, id: ++this.#jobSeq };
    this.#jobs.set(job.id, job);
    this.#out.push({ type: job.kind, job: job.id, groups: [...job.groups], reason });
    return job;
  }

  #enqueue(q: Queued): void {
    this.#queue.push(q);
    this.#startNextQueued();
  }

  /** StartNextRemoteRscReq: one queued request at a time, only while no resource job runs. */
  #startNextQueued(): void {
    while (this.#jobs.size === 0 && this.#queue.length > 0) {
      const q = this.#queue.shift()!;
      switch (q.kind) {
        case 'mach_down': {
          const keys = this.keysOfNode(q.node);
          for (const k of keys) this.#log('info', `Taking over resource group ${k}`);
          this.#newJob({ kind: 'acquire', purpose: 'mach_down', groups: keys, node: q.node }, `mach_down ${q.node}`);
          break;
        }
        case 'hb_takeover': {
          // rc.d/hb_takeover: run hb_standby here for the mirrored set.
          const mapped = q.rsc === LOCAL ? 'foreign' : q.rsc === FOREIGN ? 'local' : 'all';
          this.#log('info', `Going standby [${mapped}] at the other node's hb_takeover.`);
          this.#send(fields(['t', 'ask_resources'], ['rsc_hold', mapped], ['info', 'me']));
          break;
        }
        case 'ip_request': {
          if (this.held.has(q.key)) {
            this.#newJob({ kind: 'release', purpose: 'ip_request', groups: [q.key], peer: q.from, key: q.key }, `ip-request from ${q.from}`);
          } else {
            this.#sendFromChild(fields(['t', 'ip-request-resp'], ['dest', q.from], ['ipaddr', q.key], ['weown', 'no'], ['ok', 'OK']));
          }
          break;
        }
        case 'ip_request_resp':
          this.#newJob({ kind: 'acquire', purpose: 'ip_request_resp', groups: [q.key], key: q.key }, 'ip-request-resp');
          break;
      }
    }
  }

  #jobFinished(id: number, result: JobResult): void {
    const job = this.#jobs.get(id);
    if (!job) return;
    this.#jobs.delete(id);
    const failed = new Set(result.failedGroups ?? []);
    const stopFailed = new Set(result.stopFailedGroups ?? []);
    if (job.kind === 'acquire') {
      for (const k of job.groups) {
        if (failed.has(k)) {
          this.held.delete(k);
          this.failed.add(k);
        } else {
          this.held.add(k);
          this.failed.delete(k);
        }
      }
      for (const k of failed) {
        const rsc: RscName = this.groups.find((g) => g.key === k)?.node === this.localNode ? 'local' : 'foreign';
        this.#log('error', `Resource group ${k} failed to start and was released${result.detail ? `: ${result.detail}` : ''}; going standby [${rsc}] in ${this.#failedStartDelayMs} ms`);
        if (!this.#failedStartTimers.some((t) => t.rsc === rsc)) this.#failedStartTimers.push({ at: this.#now + this.#failedStartDelayMs, rsc });
      }
    } else {
      for (const k of job.groups) if (!stopFailed.has(k)) this.held.delete(k);
      if (stopFailed.size > 0) {
        const reason = `resource stop failed and still running in ${[...stopFailed].join(', ')}: this node must not hand these groups over (heartbeat would reboot now)`;
        this.#log('error', `CRIT: ${reason}`);
        this.#out.push({ type: 'fatal', reason });
        // A standby or ip-request release that failed is not reported done: the peer never starts
        // what still runs here. A shutdown still ends, so the daemon can exit; see README.
        if (job.purpose === 'giveup') this.#out.push({ type: 'stopped' });
        if (job.purpose === 'standby_me') {
          // The standby cannot complete: what still runs is still ours, and a stop may go on.
          this.iHold |= job.standbyRsc ?? ALL;
          this.goingStandby = 'not';
          this.standbyRunningUntil = 0;
          this.#log('error', 'Standby cancelled: a resource failed to stop.');
          this.#sendHeld(true);
        }
        this.#startNextQueued();
        return;
      }
    }
    switch (job.purpose) {
      case 'req_our_resources':
        for (const k of job.announce ?? []) {
          this.#sendFromChild(fields(['t', 'ip-request-resp'], ['dest', this.localNode], ['ipaddr', k], ['weown', 'yes'], ['ok', 'OK']));
        }
        if (job.groups.length === 0) this.#log('info', `No local resources [ResourceManager listkeys ${this.localNode}] to acquire.`);
        else this.#log('info', 'Local Resource acquisition completed.');
        this.#sendHeld(true, 'req_our_resources()', true);
        this.#localTakeoverWorkDone = true;
        this.#announce('req_our_resources');
        break;
      case 'mach_down':
        if (this.niceFailback) {
          this.#log('info', 'mach_down: nice_failback: foreign resources acquired');
          this.#sendFromChild(fields(['t', 'resource'], ['rsc_hold', 'foreign'], ['info', 'mach_down']));
        }
        this.#log('info', `mach_down takeover complete for node ${job.node}.`);
        break;
      case 'standby_me':
      case 'standby_other': {
        const set = job.standbyRsc ?? ALL;
        const act = job.kind === 'acquire' ? 'acquisition' : 'release';
        this.#log('info', `${RSC_NAMES[this.#actResources(job.purpose === 'standby_me' ? 'me' : 'other', set)]} HA resource ${act} completed (standby).`);
        this.#sendFromChild(fields(['t', 'ask_resources'], ['rsc_hold', RSC_NAMES[set]], ['info', 'done']));
        break;
      }
      case 'giveup':
        this.#log('info', 'All HA resources relinquished.');
        this.#out.push({ type: 'stopped' });
        break;
      case 'ip_request':
        this.#sendFromChild(fields(['t', 'ip-request-resp'], ['dest', job.peer], ['ipaddr', job.key], ['weown', 'yes'], ['ok', 'OK']));
        break;
      case 'ip_request_resp':
        this.#localTakeoverWorkDone = true;
        this.#announce('ip-request-resp');
        break;
    }
    this.#startNextQueued();
  }

  #announce(reason: string): void {
    if (this.#initAnnounced || !this.#localTakeoverWorkDone || !this.#foreignTakeoverWorkDone) return;
    this.#initAnnounced = true;
    this.#log('info', `Initial resource acquisition complete (${reason})`);
  }

  #sendHeld(stable: boolean, comment?: string, fromChild = false): void {
    if (!this.niceFailback) return;
    const f = fields(['t', 'resource'], ['rsc_hold', RSC_NAMES[this.iHold]], ['rtype', 'full'], ['isstable', stable ? '1' : '0'], ['info', comment]);
    if (fromChild) this.#sendFromChild(f);
    else this.#send(f);
  }

  #sendStandbyMsg(state: Standby, fromChild = false): void {
    const f = fields(['t', 'ask_resources'], ['rsc_hold', RSC_NAMES[this.standbyRsctype]], ['info', state]);
    if (fromChild) this.#sendFromChild(f);
    else this.#send(f);
  }

  // ------------------------------------------------------------------------------------------
  // heartbeat's resource logic

  #alone(): boolean {
    return [...this.#peers.values()].every((p) => !p.up);
  }

  #reqOurResources(getThemAnyway: boolean): void {
    if (this.shutdownInProgress) return;
    if (this.niceFailback) {
      if (((this.otherHolds & FOREIGN) !== 0 || (this.iHold & LOCAL) !== 0) && !getThemAnyway && this.goingStandby === 'not') {
        this.#log('info', 'Local Resource acquisition completed. (none)');
        return;
      }
      this.iHold |= LOCAL;
    }
    const keys = this.keys(LOCAL);
    if (!this.niceFailback && !this.#alone()) {
      // Ask the holder politely: it releases and answers ip-request-resp, then we take the group.
      for (const k of keys) this.#sendFromChild(fields(['t', 'ip-request'], ['ipaddr', k]));
      this.#localTakeoverWorkDone = keys.length === 0 || this.#localTakeoverWorkDone;
      return;
    }
    // req_resource tells ourselves "the owner gave it up peacefully" for what we do not hold yet.
    const announce = keys.filter((k) => !this.held.has(k));
    this.#newJob({ kind: 'acquire', purpose: 'req_our_resources', groups: keys, announce }, getThemAnyway ? 'req_our_resources(anyway)' : 'req_our_resources');
  }

  #takeoverFromNode(p: Peer): void {
    if (this.shutdownInProgress) {
      this.#log('info', 'Resource takeover cancelled - shutdown in progress.');
      return;
    }
    this.#log('info', `Resources being acquired from ${p.name}.`);
    p.gone = true;
    this.#enqueue({ kind: 'mach_down', node: p.name });
    if (this.niceFailback) {
      this.iHold |= FOREIGN;
      this.otherHolds = NONE;
      this.otherIsStable = true;
      this.takeoverInProgress = true;
    }
    this.#reqOurResources(true);
    p.anyPacketsYet = true;
  }

  #recoverDeadResources(p: Peer): void {
    if (this.goingStandby !== 'not') {
      this.#log('info', 'Cancelling pending standby operation');
      this.goingStandby = 'not';
      this.standbyRunningUntil = 0;
      if (!this.otherIsStable && (this.iHold & ALL) === ALL) this.otherIsStable = true;
    }
    if (this.shutdownInProgress) {
      if (this.resourceState !== 'shutdown' && this.resourceState !== 'stable') this.#giveupResources();
      return;
    }
    this.rscNeedsFailback = true;
    let needStonith = true;
    if (p.anyPacketsYet && this.niceFailback && this.otherHolds === NONE) needStonith = false;
    if (needStonith) {
      this.#log('warn', 'No STONITH device configured.');
      this.#log('warn', 'Shared disks are not protected.');
      this.#takeoverFromNode(p);
      return;
    }
    this.#log('info', `Dead node ${p.name} gave up resources.`);
    if ((this.iHold & ALL) === ALL) {
      this.otherIsStable = true;
      p.gone = true;
      return;
    }
    if (!(this.iHold & LOCAL)) this.#reqOurResources(true);
    if (!(this.iHold & FOREIGN)) this.#takeoverFromNode(p);
    else p.gone = true;
  }

  #peerShutdone(name: string): void {
    const p = this.#peers.get(name);
    if (!p || p.gone) return;
    p.up = false;
    this.#log('info', `Received shutdown notice from '${name}'.`);
    if (this.niceFailback && this.#commUp) {
      this.otherIsStable = true;
      this.otherHolds = NONE;
      if (this.iHold !== ALL && !this.shutdownInProgress) {
        const rtype = this.iHold === FOREIGN ? LOCAL : this.iHold === LOCAL ? FOREIGN : ALL;
        this.goingStandby = 'done';
        this.#goStandby('other', rtype);
      }
    }
    this.otherIsStable = false;
    this.otherHolds = NONE;
    this.#takeoverFromNode(p);
  }

  #processResources(type: string, msg: HbFields, fromSelf: boolean): void {
    if (!this.niceFailback) return;
    let newState = this.resourceState;
    if (type === 'starting' && !fromSelf) {
      const p = this.#peers.get((msg.get('src') ?? '').toLowerCase());
      if (p) {
        p.gone = false;
        p.up = true;
      }
      switch (this.resourceState) {
        case 'rscrcvd': case 'stable': case 'shutdown':
          break;
        case 'starting':
          newState = 'bothstarting';
          this.#foreignTakeoverWorkDone = true;
          this.#announce('HB_R_BOTHSTARTING');
          break;
        default:
          this.#log('error', `Received 'starting' message in state ${this.resourceState}`);
          return;
      }
      this.otherIsStable = false;
      if (this.takeoverInProgress) this.#log('warn', 'T_STARTING received during takeover.');
      this.#sendHeld(this.resourceState === 'stable');
    }
    if (type === 'resource') {
      const n = encodeRsc(msg.get('rsc_hold'));
      const full = msg.get('rtype') === 'full';
      switch (this.resourceState) {
        case 'bothstarting': case 'starting':
          newState = 'rscrcvd';
          if (!this.autoFailback) {
            this.#foreignTakeoverWorkDone = true;
            this.#announce('T_RESOURCES');
          }
          break;
        case 'rscrcvd': case 'stable': case 'shutdown':
          break;
        default:
          this.#log('error', `T_RESOURCES message received in state ${this.resourceState}`);
          // Our own mach_down report still ends the takeover: a peer declared dead at initdead,
          // before this node left 'init', would otherwise leave takeoverInProgress set for ever
          // and rscstatus stuck at 'transition'.
          if (fromSelf && msg.get('info') === 'mach_down') this.#machDownDone();
          return;
      }
      const upd = (cur: number) => (full ? n : n === NONE ? NONE : n | cur);
      if (!fromSelf) {
        this.otherHolds = upd(this.otherHolds);
        const stable = msg.get('isstable');
        if (stable !== undefined) {
          if (stable === '1') {
            if (!this.otherIsStable) {
              this.#log('info', 'remote resource transition completed.');
              this.otherIsStable = true;
              this.#sendHeld(this.resourceState === 'stable');
              this.#performAutoFailback();
            }
          } else {
            this.otherIsStable = false;
          }
          if (this.ipfail && msg.get('info') === undefined) this.#ipfail(this.ipfail.otherStable(stable === '1', this.#now));
        }
        if (this.resourceState !== 'stable' && this.resourceState !== 'shutdown' && this.otherIsStable) {
          this.#log('info', 'remote resource transition completed.');
          this.#reqOurResources(false);
          newState = 'stable';
          this.#sendHeld(true);
          this.#performAutoFailback();
          this.#foreignTakeoverWorkDone = true;
          if (!this.autoFailback && (this.otherHolds & FOREIGN) !== 0) this.#localTakeoverWorkDone = true;
          this.#announce('T_RESOURCES(them)');
        }
      } else {
        this.iHold = upd(this.iHold);
        if (this.iHold & LOCAL) {
          this.#localTakeoverWorkDone = true;
          this.#announce('T_RESOURCES(us)');
        }
        const info = msg.get('info');
        if (info === 'mach_down') {
          this.#machDownDone();
        } else if (info === 'shutdown') {
          newState = 'shutdown';
        }
      }
    }
    this.resourceState = newState;
    if (this.resourceState === 'rscrcvd' && this.#localTakeoverAt === 0) this.#localTakeoverAt = this.#now + this.#rqstDelayMs;
    this.#audit();
  }

  #machDownDone(): void {
    this.#log('info', 'mach_down takeover complete.');
    this.takeoverInProgress = false;
    this.iHold |= FOREIGN;
    this.rscNeedsFailback = true;
    this.otherIsStable = true;
    this.#foreignTakeoverWorkDone = true;
    this.#announce('mach_down');
  }

  #audit(): void {
    if (!this.niceFailback) return;
    if ((this.iHold & LOCAL) && (this.otherHolds & FOREIGN)) this.#log('error', 'Both machines own our resources!');
    if ((this.otherHolds & LOCAL) && (this.iHold & FOREIGN)) this.#log('error', 'Both machines own foreign resources!');
    if (this.isStable() && !this.shutdownInProgress && this.resourceState !== 'shutdown') {
      if (!(this.iHold & LOCAL) && !(this.otherHolds & FOREIGN) && this.keys(LOCAL).length > 0) this.#log('error', 'No one owns our local resources!');
      if (!(this.otherHolds & LOCAL) && !(this.iHold & FOREIGN) && this.keys(FOREIGN).length > 0) this.#log('error', 'No one owns foreign resources!');
    }
  }

  #performAutoFailback(): void {
    if (this.shutdownInProgress || !(this.iHold & FOREIGN) || !this.rscNeedsFailback || !this.autoFailback) {
      this.rscNeedsFailback = false;
      return;
    }
    if (this.goingStandby !== 'not' || !this.otherIsStable || this.resourceState !== 'stable') {
      this.#log('debug', 'Auto failback delayed.');
      this.#autoFailbackAt = this.#now + this.#autoFailbackRetryMs;
      return;
    }
    this.#log('info', 'Auto failback: giving the foreign groups back to their node.');
    this.standbyRsctype = FOREIGN;
    this.#sendStandbyMsg('me');
    this.rscNeedsFailback = false;
  }

  #askForResources(msg: HbFields, fromSelf: boolean): void {
    if (!this.niceFailback) {
      this.#log('info', 'Standby mode only implemented when nice_failback on');
      return;
    }
    if (this.resourceState === 'shutdown') return;
    const info = msg.get('info');
    const from = msg.get('src') ?? (fromSelf ? this.localNode : undefined);
    const rtype = msg.has('rsc_hold') ? encodeRsc(msg.get('rsc_hold')) : ALL;
    if (info === undefined || from === undefined) {
      this.#log('error', 'Received standby message without info/from');
      return;
    }
    const now = this.#now;
    if (this.standbyRunningUntil && now < this.standbyRunningUntil && info === 'me') {
      this.#log('warn', `Standby in progress- new request from ${from} ignored [${Math.ceil((this.standbyRunningUntil - now) / 1000)} seconds left]`);
      return;
    }
    const orig = this.goingStandby;
    let ignored = false;
    switch (this.goingStandby) {
      case 'not':
        if (!this.otherIsStable) {
          this.#log('warn', `standby message [${info}] from ${from} ignored.  Other side is in flux.`);
          return;
        }
        if (this.resourceState !== 'stable') {
          this.#log('warn', `standby message [${info}] from ${from} ignored.  local resources in flux.`);
          return;
        }
        this.standbyRsctype = rtype;
        if (info === 'me') {
          this.otherIsStable = false;
          this.#log('info', `${from} wants to go standby [${RSC_NAMES[rtype]}]`);
          if (fromSelf) {
            this.standbyRunningUntil = now + this.#standbyInitMs;
            this.goingStandby = 'me';
          } else {
            this.goingStandby = 'other';
            this.#sendStandbyMsg('other');
            this.standbyRunningUntil = now + this.#standbyRscMs;
          }
        } else ignored = true;
        break;
      case 'me':
        if (!fromSelf) {
          this.standbyRsctype = rtype;
          this.standbyRunningUntil = now + this.#standbyRscMs;
          if (info === 'other') {
            this.#log('info', `standby: ${from} can take our ${RSC_NAMES[rtype]} resources`);
            this.#goStandby('me', rtype);
          } else ignored = true;
        } else if (info === 'done') {
          this.#log('info', `Local standby process completed [${RSC_NAMES[rtype]}].`);
          this.goingStandby = 'done';
          this.iHold &= ~this.standbyRsctype;
          this.standbyRunningUntil = now + this.#standbyRscMs;
        } else ignored = true;
        break;
      case 'other':
        this.standbyRsctype = rtype;
        if (info === 'done') {
          this.standbyRunningUntil = now + this.#standbyRscMs;
          if (!fromSelf) {
            this.#log('info', `standby: acquire [${RSC_NAMES[rtype]}] resources from ${from}`);
            this.#goStandby('other', this.standbyRsctype);
            this.goingStandby = 'done';
          } else ignored = true;
        } else if (!fromSelf || info !== 'other') ignored = true;
        break;
      case 'done':
        this.standbyRsctype = rtype;
        if (info === 'done') {
          this.standbyRunningUntil = 0;
          this.goingStandby = 'not';
          if (fromSelf) {
            this.#log('info', `Standby resource acquisition done [${RSC_NAMES[rtype]}].`);
            if (this.autoFailback) {
              this.#localTakeoverWorkDone = true;
              this.#announce('auto_failback');
            }
            const rup = rtype === LOCAL ? FOREIGN : rtype === FOREIGN ? LOCAL : rtype === ALL ? ALL : NONE;
            this.iHold |= rup;
          } else {
            this.#log('info', `Other node completed standby takeover of ${RSC_NAMES[rtype]} resources.`);
          }
          this.#sendHeld(true);
          this.goingStandby = 'not';
        } else ignored = true;
        break;
    }
    if (ignored) this.#log('error', `Ignored standby message '${info}' from ${from} in state ${orig}`);
  }

  #actResources(who: 'me' | 'other', set: number): number {
    if (set === FOREIGN) return who === 'me' ? FOREIGN : LOCAL;
    if (set === LOCAL) return who === 'me' ? LOCAL : FOREIGN;
    return ALL;
  }

  #goStandby(who: 'me' | 'other', set: number): void {
    if (who === 'me') {
      this.otherIsStable = false;
      this.iHold &= ~set;
      this.#sendHeld(false, 'standby');
    }
    const act = this.#actResources(who, set);
    const keys = this.keys(act);
    this.#log('info', `${who === 'me' ? 'give up' : 'acquire'} ${RSC_NAMES[act]} HA resources (standby).`);
    this.#newJob({ kind: who === 'me' ? 'release' : 'acquire', purpose: who === 'me' ? 'standby_me' : 'standby_other', groups: keys, standbyRsc: this.standbyRsctype },
      `standby ${who} ${RSC_NAMES[act]}`);
  }

  #canShutdown(): boolean {
    // heartbeat waits for hb_rsc_isstable(); tandem waits only for its own activity (jobs and a
    // standby handover in progress), so a stop never hangs on a peer that stays in flux.
    return this.#jobs.size === 0 && this.goingStandby === 'not';
  }

  #giveupResources(): void {
    if (!this.#canShutdown()) {
      if (!this.rscNeedsShutdown) {
        this.#log('warn', 'Shutdown delayed until current resource activity finishes.');
        this.rscNeedsShutdown = true;
      }
      return;
    }
    this.rscNeedsShutdown = false;
    this.shutdownInProgress = true;
    if (this.#resourceShutdownStarted) return;
    this.#resourceShutdownStarted = true;
    this.iHold = NONE;
    this.resourceState = 'shutdown';
    if (this.niceFailback) this.#sendHeld(false, 'shutdown');
    this.#log('info', 'Giving up all HA resources.');
    this.#newJob({ kind: 'release', purpose: 'giveup', groups: this.keys(ALL) }, 'shutdown');
  }

  #shutdownIfNeeded(): void {
    if (this.rscNeedsShutdown) this.#giveupResources();
  }

  // ------------------------------------------------------------------------------------------
  // ipfail

  #ipfail(actions: IpfailAction[]): void {
    for (const a of actions) {
      if (a.type === 'send') this.#out.push({ type: 'send', fields: a.fields });
      else if (a.type === 'log') this.#log(a.level, a.msg);
      else {
        // giveup(): ipfail sends ask_resources info=me through the API, as hb_standby does.
        this.#log('info', `ipfail: giving up [${a.rsc}] resources`);
        this.#send(fields(['t', 'ask_resources'], ['rsc_hold', a.rsc], ['info', 'me']));
      }
    }
  }
}

// ------------------------------------------------------------------------------------------------
// ipfail, heartbeat's IP-failover client, as a pure policy: when a ping node dies (or comes back) it
// compares how many ping nodes each director still reaches; the one that sees fewer gives its
// resources up (after two keepalives, and only while the cluster is stable).

export type IpfailAction =
  | { type: 'send'; fields: HbFields }
  | { type: 'giveup'; rsc: 'all' | 'foreign' }
  | { type: 'log'; level: LogLevel; msg: string };

export interface IpfailConfig extends IpfailOptions {
  localNode: string;
  peer: string | undefined;
  pingNodes: readonly string[];
  autoFailback: boolean;
}

export class Ipfail {
  readonly #c: IpfailConfig;
  readonly #up = new Set<string>();
  #giveupAt = 0;
  #giveupRsc: 'all' | 'foreign' = 'all';
  #needStandby = false;
  #recheckAt = 0;

  constructor(c: IpfailConfig) {
    this.#c = c;
  }

  /** Ping nodes seen alive (ping_node_status). */
  get visible(): number {
    return this.#up.size;
  }

  get pendingGiveup(): boolean {
    return this.#giveupAt !== 0;
  }

  nextDeadline(): number | undefined {
    const c = [this.#giveupAt, this.#recheckAt].filter((x) => x > 0);
    return c.length ? Math.min(...c) : undefined;
  }

  #ask(out: IpfailAction[]): void {
    if (!this.#c.peer) return;
    out.push({ type: 'log', level: 'info', msg: `ipfail: asking ${this.#c.peer} for its ping node count (we see ${this.visible})` });
    out.push({ type: 'send', fields: fields(['t', 'num_ping_nodes'], ['dest', this.#c.peer], ['num_ping', String(this.visible)]) });
  }

  #delayGiveup(rsc: 'all' | 'foreign', now: number, out: IpfailAction[]): void {
    const ms = this.#c.keepaliveMs * 2;
    out.push({ type: 'log', level: 'info', msg: `ipfail: delayed giveup [${rsc}] in ${ms} ms` });
    this.#giveupAt = now + ms;
    this.#giveupRsc = rsc;
  }

  peerUp(_now: number): IpfailAction[] {
    const out: IpfailAction[] = [];
    this.#ask(out);
    return out;
  }

  pingStatus(node: string, up: boolean, _now: number): IpfailAction[] {
    const out: IpfailAction[] = [];
    if (!this.#c.pingNodes.includes(node)) return out;
    const was = this.#up.has(node);
    if (up) this.#up.add(node);
    else this.#up.delete(node);
    if (was === up) return out;
    out.push({ type: 'log', level: 'info', msg: up ? `ipfail: ping node ${node} is reachable again` : `ipfail: ping node ${node} is dead; ${this.visible ? 'we are still alive' : 'we are dead'}` });
    this.#ask(out);
    return out;
  }

  linkDead(node: string, link: string, _now: number): IpfailAction[] {
    const out: IpfailAction[] = [{ type: 'log', level: 'info', msg: `ipfail: link ${node}/${link} dead; checking the remote count of ping nodes` }];
    this.#ask(out);
    return out;
  }

  otherStable(stable: boolean, now: number): IpfailAction[] {
    if (stable && this.#needStandby) {
      // ipfail sleeps 10 s for the gratuitous ARPs to settle, then counts again.
      this.#recheckAt = now + (this.#c.recheckMs ?? 10_000);
      this.#needStandby = false;
    }
    return [];
  }

  message(msg: HbFields, now: number, stable: boolean): IpfailAction[] {
    const out: IpfailAction[] = [];
    const t = msg.get('t');
    if (t === 'num_ping_nodes') {
      const theirs = Number(msg.get('num_ping') ?? '0');
      const mine = this.visible;
      if (mine > theirs) {
        out.push({ type: 'log', level: 'info', msg: 'ipfail: telling the other node that we have more visible ping nodes.' });
        out.push({ type: 'send', fields: fields(['t', 'you_are_dead'], ['dest', this.#c.peer]) });
      } else if (mine < theirs) {
        out.push({ type: 'log', level: 'info', msg: 'ipfail: giving up because we have less visible ping nodes.' });
        this.#delayGiveup('all', now, out);
      } else {
        out.push({ type: 'log', level: 'info', msg: 'ipfail: ping node count is balanced.' });
        out.push({ type: 'send', fields: fields(['t', 'abort_giveup'], ['dest', this.#c.peer]) });
        if (this.#giveupAt) {
          out.push({ type: 'log', level: 'info', msg: 'ipfail: aborted delayed giveup' });
          this.#giveupAt = 0;
        } else if (this.#c.autoFailback && stable) {
          out.push({ type: 'log', level: 'info', msg: 'ipfail: giving up foreign resources (auto_failback).' });
          this.#delayGiveup('foreign', now, out);
        }
      }
    } else if (t === 'you_are_dead') {
      out.push({ type: 'log', level: 'info', msg: 'ipfail: giving up because we were told that we have less ping nodes.' });
      this.#delayGiveup('all', now, out);
    } else if (t === 'abort_giveup') {
      if (this.#giveupAt) out.push({ type: 'log', level: 'info', msg: 'ipfail: aborted delayed giveup' });
      this.#giveupAt = 0;
    }
    return out;
  }

  tick(now: number, stable: boolean): IpfailAction[] {
    const out: IpfailAction[] = [];
    if (this.#giveupAt && now >= this.#giveupAt) {
      this.#giveupAt = 0;
      if (stable) out.push({ type: 'giveup', rsc: this.#giveupRsc });
      else {
        out.push({ type: 'log', level: 'info', msg: 'ipfail: cluster in transition; giveup waits until the other side is stable' });
        this.#needStandby = true;
      }
    }
    if (this.#recheckAt && now >= this.#recheckAt) {
      this.#recheckAt = 0;
      this.#ask(out);
    }
    return out;
  }
}
