/**
 * The heartbeat daemon, in process: media in, the authentication gate, membership, keepalives out,
 * the control socket, and the resource-manager plugin. The `heartbeat` command is a thin shell that
 * reads ha.cf/authkeys, builds the media and runs one of these.
 *
 * ## Resource-manager plugin (the seam the resource manager plugs into)
 *
 * The daemon never runs a resource script. A `ResourceManagerPlugin` gets:
 * - `start(ctx)` once the media are up; `ctx.send(fields)` signs and sends a cluster message on every
 *   medium (seq, hg, ts, ld, ttl, srcuuid and, for a `dest` field, destuuid are added here), and
 *   `ctx.nodes()` / `ctx.localState()` read membership;
 * - `onMembership(event)` for every membership event (node-up, node-status, node-dead with its reason
 *   `timeout`/`initdead`/`shutdown`, link-up/-dead, late-heartbeat, node-restarted) and
 *   `onLocalState(state)` when this node goes init → up → active;
 * - `onMessage(msg, link)` for every authenticated, de-duplicated cluster message from a peer that is
 *   not a keepalive (`status`) or a transport message (`NS_*`): `starting`, `resource`,
 *   `ask_resources`, `hb_takeover`, `ip-request(-resp)`, `shutdone`, `reqnodes`/`repnodes`, ...,
 *   addressed to everyone or to this node;
 * - `onControl(req)` for control-socket commands the daemon does not answer itself (`standby`,
 *   `takeover` from hb_standby/hb_takeover, each with `resources: all|foreign|local`);
 * - `resourceStatus()` for `cl_status rscstatus` (`local|foreign|all|none`);
 * - `stop()` on graceful shutdown, BEFORE the daemon tells its peers it is going: release the
 *   resources (and send `resource rsc_hold=none info=shutdown`), then resolve. The daemon then sends
 *   `shutdone st=dead` so the peer takes over at once instead of waiting for deadtime.
 *
 * The `heartbeat` command creates the plugin with `createResourceManager(args:
 * ResourceManagerFactoryArgs)` exported by src/rm/index.ts (see cli/plugins.ts); `-M` skips it.
 *
 * ## Scheduling: why the event loop does not stall past a keepalive
 *
 * - Keepalives and death checks run on precise one-shot timers computed from the monotonic clock:
 *   the next send is due a whole keepalive after the previous DUE time (no drift), and the death
 *   timer is armed for the exact deadline membership reports (no polling).
 * - A death is confirmed after one more I/O poll (`setImmediate` after the timer): when the loop was
 *   blocked past a deadline, packets that arrived meanwhile wait in the socket buffer; libuv runs
 *   timers before the poll phase, so without this a late timer would declare a node dead whose
 *   keepalive is already here.
 * - Nothing synchronous on the hot path: `/proc/loadavg` is read asynchronously every few seconds,
 *   log files are written by winston asynchronously, the generation file is written once at start.
 * - The `heartbeat` command starts the daemon's Node with a small young generation
 *   (`--max-semi-space-size`) so each scavenge is short, and caps the old space so a leak ends in a
 *   crash rather than in swapping (see cli/heartbeat.ts).
 * - Realtime priority, as heartbeat 3.0.6 (`realtime`, on by default): every thread of the process
 *   runs SCHED_RR 1 (`chrt -a -R -r -p 1 PID`), or SCHED_FIFO N with `rtprio N`; with reset-on-fork,
 *   so resource scripts and the programs they start run at normal priority. Measured (bench/detect,
 *   README): at nice -10 a loaded 2-core machine still delayed the event loop by 200+ ms and caused
 *   false deaths at 20ms/100ms; at realtime priority the daemon preempts the load. All threads,
 *   because the event loop waits for V8's GC helper threads (a helper left behind a CPU hog is a
 *   priority inversion). The kernel's RT throttling (sched_rt_runtime_us) still leaves the rest of
 *   the machine its share should the daemon ever spin. Without CAP_SYS_NICE it falls back to
 *   renicing every thread to -10; `realtime off` or `-l` leaves scheduling alone.
 * - The event-loop delay is measured (perf_hooks `monitorEventLoopDelay`) and reported in status
 *   and metrics, with how late each keepalive left.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync, mkdirSync, readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';

type IntervalHistogram = ReturnType<typeof monitorEventLoopDelay>;
import {
  realClock, Metrics, startControlServer, runCommand, describeResult,
  type Clock, type TimerHandle, type Logger, type ControlServer, type ControlRequest, type ControlReply,
} from '@tandem/core';
import { ReplayGuard, verify, buildFields, encodePacket, activeKey, type GateContext, type HbMessage, type SignKey } from './codec.ts';
import { Membership, MembershipDriver, describeEvent, type MembershipEvent, type NodeState, type NodeView } from './membership.ts';
import type { AuthKeys, Medium, Received, Timing } from './types.ts';
import type { HaConfig } from './hacf.ts';

export const TANDEM_HEARTBEAT_VERSION = '3.0.6-tandem';
export const DEFAULT_CONTROL_SOCKET = '/var/run/heartbeat/tandem.sock';
export const DEFAULT_STATE_DIR = '/var/lib/heartbeat';

/** What the daemon needs from ha.cf + authkeys (the `heartbeat` command maps HaConfig onto this). */
export interface DaemonConfig {
  /** This node's name (uname -n, lowercased). */
  nodeName: string;
  /** Every `node` (including this one). */
  nodes: readonly string[];
  /** Ping pseudo-nodes (ping, ping_group). */
  pingNodes?: readonly string[];
  timing: Timing;
  deadpingMs?: number | undefined;
  authKeys: AuthKeys;
  /** msgfmt: classic adds the inner auth field. */
  msgfmt?: 'classic' | 'netstring';
  hopfudge?: number;
  /** rtprio from ha.cf (1..99); realtime defaults to true. */
  rtprio?: number | undefined;
  realtime?: boolean;
  logBadPackets?: boolean;
  /** Values for `cl_status hbparameter -p NAME`, as written in ha.cf or computed (`2500ms`). */
  parameters?: Record<string, string>;
}

