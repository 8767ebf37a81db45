/**
 * The agent runner: finds a resource's agent and runs it, the way heartbeat's ResourceManager does,
 * through core's runCommand (execa, no shell) with a timeout per action.
 *
 * Lookup, per resource name: each resource.d directory (default /etc/ha.d/resource.d, then this
 * repository's resource.d), then each init.d directory (default /etc/init.d), then the OCF agents
 * under OCF_ROOT (an extension; `ocf:provider:type` names one explicitly). The first executable
 * file wins.
 *
 * Calling conventions and what "running" means:
 * - heartbeat agents (resource.d): `agent arg... start|stop|status`. Status is read from the output
 *   as ResourceManager reads it: running when it says `running` or `OK` and not `not running`.
 * - LSB init scripts (init.d): `script arg... start|stop|status`; status by LSB exit code (0 running,
 *   1-3 stopped, 4 unknown).
 * - OCF agents: `agent start|stop|monitor` with `agent::name=value` arguments as OCF_RESKEY_name,
 *   OCF_ROOT and OCF_RESOURCE_INSTANCE in the environment; monitor 0 running, 7 stopped.
 *
 * A group starts left to right, each resource after a status check (a resource already running is
 * not started again); when a start fails, the failed resource and every one before it are stopped
 * right to left and the failure is reported with its exit code and output. A group stops right to
 * left; a failed stop is retried, then judged by status as ResourceManager does.
 */
