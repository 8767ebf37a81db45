import { appendFile, readFile, readdir, stat } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { realClock, type Clock, type TimerHandle } from '@tandem/core/clock';
import { startControlServer, type ControlReply, type ControlRequest, type ControlServer } from '@tandem/core/control';
import { ConfigError, TandemError, formatProblem, type Problem } from '@tandem/core/errors';
import type { Logger } from '@tandem/core/log';
import { Metrics } from '@tandem/core/metrics';
import { claimPidFile, removePidFile } from '@tandem/core/pidfile';
import type { CommandRunner } from '@tandem/core/run';
import { StoredTable, diffTables } from '@tandem/ipvs/diff';
import { serviceId, type IpvsBackend, type IpvsOp, type IpvsTable, type ServiceKey } from '@tandem/ipvs/model';
import type { Checker, Verdict } from './checks/types.ts';
import { loadConfig, type LdConfig, type ParseEnv } from './config.ts';
import { Policy, type Decision, type VirtualStatus } from './policy.ts';
import { systemNameTables } from './resolve.ts';
import { sendMail, type Mail } from './mail.ts';

/**
 * The ldirectord daemon as an in-process object with an explicit lifecycle
 * (new → starting → running ⇄ reloading → stopping → stopped). Everything with side effects is
 * injected (clock, backend, checker, command runner, logger), so tests run it whole in one
 * process; the CLI adds the pid file, signals and detaching.
 *
 * Each verdict goes through the policy; a decision that changes the table marks it dirty and asks
 * for a reconcile: diff the entries the policy changed since the last batch against the last table
 * the backend confirmed, apply the difference as one batch (O(changes): 10,000 reals coming up at
 * start cost 10,000 entries in all, not 10,000 per batch). At most one reconcile runs at a time; verdicts that arrive meanwhile
 * are folded into exactly one more after it, so a burst of 1,000 transitions costs a few diffs,
 * not 1,000. Besides, a heal pass runs every checkinterval (period, not sleep): it reads the table
 * as it really is and reconciles against that (a table changed behind our back is put right),
 * looks at maintenancedir and at the config file (autoreload, callback); it, start, reload and a
 * refused batch diff the whole desired table. Reloads are atomic: the new file is parsed completely first; a broken file changes
 * nothing and is logged with every problem.
 */

/** What the daemon needs from a check loop: H2's CheckScheduler has this shape. */
export interface CheckLoop {
  update(checks: readonly { id: string; spec: import('./checks/types.ts').CheckSpec; intervalMs: number }[]): void;
  start(): void;
  stop(): Promise<void>;
  stats?(): object;
}

export type CheckLoopFactory = (opts: { onVerdict: (id: string, v: Verdict) => void; check: Checker; clock: Clock }) => CheckLoop;

export type DaemonState = 'new' | 'starting' | 'running' | 'reloading' | 'stopping' | 'stopped';

export interface DaemonOptions {
  configFile: string;
  backend: IpvsBackend;
  clock?: Clock | undefined;
  runner?: CommandRunner | undefined;
  /** The checker; default runCheck from ./checks/index.ts (loaded lazily). */
  checker?: Checker | undefined;
  /** The check loop; default H2's CheckScheduler. */
  checkLoop?: CheckLoopFactory | undefined;
  /** A fixed logger, or one built from the config (and rebuilt when a reload changes logfile). */
  logger?: Logger | undefined;
  loggerFor?: ((config: LdConfig) => Logger) | undefined;
  pidFile?: string | undefined;
  controlSocket?: string | undefined;
  parseEnv?: ParseEnv | undefined;
  /** Called with every decision (tests, e-mail alerts). */
  onDecision?: ((d: Decision) => void) | undefined;
  /** Sends an e-mail alert; default SMTP (smtp=) or sendmail. */
  mailer?: ((mail: Mail, smtp: string | undefined) => Promise<void>) | undefined;
  /** Wall-clock text for monitorfile lines; default Date. */
  wallClock?: (() => string) | undefined;
}

export interface ReloadResult {
  ok: boolean;
  problems: Problem[];
  decisions: Decision[];
}