export interface RmContext {
  readonly localNode: string;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly clock: Clock;
  /** Signs and sends a message on every medium; returns the seq it got. */
  send(fields: ReadonlyArray<readonly [string, string]>): number;
  nodes(): NodeView[];
  node(name: string): NodeView | undefined;
  localState(): NodeState;
}

export interface ResourceManagerPlugin {
  start(ctx: RmContext): void | Promise<void>;
  onMembership(event: MembershipEvent): void;
  onLocalState?(state: NodeState): void;
  onMessage(msg: HbMessage, link: string): void;
  onControl?(req: ControlRequest): Promise<ControlReply> | ControlReply | undefined;
  resourceStatus?(): string;
  status?(): Record<string, unknown>;
  stop(): Promise<void>;
}

/** What `createResourceManager` (src/rm/index.ts) is given by the `heartbeat` command. */
export interface ResourceManagerFactoryArgs {
  configDir: string;
  haConfig: HaConfig;
  /** This node's name. */
  nodeName: string;
  logger: Logger;
}

export interface ReloadResult {
  ok: boolean;
  message: string;
  authKeys?: AuthKeys;
}

export interface DaemonOptions {
  config: DaemonConfig;
  /** Media already built by their factories (real sockets, or in-memory for tests). */
  media: Medium[];
  logger: Logger;
  clock?: Clock;
  metrics?: Metrics;
  resourceManager?: ResourceManagerPlugin;
  /** Control socket path; false for none. Default DEFAULT_CONTROL_SOCKET. */
  controlSocket?: string | false;
  /** Where hb_generation and hb_uuid live. Default /var/lib/heartbeat. */
  stateDir?: string;
  /** Re-reads the configuration (`heartbeat -r`). */
  reload?: () => Promise<ReloadResult>;
  /** Apply rtprio / renice to this process (only the `heartbeat` command sets this). */
  applyScheduling?: boolean;
  /** Called after a `stop` control request has finished stopping (the command exits then). */
  onStopped?: () => void;
}

export type Lifecycle = 'new' | 'starting' | 'running' | 'stopping' | 'stopped';

const M = {
  sent: 'tandem_heartbeat_packets_sent_total',
  sendErrors: 'tandem_heartbeat_send_errors_total',
  events: 'tandem_heartbeat_membership_events_total',
  nodeUp: 'tandem_heartbeat_node_up',
  linkUp: 'tandem_heartbeat_link_up',
  lateSend: 'tandem_heartbeat_keepalive_send_late_ms',
  lateSendMax: 'tandem_heartbeat_keepalive_send_late_max_ms',
  loopDelay: 'tandem_heartbeat_event_loop_delay_ms',
  generation: 'tandem_heartbeat_generation',
} as const;