import { accessSync, closeSync, constants, fstatSync, mkdtempSync, openSync, readdirSync, readSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import {
  didYouMean, processAlive, realClock, sleep, TandemError,
  type Clock, type CommandRunner, type Logger, type RunResult,
} from '@tandem/core';
import { formatGroup, type ResourceGroup, type ResourceSpec } from './haresources.ts';

export type AgentKind = 'heartbeat' | 'lsb' | 'ocf';
export type AgentAction = 'start' | 'stop' | 'status';

export interface ResolvedAgent {
  kind: AgentKind;
  path: string;
  /** OCF provider and type, for OCF agents. */
  provider?: string | undefined;
  type?: string | undefined;
}

/** This repository's top-level resource.d (the tandem agents). */
export const REPO_RESOURCE_DIR = fileURLToPath(new URL('../../../resource.d', import.meta.url));

export const DEFAULT_RESOURCE_DIRS: readonly string[] = ['/etc/ha.d/resource.d', REPO_RESOURCE_DIR];
export const DEFAULT_INIT_DIRS: readonly string[] = ['/etc/init.d'];
export const DEFAULT_OCF_ROOT = '/usr/lib/ocf';

export interface ActionTimeouts {
  start: number;
  stop: number;
  status: number;
}

export interface RunnerOptions {
  resourceDirs?: readonly string[] | undefined;
  initDirs?: readonly string[] | undefined;
  ocfRoot?: string | undefined;
  /** Per-action timeouts in ms; the agent is killed (SIGTERM, then SIGKILL) after it. */
  timeouts?: Partial<ActionTimeouts> | undefined;
  /** Extra environment for every agent (PATH, IPVSADM, TANDEM_LDIRECTORD, ...). */
  env?: Record<string, string | undefined> | undefined;
  /** Retries of a failed stop (heartbeat's HA_STOPRETRYMAX, default 10) and the pause between them. */
  stopRetries?: number | undefined;
  stopRetryDelayMs?: number | undefined;
  /** Check status before each start and skip resources already running (ResourceManager does). */
  statusBeforeStart?: boolean | undefined;
  logger?: Logger | undefined;
  run?: CommandRunner | undefined;
  clock?: Clock | undefined;
}

export interface ActionResult {
  resource: ResourceSpec;
  action: AgentAction;
  agent: ResolvedAgent | undefined;
  /** The command line run (path then arguments). */
  argv: string[];
  exitCode: number | undefined;
  timedOut: boolean;
  signal: string | undefined;
  /** stdout then stderr, trimmed. */
  output: string;
  /** The action succeeded (for status: the agent answered, running or not). */
  ok: boolean;
  /** For status: the resource is running. */
  running?: boolean | undefined;
  durationMs: number;
  /** Why it failed, in one line (exit code and the last output lines). */
  error?: string | undefined;
}

export interface GroupResult {
  group: ResourceGroup;
  ok: boolean;
  /** Every action run, in order. */
  steps: ActionResult[];
  /** The action that failed (start: the group was rolled back; stop: it still runs). */
  failed?: ActionResult | undefined;
  /** Resources stopped by the rollback, right to left. */
  rolledBack: string[];
}

export interface GroupStatus {
  group: ResourceGroup;
  /** ResourceManager statgroup: ALL, SOME or NONE of the resources run. */
  state: 'ALL' | 'SOME' | 'NONE';
  resources: { token: string; running: boolean; output: string }[];
}

const LSB_STATUS_RUNNING = 0;
const OCF_NOT_RUNNING = 7;

function isExecutableFile(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/**
 * Runs an agent the way it must be run: init scripts start daemons that inherit stdout and never
 * close it, so output goes to files rather than pipes (the command ends when the script exits, not
 * when its daemon does), and the agent gets a process group of its own so a timeout kills the
 * script and whatever it left hanging, not only the shell.
 */
export const runAgentCommand: CommandRunner = async (command, args, opts = {}) => {
  const started = performance.now();
  // Anonymous files: opened, then unlinked at once, so nothing is left behind even if tandem is
  // killed while the agent runs.
  const dir = mkdtempSync(join(tmpdir(), 'tandem-agent-'));
  const outFd = openSync(join(dir, 'stdout'), 'w+');
  const errFd = openSync(join(dir, 'stderr'), 'w+');
  rmSync(dir, { recursive: true, force: true });
  const timeoutMs = opts.timeoutMs ?? 30_000;
  let timedOut = false;
  try {
    // File descriptors go to the child as they are (Node's stdio accepts them; execa's types do not
    // list them for stdout/stderr): a daemon the script leaves behind holds a file, not a pipe.
    const fdOut = outFd as unknown as 'inherit';
    const fdErr = errFd as unknown as 'inherit';
    const child = execa(command, [...args], {
      reject: false, env: opts.env, extendEnv: opts.extendEnv ?? true, cwd: opts.cwd ?? '/',
      stdin: 'ignore', stdout: fdOut, stderr: fdErr, detached: true, cleanup: false,
    });
    const pid = child.pid;
    const killGroup = (sig: NodeJS.Signals) => {
      if (pid === undefined) return;
      try { process.kill(-pid, sig); } catch { /* gone */ }
    };
    let hard: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup('SIGTERM');
      hard = setTimeout(() => killGroup('SIGKILL'), 2000);
    }, timeoutMs);
    const r = await child;
    clearTimeout(timer);
    if (hard) clearTimeout(hard);
    // A script killed on timeout may leave members of its group behind: finish them.
    if (timedOut && pid !== undefined && processAlive(pid)) killGroup('SIGKILL');
    const stdout = readAll(outFd);
    const stderr = readAll(errFd);
    const code = (r as { code?: string }).code;
    const spawnError = code && r.exitCode === undefined && !r.signal ? `${code}: ${r.shortMessage}` : undefined;
    return {
      command, args, exitCode: r.exitCode, signal: r.signal ?? undefined, stdout, stderr, timedOut, spawnError,
      durationMs: performance.now() - started, ok: r.exitCode === 0 && !timedOut,
    };
  } finally {
    closeSync(outFd);
    closeSync(errFd);
  }
};

function readAll(fd: number): string {
  const size = fstatSync(fd).size;
  const buf = Buffer.alloc(size);
  let off = 0;
  while (off < size) {
    const n = readSync(fd, buf, off, size - off, off);
    if (n <= 0) break;
    off += n;
  }
  return buf.subarray(0, off).toString('utf8');
}