export interface DaemonStatus {
  pid: number;
  state: DaemonState;
  configFile: string;
  backend: string;
  checkIntervalMs: number;
  virtuals: VirtualStatus[];
  checks?: Record<string, number> | undefined;
  lastApplyError?: string | undefined;
  lastReload?: { ok: boolean; problems: string[] } | undefined;
}

const TABLE_KINDS = new Set<Decision['kind']>([
  'real-added', 'real-restored', 'real-quiesced', 'real-readded-quiescent', 'real-deleted', 'fallback-added', 'fallback-deleted', 'maintenance-on',
]);

function describeOp(op: IpvsOp): string {
  const key = (k: ServiceKey) => serviceId(k);
  switch (op.op) {
    case 'add-service': return `add service ${key(op.service)} ${op.service.scheduler}`;
    case 'edit-service': return `edit service ${key(op.service)} ${op.service.scheduler}`;
    case 'delete-service': return `delete service ${key(op.key)}`;
    case 'add-real': return `add real ${key(op.key)} -> ${op.real.address}:${op.real.port} ${op.real.forwarding} w${op.real.weight}`;
    case 'edit-real': return `edit real ${key(op.key)} -> ${op.real.address}:${op.real.port} ${op.real.forwarding} w${op.real.weight}`;
    case 'delete-real': return `delete real ${key(op.key)} -> ${op.address}:${op.port}`;
  }
}

export class LdDaemon {
  readonly opts: DaemonOptions;
  readonly clock: Clock;
  readonly backend: IpvsBackend;
  readonly metrics = new Metrics();
  #runner: CommandRunner | undefined;
  #state: DaemonState = 'new';
  #config: LdConfig | undefined;
  /** Of #config: virtuals by id (alerts), and whether any has a monitorfile (else a verdict needs no lookup for it). */
  #virtualsById = new Map<string, LdConfig['virtuals'][number]>();
  #anyMonitorfile = false;
  #policy: Policy | undefined;
  #logger: Logger | undefined;
  #loop: CheckLoop | undefined;
  #control: ControlServer | undefined;
  #healTimer: TimerHandle | undefined;
  #nextHeal = 0;
  #dirty = false;
  /** The next reconcile reads the table instead of trusting #confirmed (heal pass, after a failure). */
  #readNext = false;
  /**
   * The table as the backend confirmed it: read, or read and then changed by batches it accepted.
   * Reconciles between heal passes diff against it instead of reading the backend each time, and
   * only for the entries the policy changed since the last batch (Policy.takeChanges).
   */
  #confirmed: StoredTable | undefined;
  #reconciling: Promise<void> | undefined;
  #commands: Promise<void> = Promise.resolve();
  #reloadChain: Promise<unknown> = Promise.resolve();
  #stopping: Promise<void> | undefined;
  #stoppedResolve!: () => void;
  readonly stopped: Promise<void>;
  #lastApplyError: string | undefined;
  #lastReload: { ok: boolean; problems: string[] } | undefined;
  #fileSeen: { mtimeMs: number; size: number; digest: string } | undefined;
  /** When the last alert about a real being down went out (emailalertfreq). */
  #downAlertAt = new Map<string, number>();
  #healing: Promise<void> | undefined;
  /** Checks completed since start, by result; folded into the metrics when they are rendered (a labelled inc per verdict costs more than the rest of the verdict's handling). */
  #checksUp = 0;
  #checksDown = 0;
  #checksCounted = { up: 0, down: 0 };
  /** Decisions taken since the last renderMetrics, by kind; folded in there, as the checks are. */
  #decisionCounts = new Map<Decision['kind'], number>();

