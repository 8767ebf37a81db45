/**
 * The resource manager as the heartbeat daemon's plugin (daemon.ts `ResourceManagerPlugin`): it maps
 * membership events, cluster messages and control requests onto the resource machine, runs the
 * machine's jobs through the agent runner of @tandem/resources, supervises `respawn` programs, and
 * answers `cl_status rscstatus`.
 *
 * How the daemon drives it (the contract, also in packages/resources/README.md):
 * - `start(ctx)` once the media are up; `ctx.send` carries the machine's messages.
 * - `onLocalState('active')`: communications are up, the conversation starts (`starting`).
 * - `onMembership`: node-up → nodeUp (ping nodes: pingStatus up); node-dead → nodeDead, or
 *   peerShutdown when its reason is `shutdown`, or pingStatus down for a ping node; link-dead → ipfail.
 * - `onMessage` for every cluster message from a peer (not status/NS_*).
 * - `onControl({cmd: 'standby'|'takeover', resources})` from hb_standby / hb_takeover.
 * - `stop()` releases every group, right to left within each, and resolves; the daemon then sends
 *   `shutdone st=dead`.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { realClock, type Clock, type ControlReply, type ControlRequest, type Logger } from '@tandem/core';
import { AgentRunner, DEFAULT_INIT_DIRS, REPO_RESOURCE_DIR, loadHaresources, type ResourceGroup } from '@tandem/resources';
import type { MembershipEvent, NodeState } from '../membership.ts';
import type { HbMessage } from '../codec.ts';
import type { ResourceManagerFactoryArgs, ResourceManagerPlugin, RmContext } from '../daemon.ts';
import type { AutoFailbackMode } from './machine.ts';
import { ResourceMachine, type MachineOptions } from './machine.ts';
import { RmExecutor, type GroupRunner } from './executor.ts';
import { Respawner, isIpfail, type RespawnEntryLike } from './respawn.ts';
import { Pinger, pingInterval, type PingTarget } from './pinger.ts';

export { ResourceMachine, Ipfail, RSC_NAMES } from './machine.ts';
export type { RmAction, JobResult, MachineOptions, AutoFailbackMode, GroupRef } from './machine.ts';
export { RmExecutor } from './executor.ts';
export { RespawnPolicy, Respawner, isIpfail, NO_RESPAWN_EXIT } from './respawn.ts';
export { RmSim } from './sim.ts';
export { Pinger, PingTracker, pingInterval, spawnPing } from './pinger.ts';

export interface HaresourcesManagerOptions {
  localNode: string;
  nodes: readonly string[];
  pingNodes?: readonly string[] | undefined;
  groups: readonly ResourceGroup[];
  autoFailback: AutoFailbackMode;
  runner: GroupRunner;
  logger: Logger;
  /** ipfail behaviour (respawn .../ipfail in ha.cf). */
  ipfail?: boolean | undefined;
  keepaliveMs: number;
  respawn?: readonly RespawnEntryLike[] | undefined;
  /** Environment for respawned programs (ha.cf `env`). */
  env?: Record<string, string | undefined> | undefined;
  /**
   * ping / ping_group targets probed here with the system ping, for ipfail. Leave undefined when the
   * daemon's membership reports the ping nodes itself (node-up / node-dead events).
   */
  pingTargets?: readonly PingTarget[] | undefined;
  deadpingMs?: number | undefined;
  /** Answer `reqnodes` with `repnodes` (needed by a real heartbeat peer); default true. */
  answerReqnodes?: boolean | undefined;
  /** Machine timing overrides (tests). */
  machine?: Partial<Pick<MachineOptions, 'rqstDelayMs' | 'standbyInitTimeoutMs' | 'standbyResourceTimeoutMs' | 'failedStartStandbyDelayMs' | 'autoFailbackRetryMs'>> | undefined;
}

export class HaresourcesManager implements ResourceManagerPlugin {
  readonly opts: HaresourcesManagerOptions;
  #ctx: RmContext | undefined;
  #clock: Clock = realClock;
  #machine: ResourceMachine | undefined;
  #exec: RmExecutor | undefined;
  #pingNodes: Set<string>;
  #respawners: Respawner[] = [];
  #pinger: Pinger | undefined;
  #stopping: Promise<void> | undefined;
  #stoppedResolve: (() => void) | undefined;
  #fatal: string | undefined;