/** ResourceManager's we_own_resource(): the status output says running or OK, and not "not running". */
export function outputSaysRunning(output: string): boolean {
  if (/[Nn][Oo][Tt] .*[Rr]unning/.test(output)) return false;
  return /[Rr]unning|OK/.test(output);
}

export class AgentRunner {
  readonly resourceDirs: readonly string[];
  readonly initDirs: readonly string[];
  readonly ocfRoot: string;
  readonly timeouts: ActionTimeouts;
  readonly stopRetries: number;
  readonly stopRetryDelayMs: number;
  readonly statusBeforeStart: boolean;
  readonly #env: Record<string, string | undefined>;
  readonly #log: Logger | undefined;
  readonly #run: CommandRunner;
  readonly #clock: Clock;

  constructor(opts: RunnerOptions = {}) {
    this.resourceDirs = opts.resourceDirs ?? DEFAULT_RESOURCE_DIRS;
    this.initDirs = opts.initDirs ?? DEFAULT_INIT_DIRS;
    this.ocfRoot = opts.ocfRoot ?? DEFAULT_OCF_ROOT;
    this.timeouts = { start: 120_000, stop: 120_000, status: 30_000, ...opts.timeouts };
    this.stopRetries = opts.stopRetries ?? 10;
    this.stopRetryDelayMs = opts.stopRetryDelayMs ?? 1000;
    this.statusBeforeStart = opts.statusBeforeStart ?? true;
    this.#env = opts.env ?? {};
    this.#log = opts.logger;
    this.#run = opts.run ?? runAgentCommand;
    this.#clock = opts.clock ?? realClock;
  }

  /** Finds the agent of a resource, or undefined. */
  find(agent: string): ResolvedAgent | undefined {
    const ocf = /^ocf:([^:]+):([^:]+)$/.exec(agent);
    if (ocf) {
      const path = join(this.ocfRoot, 'resource.d', ocf[1]!, ocf[2]!);
      return isExecutableFile(path) ? { kind: 'ocf', path, provider: ocf[1], type: ocf[2] } : undefined;
    }
    for (const dir of this.resourceDirs) {
      const p = join(dir, agent);
      if (isExecutableFile(p)) return { kind: 'heartbeat', path: p };
    }
    for (const dir of this.initDirs) {
      const p = join(dir, agent);
      if (isExecutableFile(p)) return { kind: 'lsb', path: p };
    }
    const providers = listDir(join(this.ocfRoot, 'resource.d')).sort((a, b) => (a === 'heartbeat' ? -1 : b === 'heartbeat' ? 1 : a.localeCompare(b)));
    for (const prov of providers) {
      const p = join(this.ocfRoot, 'resource.d', prov, agent);
      if (isExecutableFile(p)) return { kind: 'ocf', path: p, provider: prov, type: agent };
    }
    return undefined;
  }

  /** Finds the agent or throws E_RSC_NOT_FOUND naming the directories searched and a near name. */
  resolve(r: ResourceSpec): ResolvedAgent {
    const found = this.find(r.agent);
    if (found) return found;
    const names = new Set<string>();
    for (const d of [...this.resourceDirs, ...this.initDirs]) for (const n of listDir(d)) names.add(n);
    const dym = didYouMean(r.agent, names);
    const where = [...this.resourceDirs, ...this.initDirs, join(this.ocfRoot, 'resource.d')].join(', ');
    throw new TandemError('E_RSC_NOT_FOUND', `no executable agent "${r.agent}" (for "${r.token}") in ${where}`, {
      hint: dym ? `did you mean "${dym}"?` : 'install the script in /etc/ha.d/resource.d or /etc/init.d and make it executable',
      location: r.location,
    });
  }