  constructor(opts: DaemonOptions) {
    this.opts = opts;
    this.clock = opts.clock ?? realClock;
    this.backend = opts.backend;
    this.#runner = opts.runner;
    this.stopped = new Promise((resolve) => (this.#stoppedResolve = resolve));
  }

  get state(): DaemonState {
    return this.#state;
  }
  get config(): LdConfig | undefined {
    return this.#config;
  }
  get policy(): Policy | undefined {
    return this.#policy;
  }
  get logger(): Logger {
    return this.#logger!;
  }

  #setConfig(config: LdConfig): void {
    this.#config = config;
    this.#virtualsById = new Map(config.virtuals.map((v) => [v.id, v]));
    this.#anyMonitorfile = config.virtuals.some((v) => v.monitorfile);
  }

  #log(level: 'info' | 'warn' | 'error' | 'debug', msg: string): void {
    this.#logger?.[level](msg);
  }

  /** Loads the config (a ConfigError propagates: nothing was started), sets up the table and starts checking. */
  async start(): Promise<void> {
    if (this.#state !== 'new') throw new TandemError('E_LD_START_FAILED', `cannot start a daemon that is ${this.#state}`);
    this.#state = 'starting';
    this.#runner ??= (await import('@tandem/core/run')).runCommand;
    let config: LdConfig;
    try {
      config = await loadConfig(this.opts.configFile, this.opts.parseEnv);
    } catch (err) {
      this.#state = 'stopped';
      this.#stoppedResolve();
      throw err;
    }
    this.#setConfig(config);
    this.#logger = this.opts.logger ?? this.opts.loggerFor?.(config) ?? silentLogger();
    for (const p of config.problems) this.#log('warn', formatProblem(p));
    if (this.opts.pidFile) {
      try {
        claimPidFile(this.opts.pidFile);
      } catch (err) {
        this.#state = 'stopped';
        this.#stoppedResolve();
        throw err;
      }
    }
    this.#log('info', `Starting Linux Director (tandem) with pid: ${process.pid}, config ${this.opts.configFile}, backend ${this.backend.name}`);
    try {
      // The checks are known before the table is set up, and given to the loop now (nothing runs
      // before start()): with thousands of reals the scheduler starts its first-pass worker
      // thread here, and it boots while the table is read and set up.
      this.#loop = await this.#makeLoop();
      this.#loop.update(this.#checks(config));
      if (this.opts.controlSocket) this.#control = await startControlServer(this.opts.controlSocket, (req) => this.#handle(req));
      const actual = await this.#read();
      const policy = new Policy(config, undefined);
      const decisions = policy.start(actual);
      this.#policy = policy;
      await this.#applyDesired(actual, policy, (k) => policy.owns(k));
      this.#emit(decisions);
      await this.#rememberFile();
      this.#loop.start();
    } catch (err) {
      this.#log('error', `start failed: ${(err as Error).message}`);
      await this.#loop?.stop();
      this.#loop = undefined;
      await this.#teardown();
      throw err;
    }
    this.#state = 'running';
    this.#armHeal(true);
  }

  async #makeLoop(): Promise<CheckLoop> {
    const onVerdict = (id: string, v: Verdict) => this.#onVerdict(id, v);
    const check = this.opts.checker ?? (await import('./checks/index.ts')).runCheck;
    if (this.opts.checkLoop) return this.opts.checkLoop({ onVerdict, check, clock: this.clock });
    const { CheckScheduler } = await import('./checks/scheduler.ts');
    return new CheckScheduler({ onVerdict, check, clock: this.clock, onError: (err) => this.#log('error', `verdict handling failed: ${(err as Error).message}`) });
  }

  #checks(config: LdConfig) {
    return config.virtuals.flatMap((v) => v.reals.map((r) => ({ id: r.id, spec: r.check, intervalMs: v.checkIntervalMs })));
  }

  #onVerdict(id: string, v: Verdict): void {
    const policy = this.#policy;
    if (!policy || this.#state === 'stopping' || this.#state === 'stopped') return;
    if (v.up) this.#checksUp++;
    else this.#checksDown++;
    if (this.#anyMonitorfile) {
      const monitorfile = policy.real(id)?.virtual.monitorfile;
      if (monitorfile) this.#monitor(monitorfile, id, v);
    }
    const decisions = policy.verdict(id, v, this.clock.now());
    if (decisions.length > 0) this.#emit(decisions);
  }

  #monitor(file: string, id: string, v: Verdict): void {
    const when = this.opts.wallClock?.() ?? new Date().toString();
    const msg = v.reason.replace(/[|\n%]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
    appendFile(file, `[${when}] [${process.pid}] ${id.replace(/:/g, ' ')} [${v.up ? 'up' : 'down'}] ${msg}\n`).catch((err) => this.#log('warn', `monitorfile ${file}: ${(err as Error).message}`));
  }

  /** Logs decisions, queues fallback commands and asks for a reconcile when the table must change. */
  #emit(decisions: Decision[]): void {
    let tableChange = false;
    for (const d of decisions) {
      this.#log(d.kind === 'soft-failure' ? 'warn' : 'info', d.message);
      this.#decisionCounts.set(d.kind, (this.#decisionCounts.get(d.kind) ?? 0) + 1);
      this.opts.onDecision?.(d);
      if (TABLE_KINDS.has(d.kind)) tableChange = true;
      if (d.kind === 'fallbackcommand' && d.command) this.#queueShell(d.command);
      if (d.alert) this.#alert(d);
    }
    if (tableChange && this.#state === 'running') this.#requestReconcile();
  }

  /** E-mail alert for a decision, if its virtual has emailalert and the daemon is in an alerting state. */
  #alert(d: Decision, subject = d.message): void {
    const v = d.virtualId === undefined ? undefined : this.#virtualsById.get(d.virtualId);
    if (!v || v.emailAlert.length === 0) return;
    const state = this.#state === 'new' ? 'starting' : this.#state === 'stopped' ? 'stopping' : this.#state;
    if (!(v.emailAlertStatus as string[]).includes(state)) return;
    if (d.realId) {
      const down = ['real-quiesced', 'real-deleted', 'real-readded-quiescent'].includes(d.kind);
      if (down) this.#downAlertAt.set(d.realId, this.clock.now());
      else this.#downAlertAt.delete(d.realId);
    }
    const lines = [subject, '', `ldirectord (tandem) config ${this.opts.configFile}, virtual service ${v.label}`];
    if (v.servicename) lines.push(`service: ${v.servicename}`);
    if (v.comment) lines.push(`comment: ${v.comment}`);
    const mail: Mail = { to: v.emailAlert, from: this.#config!.global.emailAlertFrom, subject, body: lines.join('\n') };
    const send = this.opts.mailer ?? ((m: Mail, smtp: string | undefined) => sendMail(m, { smtp, runner: this.#runner! }));
    this.#commands = this.#commands.then(async () => {
      try {
        await send(mail, v.smtp);
        this.metrics.inc('ldirectord_alerts_total', 'E-mail alerts sent, by result', { result: 'sent' });
      } catch (err) {
        this.metrics.inc('ldirectord_alerts_total', 'E-mail alerts sent, by result', { result: 'failed' });
        this.#log('warn', `e-mail alert "${subject}" to ${v.emailAlert.join(', ')} failed: ${(err as Error).message} [E_LD_MAIL]`);
      }
    });
  }

  /** emailalertfreq: while a real stays down, say so again every N seconds. */
  #repeatAlerts(): void {
    const policy = this.#policy;
    if (!policy) return;
    const now = this.clock.now();
    for (const [id, at] of this.#downAlertAt) {
      const e = policy.real(id);
      if (!e || e.state.up) {
        this.#downAlertAt.delete(id);
        continue;
      }
      const freq = e.virtual.emailAlertFreqS * 1000;
      if (freq > 0 && now - at >= freq) {
        this.#alert({ kind: 'real-deleted', virtualId: e.virtual.id, realId: id, message: '' }, `Inaccessible real server: ${e.real.address}:${e.real.port} (${e.virtual.label})`);
      }
    }
  }

  #queueShell(command: string): void {
    this.#commands = this.#commands.then(async () => {
      // Wait for the table change the command follows, as ldirectord runs it after ipvsadm.
      await this.#reconciling;
      const r = await this.#runner!('/bin/sh', ['-c', command], { timeoutMs: 60_000 });
      if (!r.ok) this.#log('warn', `fallbackcommand failed: ${r.spawnError ?? (r.timedOut ? 'timed out' : `exit ${r.exitCode}`)}: ${command}`);
    });
  }

  #requestReconcile(): void {
    this.#dirty = true;
    if (!this.#reconciling) this.#reconciling = this.#reconcileLoop();
  }

  async #reconcileLoop(): Promise<void> {
    try {
      // Let the verdicts of this turn of the event loop land first: one diff for all of them.
      await new Promise<void>((resolve) => setImmediate(resolve));
      for (let i = 0; this.#dirty && i < 1000; i++) {
        this.#dirty = false;
        const policy = this.#policy;
        if (!policy) break;
        try {
          const confirmed = this.#readNext ? undefined : this.#confirmed;
          this.#readNext = false;
          // A refused batch drops the cache (#applyBatch): the next pass starts from a fresh read.
          if (confirmed) await this.#applyChanges(confirmed, policy);
          else await this.#applyDesired(await this.#read(), policy, (k) => policy.owns(k));
        } catch (err) {
          this.#confirmed = undefined;
          this.#log('error', `reconcile failed: ${(err as Error).message}`);
        }
      }
    } finally {
      this.#reconciling = undefined;
    }
  }

  async #read(): Promise<IpvsTable> {
    try {
      return await this.backend.read();
    } catch (err) {
      this.metrics.inc('ldirectord_backend_errors_total', 'Backend reads or writes that failed', { op: 'read' });
      throw new TandemError('E_LD_BACKEND', `cannot read the IPVS table (${this.backend.name}): ${(err as Error).message}`, { cause: err });
    }
  }

  /**
   * One batch: everything the policy wants that the table lacks. A failing batch is logged with its
   * operations and the error, and the next pass tries again from the table as it really is (the
   * policy state does not pretend the change happened).
   */
  async #applyDesired(actual: IpvsTable, policy: Policy, owns: (k: ServiceKey) => boolean): Promise<boolean> {
    // The whole desired table is diffed: the changes recorded so far are in it.
    policy.dropChanges();
    const desired = policy.desired(actual);
    const ops = diffTables(actual, desired, owns);
    if (ops.length === 0) {
      this.#confirmed = new StoredTable(actual);
      return true;
    }
    return this.#applyBatch(ops, policy, () => new StoredTable(afterApply(actual, desired, owns)));
  }

  /**
   * Between heal passes: only the entries the policy changed since the last batch, diffed against
   * the confirmed table, which the accepted batch then updates in place (O(changes), not O(table)).
   */
  async #applyChanges(confirmed: StoredTable, policy: Policy): Promise<boolean> {
    const ops = confirmed.diffEntries(policy.takeChanges());
    // A service missing or changed: only a whole diff can say what to do.
    if (ops === undefined) return this.#applyDesired(confirmed.table(), policy, (k) => policy.owns(k));
    if (ops.length === 0) return true;
    return this.#applyBatch(ops, policy, () => {
      confirmed.apply(ops);
      return confirmed;
    });
  }

  async #applyBatch(ops: IpvsOp[], policy: Policy, confirmedAfter: () => StoredTable): Promise<boolean> {
    for (const op of ops) this.#log('debug', `ipvs: ${describeOp(op)}`);
    try {
      await this.backend.apply(ops);
      policy.appliedOps(ops);
      this.#confirmed = confirmedAfter();
      this.#lastApplyError = undefined;
      this.metrics.inc('ldirectord_table_ops_total', 'IPVS operations applied', {}, ops.length);
      this.metrics.inc('ldirectord_table_batches_total', 'IPVS batches applied');
      return true;
    } catch (err) {
      this.#confirmed = undefined;
      this.#lastApplyError = (err as Error).message;
      this.metrics.inc('ldirectord_backend_errors_total', 'Backend reads or writes that failed', { op: 'apply' });
      this.#log('error', `applying ${ops.length} IPVS change(s) failed, will retry on the next pass: ${(err as Error).message}; batch: ${ops.map(describeOp).join('; ')}`);
      return false;
    }
  }

  #armHeal(first = false): void {
    const interval = this.#config!.global.checkIntervalMs;
    const now = this.clock.now();
    this.#nextHeal = first ? now + interval : Math.max(this.#nextHeal + interval, now);
    this.#healTimer = this.clock.setTimeout(() => {
      this.#healTimer = undefined;
      this.#healing = this.#heal().finally(() => {
        this.#healing = undefined;
        if (this.#state === 'running' || this.#state === 'reloading') this.#armHeal();
      });
    }, this.#nextHeal - now);
  }

  /** The periodic pass: maintenance files, config file changes, and a reconcile that heals the table. */
  async #heal(): Promise<void> {
    if (this.#state !== 'running') return;
    try {
      await this.#scanMaintenance();
      this.#repeatAlerts();
      await this.#watchFile();
      if (this.#state === 'running') {
        this.#readNext = true;
        this.#requestReconcile();
        await this.#reconciling;
      }
    } catch (err) {
      this.#log('error', `periodic pass failed: ${(err as Error).message}`);
    }
  }

  async #scanMaintenance(): Promise<void> {
    const dir = this.#config?.global.maintenanceDir;
    const policy = this.#policy;
    if (!dir || !policy) return;
    let names: Set<string>;
    try {
      names = new Set(await readdir(dir));
    } catch {
      names = new Set();
    }
    const hosts = systemNameTables().hosts;
    const reverse = new Map<string, string[]>();
    for (const [name, addrs] of hosts) for (const a of addrs) reverse.set(a, [...(reverse.get(a) ?? []), name]);
    const decisions: Decision[] = [];
    for (const id of policy.realIds()) {
      const { real: r } = policy.real(id)!;
      const hostNames = reverse.get(r.address) ?? [];
      const short = hostNames.map((n) => n.split('.')[0]!);
      const candidates = [r.address, ...hostNames, ...short].flatMap((n) => [`${n}:${r.port}`, n]);
      if (r.address.includes(':')) candidates.push(`[${r.address}]:${r.port}`);
      const on = candidates.some((c) => names.has(c));
      decisions.push(...policy.maintenance(id, on, this.clock.now()));
    }
    this.#emit(decisions);
  }

  async #rememberFile(hashFile = false): Promise<void> {
    try {
      const st = await stat(this.opts.configFile);
      const digest = hashFile ? createHash('sha256').update(await readFile(this.opts.configFile)).digest('hex') : this.#config!.digest;
      this.#fileSeen = { mtimeMs: st.mtimeMs, size: st.size, digest };
    } catch {
      this.#fileSeen = undefined;
    }
  }

  /** As ldirectord: stat each pass, hash on a change of mtime; new content runs callback and, with autoreload=yes, reloads. */
  async #watchFile(): Promise<void> {
    const seen = this.#fileSeen;
    if (!seen) return this.#rememberFile();
    let st;
    try {
      st = await stat(this.opts.configFile);
    } catch {
      return;
    }
    if (st.mtimeMs === seen.mtimeMs && st.size === seen.size) return;
    const content = await readFile(this.opts.configFile);
    const digest = createHash('sha256').update(content).digest('hex');
    this.#fileSeen = { mtimeMs: st.mtimeMs, size: st.size, digest };
    if (digest === seen.digest) return;
    const g = this.#config!.global;
    if (g.callback) {
      const cb = g.callback;
      this.#commands = this.#commands.then(async () => {
        const r = await this.#runner!(cb, [this.opts.configFile], { timeoutMs: 60_000 });
        this.#log(r.ok ? 'info' : 'warn', `callback ${cb} ${this.opts.configFile}: ${r.ok ? 'ok' : r.spawnError ?? `exit ${r.exitCode}`}`);
      });
    }
    if (g.autoreload) {
      this.#log('info', `Configuration file ${this.opts.configFile} has changed on disk, reloading`);
      await this.reload('autoreload');
    } else {
      this.#log('info', `Configuration file ${this.opts.configFile} has changed on disk - ignore new configuration (autoreload=no)`);
    }
  }

  /**
   * Reloads the config file. All or nothing: a file with an error changes nothing (the problems are
   * logged and returned); a valid one replaces the config, the check set and the table in one step.
   */
  reload(trigger = 'signal'): Promise<ReloadResult> {
    const run = this.#reloadChain.then(() => this.#reload(trigger));
    this.#reloadChain = run.catch(() => undefined);
    return run;
  }

  async #reload(trigger: string): Promise<ReloadResult> {
    if (this.#state !== 'running') return { ok: false, problems: [], decisions: [] };
    this.#log('info', `Reloading Linux Director Daemon config on ${trigger}`);
    let config: LdConfig;
    try {
      config = await loadConfig(this.opts.configFile, this.opts.parseEnv);
    } catch (err) {
      const problems = err instanceof ConfigError ? [...err.problems] : [{ severity: 'error' as const, code: (err as TandemError).code ?? 'E_CONF_READ', message: (err as Error).message }];
      this.#lastReload = { ok: false, problems: problems.map(formatProblem) };
      this.metrics.inc('ldirectord_reloads_total', 'Reloads, by result', { result: 'rejected' });
      this.#log('error', `reload rejected, the running configuration stays in force [E_LD_RELOAD_REJECTED]: ${problems.filter((p) => p.severity === 'error').length} error(s)`);
      for (const p of problems) this.#log(p.severity === 'error' ? 'error' : 'warn', formatProblem(p));
      // The broken content counts as seen, so the next pass does not reject it all over again.
      await this.#rememberFile(true);
      return { ok: false, problems, decisions: [] };
    }
    this.#state = 'reloading';
    try {
      await this.#reconciling;
      const old = this.#policy!;
      const policy = new Policy(config, old);
      const actual = await this.#read();
      const decisions = policy.start(actual, old.config.virtuals.map((v) => v.id));
      const oldIds = new Set(old.config.virtuals.map((v) => v.id));
      this.#setConfig(config);
      this.#policy = policy;
      if (this.opts.loggerFor && !this.opts.logger && config.global.logfile !== old.config.global.logfile) {
        const prev = this.#logger;
        this.#logger = this.opts.loggerFor(config);
        void prev?.close();
      }
      for (const p of config.problems) this.#log('warn', formatProblem(p));
      // Dropped virtuals are removed by this one batch; afterwards only the new config's are owned.
      await this.#applyDesired(actual, policy, (k) => policy.owns(k) || oldIds.has(serviceId(k)));
      this.#emit(decisions);
      this.#loop?.update(this.#checks(config));
      await this.#rememberFile();
      this.#lastReload = { ok: true, problems: config.problems.map(formatProblem) };
      this.metrics.inc('ldirectord_reloads_total', 'Reloads, by result', { result: 'applied' });
      if (this.#healTimer) {
        this.clock.clearTimeout(this.#healTimer);
        this.#healTimer = undefined;
        this.#state = 'running';
        this.#armHeal(true);
      }
      return { ok: true, problems: config.problems, decisions };
    } finally {
      if (this.#state === 'reloading') this.#state = 'running';
    }
  }

  /** Stops checking and, per virtual with cleanstop=yes, removes the virtual service. Safe to call twice. */
  stop(reason = 'stop'): Promise<void> {
    this.#stopping ??= this.#stop(reason);
    return this.#stopping;
  }

  async #stop(reason: string): Promise<void> {
    if (this.#state === 'new' || this.#state === 'stopped') {
      this.#state = 'stopped';
      this.#stoppedResolve();
      return;
    }
    await this.#reloadChain;
    this.#state = 'stopping';
    this.clock.clearTimeout(this.#healTimer);
    this.#healTimer = undefined;
    await this.#loop?.stop();
    await this.#healing;
    await this.#reconciling;
    const policy = this.#policy;
    if (policy) {
      try {
        const actual = await this.#read();
        const { ops, decisions } = policy.stop(actual);
        this.#emit(decisions);
        if (ops.length > 0) await this.backend.apply(ops);
      } catch (err) {
        this.#log('error', `cleanstop failed: ${(err as Error).message}`);
      }
    }
    await this.#commands;
    this.#log('info', `Linux Director Daemon terminated on ${reason}`);
    await this.#teardown();
  }

  async #teardown(): Promise<void> {
    this.clock.clearTimeout(this.#healTimer);
    await this.#control?.close();
    if (this.opts.pidFile) removePidFile(this.opts.pidFile);
    await this.#logger?.close();
    this.#state = 'stopped';
    this.#stoppedResolve();
  }

  status(): DaemonStatus {
    return {
      pid: process.pid,
      state: this.#state,
      configFile: this.opts.configFile,
      backend: this.backend.name,
      checkIntervalMs: this.#config?.global.checkIntervalMs ?? 0,
      virtuals: this.#policy?.status() ?? [],
      checks: this.#loop?.stats?.() as Record<string, number> | undefined,
      lastApplyError: this.#lastApplyError,
      lastReload: this.#lastReload,
    };
  }

  renderMetrics(): string {
    const c = this.#checksCounted;
    this.metrics.inc('ldirectord_checks_total', 'Checks completed, by result', { result: 'up' }, this.#checksUp - c.up);
    this.metrics.inc('ldirectord_checks_total', 'Checks completed, by result', { result: 'down' }, this.#checksDown - c.down);
    this.#checksCounted = { up: this.#checksUp, down: this.#checksDown };
    for (const [kind, n] of this.#decisionCounts) this.metrics.inc('ldirectord_decisions_total', 'Decisions taken, by kind', { kind }, n);
    this.#decisionCounts.clear();
    for (const v of this.#policy?.status() ?? []) {
      this.metrics.set('ldirectord_virtual_reals_up', 'Real servers up per virtual service', v.realsUp, { virtual: v.id });
      this.metrics.set('ldirectord_virtual_fallback_active', '1 while the fallback server is in the table', v.fallbackActive ? 1 : 0, { virtual: v.id });
      for (const r of v.reals) this.metrics.set('ldirectord_real_up', '1 while the real server is up', r.up ? 1 : 0, { virtual: v.id, real: `${r.address}:${r.port}` });
    }
    return this.metrics.render();
  }

  /** Waits until no reconcile is running or wanted (tests). */
  /** Waits until no heal pass, reload, reconcile or command is running or wanted (tests). */
  async settled(): Promise<void> {
    for (let i = 0; i < 100 && (this.#healing || this.#reconciling || this.#dirty); i++) {
      await this.#healing;
      await this.#reloadChain;
      if (this.#dirty && !this.#reconciling && this.#state === 'running') this.#requestReconcile();
      await this.#reconciling;
      if (this.#state !== 'running') break;
    }
    await this.#commands;
  }

  async #handle(req: ControlRequest): Promise<ControlReply> {
    switch (req.cmd) {
      case 'status':
        return { ok: true, status: this.status(), table: await this.backend.read().catch((err: Error) => ({ error: err.message })) };
      case 'metrics':
        return { ok: true, text: this.renderMetrics() };
      case 'reload': {
        const r = await this.reload('control socket');
        return r.ok ? { ok: true, problems: r.problems.map(formatProblem) } : { ok: false, error: r.problems.map(formatProblem).join('\n') || 'daemon is not running', code: 'E_LD_RELOAD_REJECTED' };
      }
      case 'stop':
        setImmediate(() => void this.stop('control socket'));
        return { ok: true };
      default:
        return { ok: false, error: `unknown command ${req.cmd}; try status, metrics, reload, stop`, code: 'E_CONTROL_PROTOCOL' };
    }
  }
}

/**
 * The table after a batch built by diffTables(actual, desired, owns) was accepted: the desired
 * services, and the services of `actual` that were neither desired nor owned (left alone).
 */
function afterApply(actual: IpvsTable, desired: IpvsTable, owns: (k: ServiceKey) => boolean): IpvsTable {
  const ids = new Set(desired.services.map((s) => serviceId(s)));
  return { services: [...desired.services, ...actual.services.filter((s) => !ids.has(serviceId(s)) && !owns(s))] };
}

function silentLogger(): Logger {
  return { error() {}, warn() {}, info() {}, debug() {}, async close() {} };
}