  constructor(opts: HaresourcesManagerOptions) {
    this.opts = opts;
    this.#pingNodes = new Set((opts.pingNodes ?? []).map((n) => n.toLowerCase()));
  }

  get machine(): ResourceMachine | undefined {
    return this.#machine;
  }

  get executor(): RmExecutor | undefined {
    return this.#exec;
  }

  start(ctx: RmContext): void {
    this.#ctx = ctx;
    this.#clock = ctx.clock;
    const o = this.opts;
    this.#machine = new ResourceMachine({
      localNode: o.localNode, nodes: o.nodes, pingNodes: o.pingNodes, autoFailback: o.autoFailback,
      groups: o.groups.map((g) => ({ key: g.key, node: g.node })), now: ctx.clock.now(),
      ipfail: o.ipfail ? { keepaliveMs: o.keepaliveMs } : undefined, ...o.machine,
    });
    this.#exec = new RmExecutor({
      machine: this.#machine, groups: o.groups, runner: o.runner, clock: ctx.clock, logger: ctx.logger,
      send: (fields) => ctx.send([...fields]),
      onStopped: () => this.#stoppedResolve?.(),
      onFatal: (reason) => {
        this.#fatal = reason;
        ctx.logger.error(`resource manager: ${reason}`);
      },
    });
    ctx.logger.info(`resource manager: ${o.groups.length} haresources group(s), auto_failback ${o.autoFailback}${o.ipfail ? ', ipfail' : ''}`);
    if (o.ipfail && o.pingTargets?.length) {
      this.#pinger = new Pinger({
        targets: o.pingTargets, intervalMs: pingInterval(o.keepaliveMs, o.deadpingMs ?? 30_000), deadpingMs: o.deadpingMs ?? 30_000, clock: ctx.clock,
        onChange: (c) => {
          ctx.logger.info(`ping node ${c.name} is ${c.up ? 'up' : 'dead'}`);
          this.#exec?.input((m, now) => m.pingStatus(c.name, c.up, now));
        },
      });
      this.#pinger.start();
    }
    if (ctx.localState() === 'active') this.onLocalState('active');
  }

  onLocalState(state: NodeState): void {
    if (state !== 'active' || !this.#exec) return;
    this.#exec.input((m, now) => m.commUp(now));
    if (this.#respawners.length === 0) {
      for (const e of this.opts.respawn ?? []) {
        if (isIpfail(e.command)) continue;
        const r = new Respawner(e, { logger: this.#ctx!.logger, clock: this.#clock, env: this.opts.env });
        this.#respawners.push(r);
        void r.start().catch((err) => this.#ctx?.logger.error(`respawn ${e.command}: ${(err as Error).message}`));
      }
    }
  }

  onMembership(e: MembershipEvent): void {
    const exec = this.#exec;
    if (!exec) return;
    const ping = 'node' in e && this.#pingNodes.has(e.node.toLowerCase());
    switch (e.type) {
      case 'node-up':
        exec.input((m, now) => (ping ? m.pingStatus(e.node, true, now) : m.nodeUp(e.node, now)));
        break;
      case 'node-status':
        if (ping && e.status === 'ping') exec.input((m, now) => m.pingStatus(e.node, true, now));
        break;
      case 'node-dead':
        if (ping) exec.input((m, now) => m.pingStatus(e.node, false, now));
        else if (e.reason === 'shutdown') exec.input((m, now) => m.peerShutdown(e.node, now));
        else exec.input((m, now) => m.nodeDead(e.node, now));
        break;
      case 'link-dead':
        exec.input((m, now) => m.linkDead(e.node, e.link, now));
        break;
      default:
        break;
    }
  }

  onMessage(msg: HbMessage): void {
    if (msg.type === 'reqnodes' && this.opts.answerReqnodes !== false && this.#ctx) {
      // A real heartbeat 3.0.6 node asks for the node list and does not go active (so never starts
      // its resource conversation) until it gets it. The daemon does not answer it yet; this does.
      this.#ctx.send([['t', 'repnodes'], ['dest', msg.src], ['nodelist', `${this.opts.nodes.join(' ')} `], ['delnodelist', ' ']]);
      return;
    }
    const f = new Map(msg.fields);
    if (!f.has('t')) f.set('t', msg.type);
    if (!f.has('src')) f.set('src', msg.src);
    this.#exec?.input((m, now) => m.message(f, now));
  }

  onControl(req: ControlRequest): ControlReply | undefined {
    if (req.cmd !== 'standby' && req.cmd !== 'takeover') return undefined;
    const rsc = req.resources === 'local' || req.resources === 'foreign' ? req.resources : 'all';
    if (!this.#exec) return { ok: false, error: 'resource manager not started', code: 'E_HB_STATE' };
    this.#exec.input((m, now) => (req.cmd === 'standby' ? m.standbyRequest(rsc, now) : m.takeoverRequest(rsc, now)));
    return { ok: true, message: `${req.cmd} [${rsc}] requested` };
  }

  resourceStatus(): string {
    return this.#machine?.rscstatus() ?? 'none';
  }

  status(): Record<string, unknown> {
    return { ...this.#machine?.snapshot(), fatal: this.#fatal, respawn: this.#respawners.map((r) => ({ command: r.entry.command, pid: r.pid, starts: r.starts })) };
  }

  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    this.#pinger?.stop();
    await Promise.all(this.#respawners.map((r) => r.stop()));
    const exec = this.#exec;
    if (!exec) return;
    const done = new Promise<void>((resolve) => { this.#stoppedResolve = resolve; });
    exec.input((m, now) => m.shutdown(now));
    await done;
    exec.close();
  }
}

/** Where agents are looked up for a config dir: its resource.d, the repository's, then init.d (env overrides). */
export function agentDirs(configDir: string): { resourceDirs: string[]; initDirs: string[] } {
  return {
    resourceDirs: envDirs('TANDEM_RESOURCE_DIRS') ?? [join(configDir, 'resource.d'), REPO_RESOURCE_DIR],
    initDirs: envDirs('TANDEM_INIT_DIRS') ?? [...DEFAULT_INIT_DIRS],
  };
}

function envDirs(name: string): string[] | undefined {
  const v = process.env[name];
  return v ? v.split(':').filter(Boolean) : undefined;
}

/**
 * What the `heartbeat` command loads (cli/plugins.ts): haresources from the config dir, agents from
 * CONFIG_DIR/resource.d then tandem's resource.d, then /etc/init.d (TANDEM_RESOURCE_DIRS and
 * TANDEM_INIT_DIRS, colon-separated, replace them).
 */
export function createResourceManager(args: ResourceManagerFactoryArgs): ResourceManagerPlugin | undefined {
  const cfg = args.haConfig;
  const file = join(args.configDir, 'haresources');
  const groups = existsSync(file) ? loadHaresources(file, { nodes: cfg.nodes }).groups : [];
  if (!existsSync(file)) args.logger.info(`no ${file}: no resource groups to manage`);
  const env: Record<string, string> = {};
  for (const [k, v] of cfg.env) env[`HA_${k}`] = v;
  const runner = new AgentRunner({
    ...agentDirs(args.configDir),
    env: { ...env, HA_CURHOST: args.nodeName },
    logger: args.logger,
  });
  return new HaresourcesManager({
    localNode: args.nodeName, nodes: cfg.nodes, pingNodes: [...cfg.pingNodes, ...cfg.pingGroups.map((g) => g.name)],
    groups, autoFailback: cfg.autoFailback, runner, logger: args.logger, ipfail: cfg.ipfail, keepaliveMs: cfg.keepaliveMs,
    respawn: cfg.respawn, env, deadpingMs: cfg.deadpingMs,
    // The daemon's membership does not probe ping nodes: this plugin does, with the system ping.
    pingTargets: [...cfg.pingNodes.map((a) => ({ name: a, addresses: [a] })), ...cfg.pingGroups.map((g) => ({ name: g.name, addresses: g.addresses }))],
  });
}