function parseHexField(v: string | undefined): number | undefined {
  return v !== undefined && /^[0-9a-f]{1,12}$/i.test(v) ? parseInt(v, 16) : undefined;
}

/**
 * The generation: one more than the stored one, and at least the current Unix time, so that a tandem
 * node replacing a heartbeat 3.0.6 node (whose generations look like timestamps) is seen by its peers
 * as a restart, not as a replay of an older generation.
 */
export function nextGeneration(stateDir: string, nowSeconds = Math.floor(Date.now() / 1000)): number {
  const file = join(stateDir, 'hb_generation');
  let stored = 0;
  try {
    const n = Number.parseInt(readFileSync(file, 'utf8').trim(), 10);
    if (Number.isFinite(n) && n > 0) stored = n;
  } catch { /* first start */ }
  const gen = Math.max(stored + 1, nowSeconds);
  mkdirSync(stateDir, { recursive: true });
  writeFileSync(file, `${gen}\n`);
  return gen;
}

/** The node UUID (16 raw bytes), created once and kept in hb_uuid like heartbeat's. */
export function nodeUuid(stateDir: string): Buffer {
  const file = join(stateDir, 'hb_uuid');
  try {
    const b = readFileSync(file);
    if (b.length === 16) return b;
  } catch { /* first start */ }
  const uuid = randomBytes(16);
  uuid[6] = (uuid[6]! & 0x0f) | 0x40;
  uuid[8] = (uuid[8]! & 0x3f) | 0x80;
  mkdirSync(stateDir, { recursive: true });
  writeFileSync(file, uuid, { mode: 0o644 });
  return uuid;
}

export class HeartbeatDaemon {
  readonly config: DaemonConfig;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly clock: Clock;
  readonly media: readonly Medium[];
  #state: Lifecycle = 'new';
  #localState: NodeState = 'init';
  #driver: MembershipDriver | undefined;
  #gate: GateContext;
  #key: SignKey;
  #seq = 0;
  #generation = 0;
  #uuid: Buffer = Buffer.alloc(16);
  #peerUuids = new Map<string, Buffer>();
  #loadavg = '0.00 0.00 0.00 1/1 1';
  #sendTimer: TimerHandle | undefined;
  #nextSendAt = 0;
  #startedAt = 0;
  #control: ControlServer | undefined;
  #intervals: NodeJS.Timeout[] = [];
  #histogram: IntervalHistogram | undefined;
  #loopWindow = { p50: 0, p99: 0, max: 0 };
  #lateSendMaxMs = 0;
  #drops = new Map<string, number>();
  #badpackLoggedAt = -Infinity;
  #stopping: Promise<void> | undefined;
  #opts: DaemonOptions;
  #waiters = new Set<{ type: string; node: string | undefined; resolve: (r: ControlReply) => void; timer: NodeJS.Timeout }>();

  constructor(opts: DaemonOptions) {
    this.#opts = opts;
    this.config = Object.freeze({ ...opts.config });
    this.logger = opts.logger;
    this.metrics = opts.metrics ?? new Metrics();
    this.clock = opts.clock ?? realClock;
    this.media = opts.media;
    this.#key = activeKey(opts.config.authKeys);
    const known = new Set([...opts.config.nodes, ...(opts.config.pingNodes ?? [])].map((n) => n.toLowerCase()));
    this.#gate = { keys: opts.config.authKeys, knownNodes: known, replay: new ReplayGuard(), metrics: this.metrics };
  }

  get state(): Lifecycle {
    return this.#state;
  }

  get localState(): NodeState {
    return this.#localState;
  }

  get generation(): number {
    return this.#generation;
  }