  /** Runs one action of one resource. Never throws: a missing agent is a failed result. */
  async run(r: ResourceSpec, action: AgentAction, instance?: string): Promise<ActionResult> {
    let agent: ResolvedAgent;
    try {
      agent = this.resolve(r);
    } catch (err) {
      const msg = (err as Error).message;
      this.#log?.error(`${msg}`);
      return { resource: r, action, agent: undefined, argv: [r.agent, ...r.args, action], exitCode: undefined, timedOut: false, signal: undefined,
        output: '', ok: false, running: action === 'status' ? false : undefined, durationMs: 0, error: msg };
    }
    const env: Record<string, string | undefined> = { ...this.#env };
    let args: string[];
    if (agent.kind === 'ocf') {
      const bad = r.args.filter((a) => !/^[A-Za-z_][A-Za-z0-9_]*=/.test(a));
      if (bad.length) {
        const error = `OCF agent ${agent.path}: arguments must be name=value (got ${bad.join(', ')})`;
        this.#log?.error(error);
        return { resource: r, action, agent, argv: [agent.path, action], exitCode: 2, timedOut: false, signal: undefined, output: '', ok: false,
          running: action === 'status' ? false : undefined, durationMs: 0, error };
      }
      for (const a of r.args) {
        const eq = a.indexOf('=');
        env[`OCF_RESKEY_${a.slice(0, eq)}`] = a.slice(eq + 1);
      }
      env.OCF_ROOT = this.ocfRoot;
      env.OCF_RA_VERSION_MAJOR = '1';
      env.OCF_RA_VERSION_MINOR = '0';
      env.OCF_RESOURCE_INSTANCE = (instance ?? `${agent.type}_${r.args.map((a) => a.split('=')[1]).join('_') || 'default'}`).replace(/[^A-Za-z0-9_.-]/g, '_');
      env.OCF_RESOURCE_TYPE = agent.type;
      env.OCF_RESOURCE_PROVIDER = agent.provider;
      args = [action === 'status' ? 'monitor' : action];
    } else {
      args = [...r.args, action];
    }
    const argv = [agent.path, ...args];
    if (action !== 'status') this.#log?.info(`Running ${argv.join(' ')}`);
    else this.#log?.debug(`Running ${argv.join(' ')}`);
    const res: RunResult = await this.#run(agent.path, args, { timeoutMs: this.timeouts[action], env });
    const output = [res.stdout.trim(), res.stderr.trim()].filter(Boolean).join('\n');
    let ok = res.ok;
    let running: boolean | undefined;
    if (action === 'status' && !res.timedOut && !res.spawnError) {
      if (agent.kind === 'heartbeat') {
        running = outputSaysRunning(res.stdout);
        ok = true;
      } else if (agent.kind === 'lsb') {
        running = res.exitCode === LSB_STATUS_RUNNING;
        ok = res.exitCode !== undefined && res.exitCode <= 3;
      } else {
        running = res.exitCode === 0;
        ok = res.exitCode === 0 || res.exitCode === OCF_NOT_RUNNING;
      }
    } else if (action === 'status') {
      running = false;
    }
    const result: ActionResult = {
      resource: r, action, agent, argv, exitCode: res.exitCode, timedOut: res.timedOut, signal: res.signal, output, ok, running,
      durationMs: res.durationMs,
    };
    if (!ok) {
      result.error = res.spawnError ? `${argv.join(' ')}: could not start (${res.spawnError})`
        : res.timedOut ? `${argv.join(' ')}: timed out after ${this.timeouts[action]} ms and was killed`
          : `${argv.join(' ')}: exit ${res.exitCode ?? res.signal}${output ? `: ${output.split('\n').slice(-3).join(' | ')}` : ''}`;
      this.#log?.error(`Return code ${res.exitCode ?? res.signal ?? 'none'} from ${argv.join(' ')}${output ? `: ${output.split('\n').slice(-3).join(' | ')}` : ''}`);
    } else if (output) {
      this.#log?.debug(`${argv.join(' ')}: ${output}`);
    }
    return result;
  }

  /** Status of one resource: true when it runs. */
  async status(r: ResourceSpec): Promise<ActionResult> {
    return this.run(r, 'status');
  }

  /**
   * Starts a group left to right. A resource already running (status) is left alone. When a start
   * fails, the failed resource and the ones before it are stopped right to left, and the result
   * names the failure.
   */
  async startGroup(g: ResourceGroup): Promise<GroupResult> {
    this.#log?.info(`Acquiring resource group: ${formatGroup(g)}`);
    const steps: ActionResult[] = [];
    for (let i = 0; i < g.resources.length; i++) {
      const r = g.resources[i]!;
      if (this.statusBeforeStart) {
        const st = await this.run(r, 'status', g.key);
        steps.push(st);
        if (st.running) continue;
      }
      const res = await this.run(r, 'start', g.key);
      steps.push(res);
      if (!res.ok) {
        this.#log?.error(`CRIT: Giving up resources due to failure of ${r.token}: ${res.error ?? ''}`);
        const rolledBack: string[] = [];
        for (let j = i; j >= 0; j--) {
          const victim = g.resources[j]!;
          steps.push(await this.#stopWithRetries(victim, g.key, 0));
          rolledBack.push(victim.token);
        }
        return { group: g, ok: false, steps, failed: res, rolledBack };
      }
    }
    return { group: g, ok: true, steps, rolledBack: [] };
  }

  /** Stops a group right to left. A stop that keeps failing while status still says running fails the group. */
  async stopGroup(g: ResourceGroup): Promise<GroupResult> {
    this.#log?.info(`Releasing resource group: ${formatGroup(g)}`);
    const steps: ActionResult[] = [];
    let failed: ActionResult | undefined;
    for (let i = g.resources.length - 1; i >= 0; i--) {
      const r = g.resources[i]!;
      const res = await this.#stopWithRetries(r, g.key, this.stopRetries);
      steps.push(res);
      if (!res.ok) {
        const st = await this.run(r, 'status', g.key);
        steps.push(st);
        if (st.running) {
          this.#log?.error(`CRIT: Resource STOP failure of ${r.token}: it still reports running [E_RSC_STOP_FAILED]`);
          failed ??= res;
        } else {
          this.#log?.warn(`Resource script for ${r.token} probably not LSB-compliant: its stop failed although it is not running`);
        }
      }
    }
    return { group: g, ok: failed === undefined, steps, failed, rolledBack: [] };
  }

  async #stopWithRetries(r: ResourceSpec, instance: string, retries: number): Promise<ActionResult> {
    let res = await this.run(r, 'stop', instance);
    for (let n = 0; !res.ok && n < retries; n++) {
      await sleep(this.#clock, this.stopRetryDelayMs);
      this.#log?.info(`Retrying failed stop operation [${r.token}]`);
      res = await this.run(r, 'stop', instance);
    }
    return res;
  }

  /** ResourceManager statgroup: which resources of a group run. */
  async statusGroup(g: ResourceGroup): Promise<GroupStatus> {
    const resources: GroupStatus['resources'] = [];
    for (const r of g.resources) {
      const st = await this.run(r, 'status', g.key);
      resources.push({ token: r.token, running: st.running === true, output: st.output });
    }
    const n = resources.filter((x) => x.running).length;
    return { group: g, state: n === 0 ? 'NONE' : n === resources.length ? 'ALL' : 'SOME', resources };
  }
}

/**
 * Machine-dependent check for `heartbeat configtest`: every agent of haresources can be found and
 * executed here. A missing one is a warning (`E_HARES_AGENT_NOT_FOUND`) with its file:line, since
 * the file may be written for another machine.
 */
export function checkAgents(groups: readonly ResourceGroup[], runner: AgentRunner, sink: { warn(code: string, message: string, location?: ResourceSpec['location'], hint?: string): void }): number {
  let missing = 0;
  for (const g of groups) {
    for (const r of g.resources) {
      try {
        runner.resolve(r);
      } catch (err) {
        missing++;
        sink.warn('E_HARES_AGENT_NOT_FOUND', (err as Error).message, r.location, (err as { hint?: string }).hint);
      }
    }
  }
  return missing;
}