  get membership(): Membership {
    if (!this.#driver) throw new Error('daemon not started');
    return this.#driver.membership;
  }

  async start(): Promise<void> {
    if (this.#state !== 'new') throw new Error(`cannot start a daemon that is ${this.#state}`);
    this.#state = 'starting';
    const c = this.config;
    const stateDir = this.#opts.stateDir ?? DEFAULT_STATE_DIR;
    this.#generation = nextGeneration(stateDir);
    this.#uuid = nodeUuid(stateDir);
    this.metrics.set(M.generation, 'generation (hg) of this run', this.#generation);
    this.#startedAt = this.clock.now();
    const membership = new Membership({
      localNode: c.nodeName, nodes: c.nodes, pingNodes: c.pingNodes, links: this.media.map((m) => m.link),
      timing: c.timing, deadpingMs: c.deadpingMs, now: this.#startedAt,
    });
    // The death decision runs after one more I/O poll: see "Scheduling" above.
    const confirm = this.clock === realClock ? (fn: () => void) => void setImmediate(fn) : (fn: () => void) => fn();
    this.#driver = new MembershipDriver(membership, this.clock, (events) => this.#onEvents(events), confirm);
    this.logger.info(`tandem heartbeat ${TANDEM_HEARTBEAT_VERSION} starting on ${c.nodeName}: generation ${this.#generation}, keepalive ${c.timing.keepaliveMs}ms, deadtime ${c.timing.deadtimeMs}ms, warntime ${c.timing.warntimeMs}ms, initdead ${c.timing.initdeadMs}ms`);
    try {
      for (const m of this.media) {
        await m.start((r) => this.#onPacket(r));
        this.logger.info(`${m.type} heartbeat started on ${m.link}`);
      }
      if (this.#opts.controlSocket !== false) {
        this.#control = await startControlServer(this.#opts.controlSocket ?? DEFAULT_CONTROL_SOCKET, (req) => this.#onControl(req));
      }
    } catch (err) {
      this.logger.error(`start failed: ${(err as Error).message}`);
      await Promise.allSettled(this.media.map((m) => m.close()));
      this.#driver.stop();
      this.#state = 'stopped';
      throw err;
    }
    if (this.clock === realClock) this.#startMonitors();
    if (this.#opts.applyScheduling) await this.#applyScheduling();
    this.#state = 'running';
    this.#nextSendAt = this.clock.now();
    this.#sendLoop();
    if (this.#opts.resourceManager) {
      await this.#opts.resourceManager.start(this.#rmContext());
    }
  }

  #rmContext(): RmContext {
    return {
      localNode: this.config.nodeName,
      logger: this.logger,
      metrics: this.metrics,
      clock: this.clock,
      send: (fields) => this.send(fields),
      nodes: () => this.membership.nodes(),
      node: (n) => this.membership.node(n),
      localState: () => this.#localState,
    };
  }

  /** Signs and sends one message on every medium. NS_* messages carry no seq. */
  send(own: ReadonlyArray<readonly [string, string]>): number {
    const type = own.find(([n]) => n === 't')?.[1] ?? '';
    const dest = own.find(([n]) => n === 'dest')?.[1];
    const seq = type.startsWith('NS_') ? undefined : ++this.#seq;
    const fields = buildFields(own, {
      src: this.config.nodeName, srcuuid: this.#uuid, seq, hg: this.#generation, ts: Date.now() / 1000, ld: this.#loadavg,
      ttl: this.config.nodes.length + (this.config.hopfudge ?? 1),
      ...(dest !== undefined && this.#peerUuids.has(dest) ? { destuuid: this.#peerUuids.get(dest)! } : {}),
    });
    const packet = encodePacket(fields, this.#key, { innerAuth: (this.config.msgfmt ?? 'classic') === 'classic' });
    for (const m of this.media) {
      try {
        m.send(packet);
        this.metrics.inc(M.sent, 'packets sent per link', { link: m.link, type });
      } catch (err) {
        this.metrics.inc(M.sendErrors, 'send failures per link', { link: m.link });
        this.logger.debug(`send on ${m.link} failed: ${(err as Error).message}`);
      }
    }
    return seq ?? 0;
  }

  #sendStatus(st: NodeState): void {
    this.send([['t', 'status'], ['st', st], ['dt', this.config.timing.deadtimeMs.toString(16)], ['protocol', '1']]);
  }

  #sendLoop(): void {
    if (this.#state !== 'running') return;
    const now = this.clock.now();
    const late = now - this.#nextSendAt;
    if (late > 0) {
      this.metrics.set(M.lateSend, 'how late the last keepalive left, ms', Math.round(late * 1000) / 1000);
      if (late > this.#lateSendMaxMs) {
        this.#lateSendMaxMs = late;
        this.metrics.set(M.lateSendMax, 'worst keepalive send lateness since start, ms', Math.round(late * 1000) / 1000);
      }
    }
    this.#advanceLocalState(now);
    this.#sendStatus(this.#localState);
    const k = this.config.timing.keepaliveMs;
    this.#nextSendAt += k;
    // After a stall longer than a keepalive, start again from now instead of sending a burst.
    if (this.#nextSendAt <= now) {
      if (late > k) this.logger.warn(`keepalive sent ${Math.round(late)} ms late (event loop blocked)`);
      this.#nextSendAt = now + k;
    }
    this.#sendTimer = this.clock.setTimeout(() => this.#sendLoop(), this.#nextSendAt - now);
  }

  #advanceLocalState(now: number): void {
    let next = this.#localState;
    if (this.#localState === 'init' && this.#seq > 0) next = 'up';
    if (next === 'up' && (this.membership.commsUp || now - this.#startedAt >= this.config.timing.initdeadMs)) next = 'active';
    if (next !== this.#localState) this.#setLocalState(next);
  }

  #setLocalState(s: NodeState): void {
    this.#localState = s;
    this.membership.setLocalState(s);
    this.logger.info(`Local status now set to: '${s}'`);
    this.#opts.resourceManager?.onLocalState?.(s);
  }

  #onPacket(r: Received): void {
    if (this.#state === 'stopped' || this.#state === 'new' || !this.#driver) return;
    const v = verify(r.packet, this.#gate);
    if (!v.ok) {
      this.#drops.set(v.reason, (this.#drops.get(v.reason) ?? 0) + 1);
      if ((this.config.logBadPackets ?? true) && this.clock.now() - this.#badpackLoggedAt > 10_000) {
        // Rate-limited: a flood of bad packets must not become a flood of log writes.
        this.#badpackLoggedAt = this.clock.now();
        this.logger.warn(`dropped packet on ${r.link} from ${r.from}: ${v.reason}: ${v.detail}`);
      } else this.logger.debug(`dropped packet on ${r.link} from ${r.from}: ${v.reason}: ${v.detail}`);
      return;
    }
    const m = v.msg;
    const uuid = m.wire.find((f) => f.name === 'srcuuid');
    if (uuid && uuid.value.length === 16 && !this.#peerUuids.has(m.src)) this.#peerUuids.set(m.src, Buffer.from(uuid.value));
    const carriesStatus = m.type === 'status' || m.type === 'shutdone';
    this.#driver.heard({
      node: m.src, link: r.link, type: m.type, status: carriesStatus ? m.fields.get('st') : undefined, seq: m.seq, generation: m.hg,
      deadtimeMs: m.type === 'status' ? parseHexField(m.fields.get('dt')) : undefined,
    });
    if (v.duplicate || m.src === this.config.nodeName || m.type === 'status' || m.type.startsWith('NS_')) return;
    const dest = m.fields.get('dest');
    if (dest !== undefined && dest.toLowerCase() !== this.config.nodeName) return;
    this.logger.debug(`message ${m.type} from ${m.src} on ${r.link}`);
    try {
      this.#opts.resourceManager?.onMessage(m, r.link);
    } catch (err) {
      this.logger.error(`resource manager failed on ${m.type} from ${m.src}: ${(err as Error).message}`);
    }
  }

  #onEvents(events: MembershipEvent[]): void {
    const wallMs = Date.now();
    for (const e of events) {
      for (const w of this.#waiters) {
        if (w.type === e.type && (w.node === undefined || w.node === e.node)) {
          clearTimeout(w.timer);
          this.#waiters.delete(w);
          w.resolve({ ok: true, event: e, wallMs });
        }
      }
      const d = describeEvent(e);
      this.logger[d.level](d.msg);
      this.metrics.inc(M.events, 'membership events by type', { type: e.type });
      if (e.type === 'node-up' || e.type === 'node-dead') this.metrics.set(M.nodeUp, '1 while a node is up', e.type === 'node-up' ? 1 : 0, { node: e.node });
      if (e.type === 'link-up' || e.type === 'link-dead') this.metrics.set(M.linkUp, '1 while a link delivers', e.type === 'link-up' ? 1 : 0, { node: e.node, link: e.link });
      try {
        this.#opts.resourceManager?.onMembership(e);
      } catch (err) {
        this.logger.error(`resource manager failed on ${e.type}: ${(err as Error).message}`);
      }
    }
  }

  #startMonitors(): void {
    const h = monitorEventLoopDelay({ resolution: 5 });
    h.enable();
    this.#histogram = h;
    const snap = () => {
      const ms = (ns: number) => Math.round(ns / 1e4) / 100;
      this.#loopWindow = { p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), max: ms(h.max) };
      for (const [q, v] of Object.entries(this.#loopWindow)) this.metrics.set(M.loopDelay, 'event-loop delay over the last 10 s, ms', v, { quantile: q });
      h.reset();
    };
    const readLoad = () => {
      readFile('/proc/loadavg', 'utf8').then((t) => { this.#loadavg = t.trim(); }, () => {});
    };
    readLoad();
    this.#intervals.push(setInterval(snap, 10_000).unref(), setInterval(readLoad, 5000).unref());
  }

  /**
   * Realtime scheduling for every thread, as heartbeat 3.0.6 runs (SCHED_RR 1 by default; `rtprio N`
   * gives SCHED_FIFO N). Where that is refused (no CAP_SYS_NICE), every thread is reniced to -10.
   */
  async #applyScheduling(): Promise<void> {
    const c = this.config;
    if (c.realtime === false) return;
    const pid = String(process.pid);
    // -R (SCHED_RESET_ON_FORK): resource scripts, respawned programs and the daemons they start
    // (ldirectord, ...) must not inherit realtime priority; heartbeat resets its children likewise.
    const rt = c.rtprio !== undefined
      ? await runCommand('chrt', ['-a', '-R', '-f', '-p', String(c.rtprio), pid], { timeoutMs: 5000 })
      : await runCommand('chrt', ['-a', '-R', '-r', '-p', '1', pid], { timeoutMs: 5000 });
    if (rt.ok) {
      this.logger.info(c.rtprio !== undefined ? `running at realtime priority SCHED_FIFO ${c.rtprio}` : 'running at realtime priority SCHED_RR 1');
      return;
    }
    this.logger.warn(`could not set realtime scheduling: ${describeResult(rt)}; renicing to -10 instead`);
    let tids = [pid];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch { /* no /proc: the main thread only */ }
    const r = await runCommand('renice', ['-n', '-10', '-p', ...tids], { timeoutMs: 5000 });
    if (r.ok) this.logger.info('running at nice -10');
    else this.logger.warn(`could not renice: ${describeResult(r)}`);
  }

  /** Everything `cl_status` and `heartbeat -s` show, as data. */
  status(): Record<string, unknown> {
    const rm = this.#opts.resourceManager;
    return {
      version: TANDEM_HEARTBEAT_VERSION,
      pid: process.pid,
      node: this.config.nodeName,
      lifecycle: this.#state,
      localState: this.#localState,
      generation: this.#generation,
      managedBy: rm ? 'haresources' : 'none',
      resources: rm?.resourceStatus?.() ?? 'local',
      nodes: this.#driver ? this.membership.nodes().map((n) => (n.name === this.config.nodeName ? this.#localView(n) : n)) : [],
      timing: this.config.timing,
      parameters: this.#parameters(),
      drops: Object.fromEntries(this.#drops),
      eventLoopDelayMs: this.#loopWindow,
      keepaliveSendLateMaxMs: Math.round(this.#lateSendMaxMs * 1000) / 1000,
      rm: rm?.status?.(),
    };
  }

  /**
   * This node as cl_status shows it: its own state, and its links up while their media run (heartbeat
   * hears itself through the self-addressed ucast copy; tandem's media do not loop packets back).
   */
  #localView(n: NodeView): NodeView {
    const running = this.#state === 'running';
    return { ...n, state: this.#localState, links: n.links.map((l) => ({ ...l, state: running || l.state === 'up' ? 'up' : 'dead' })) };
  }

  #parameters(): Record<string, string> {
    const t = this.config.timing;
    return {
      keepalive: `${t.keepaliveMs}ms`, deadtime: `${t.deadtimeMs}ms`, warntime: `${t.warntimeMs}ms`, initdead: `${t.initdeadMs}ms`,
      deadping: `${this.config.deadpingMs ?? t.deadtimeMs}ms`, hopfudge: String(this.config.hopfudge ?? 1),
      msgfmt: this.config.msgfmt ?? 'classic', hbversion: `${TANDEM_HEARTBEAT_VERSION} (node: tandem)`,
      ...this.config.parameters,
    };
  }

  async #onControl(req: ControlRequest): Promise<ControlReply> {
    switch (req.cmd) {
      case 'status':
        return { ok: true, status: this.status() };
      case 'metrics':
        return { ok: true, text: this.metrics.render() };
      case 'reload': {
        if (!this.#opts.reload) return { ok: false, error: 'reload is not available in this daemon', code: 'E_HB_RELOAD' };
        const r = await this.#opts.reload();
        if (r.ok && r.authKeys) {
          this.#gate.keys = r.authKeys;
          this.#key = activeKey(r.authKeys);
        }
        this.logger.info(`reload: ${r.message}`);
        return r.ok ? { ok: true, message: r.message } : { ok: false, error: r.message, code: 'E_HB_RELOAD' };
      }
      case 'wait': {
        // {"cmd":"wait","event":"node-dead","node":"node2","timeoutMs":30000}: answers when that
        // membership event happens, with the wall-clock time it happened (for benchmarks and tests
        // in other processes, which cannot share this process's monotonic clock).
        const type = String(req.event ?? '');
        const node = req.node === undefined ? undefined : String(req.node);
        const timeoutMs = Math.min(Number(req.timeoutMs ?? 60_000) || 60_000, 3_600_000);
        return new Promise<ControlReply>((resolve) => {
          const w = {
            type, node, resolve,
            timer: setTimeout(() => { this.#waiters.delete(w); resolve({ ok: false, error: `no ${type} within ${timeoutMs} ms`, code: 'E_HB_TIMEOUT' }); }, timeoutMs),
          };
          this.#waiters.add(w);
        });
      }
      case 'stop':
        // Answer first, then stop: the caller waits for the pid to go.
        setImmediate(() => void this.stop().then(() => this.#opts.onStopped?.()));
        return { ok: true, message: 'stopping' };
      default: {
        if (this.#state !== 'running') return { ok: false, error: `heartbeat is ${this.#state}`, code: 'E_HB_STATE' };
        const rm = this.#opts.resourceManager;
        const reply = rm?.onControl ? await rm.onControl(req) : undefined;
        if (reply) return reply;
        if (req.cmd === 'standby' || req.cmd === 'takeover') {
          return { ok: false, error: 'no resource manager is running (no haresources?)', code: 'E_HB_NO_RM' };
        }
        return { ok: false, error: `unknown command ${req.cmd}`, code: 'E_CONTROL_PROTOCOL' };
      }
    }
  }

  /**
   * Staged shutdown: stop taking work, let the resource manager release its groups, tell the peers
   * (`shutdone st=dead`, so they take over at once), stop timers, close the media, the control
   * socket and the log. Safe to call twice; a second call returns the same promise.
   */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    if (this.#state === 'new' || this.#state === 'stopped') {
      this.#state = 'stopped';
      return;
    }
    const wasRunning = this.#state === 'running';
    this.#state = 'stopping';
    this.logger.info('Heartbeat shutdown in progress.');
    const rm = this.#opts.resourceManager;
    if (rm) {
      try {
        await rm.stop();
      } catch (err) {
        this.logger.error(`resource manager stop failed: ${(err as Error).message}`);
      }
    }
    this.clock.clearTimeout(this.#sendTimer);
    this.#sendTimer = undefined;
    if (wasRunning) {
      this.#setLocalState('dead');
      // Twice, with different seqs: one lost datagram must not cost the peer a whole deadtime.
      this.send([['t', 'shutdone'], ['st', 'dead']]);
      this.#sendStatus('dead');
    }
    this.#driver?.stop();
    for (const w of this.#waiters) {
      clearTimeout(w.timer);
      w.resolve({ ok: false, error: 'heartbeat stopped', code: 'E_HB_STATE' });
    }
    this.#waiters.clear();
    for (const i of this.#intervals) clearInterval(i);
    this.#intervals = [];
    this.#histogram?.disable();
    await Promise.allSettled(this.media.map((m) => m.close()));
    await this.#control?.close();
    this.logger.info('Heartbeat shutdown complete.');
    this.#state = 'stopped';
  }
}
