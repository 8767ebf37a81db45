import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { controlRequest } from '@tandem/core/control';
import { ConfigError, TandemError, formatProblem } from '@tandem/core/errors';
import type { Logger } from '@tandem/core/log';
import { processAlive, readPidFile } from '@tandem/core/pidfile';
import { BACKEND_NAMES, type BackendName } from './backend.ts';
import { loadConfig, type LdConfig } from './config.ts';

/**
 * The `ldirectord` command, as heartbeat and init scripts call it:
 *   ldirectord [-d|--debug] [--] [configfile] start|stop|restart|try-restart|reload|force-reload|status
 * plus `configtest` and tandem's options --backend, --pid-file, --control-socket. Exit codes as
 * ldirectord 4.12 (reference §5): config error 2, config file not found 1, usage 255; status is LSB
 * (0 running, 3 stopped, 1 stale pid file); reload of a stopped daemon 1.
 *
 * Unlike ldirectord, a broken config never touches the running daemon or its pid file: reload
 * prints every problem and exits 2, stop and status work whatever the file says, restart refuses
 * before stopping anything.
 */

export const VERSION = 'Linux Director v1.186-ha (tandem 0.1.0)';
const COMMANDS = ['start', 'stop', 'restart', 'try-restart', 'reload', 'force-reload', 'status', 'configtest'] as const;
type Command = (typeof COMMANDS)[number];

export const USAGE = `Usage:
    ldirectord [-d|--debug] [--] [configfile] start | stop | restart |
    try-restart | reload | force-reload | status | configtest

    ldirectord [-h|-?|--help|-v|--version]

Options:
    configuration: the configuration file, looked up as /etc/ha.d/<name>,
    then /etc/ha.d/conf/<name>, then as a path (default ldirectord.cf)

    -d|--debug Don't start as daemon and log verbosely (to stderr).

    -h|--help Print this help and exit.

    -v|--version Print version and exit.

    --backend ipvsadm|embedded|memory   IPVS backend (default: ipvsadm when
        /sbin/ipvsadm or /usr/sbin/ipvsadm exists, else embedded; env
        TANDEM_LD_BACKEND)
                                        IPVSADM=path picks the ipvsadm command
    --pid-file PATH        (default /var/run/ldirectord.<name>.pid; the
                           directory can be changed with env TANDEM_LD_RUNDIR)
    --control-socket PATH  (default /var/run/ldirectord.<name>.sock)

Commands:
    start         start the daemon for the configuration (foreground with -d
                  or supervised=yes)
    stop          stop it (SIGTERM); cleanstop decides what stays in the table
    restart       stop and start; try-restart only if it is running
    reload        re-read the configuration (SIGHUP); a broken file is
    force-reload  refused and the running configuration stays in force
    status        exit 0 running, 3 stopped, 1 stale pid file
    configtest    report every problem of the configuration; exit 2 on errors
`;

export interface CliIO {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: NodeJS.ProcessEnv;
}

const defaultIO: CliIO = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  env: process.env,
};

interface Args {
  debug: boolean;
  help: boolean;
  version: boolean;
  backend?: string | undefined;
  pidFile?: string | undefined;
  controlSocket?: string | undefined;
  daemonChild: boolean;
  /** --warm-cache: compile the daemon's modules into NODE_COMPILE_CACHE and exit (for bin/ldirectord). */
  warmCache: boolean;
  positional: string[];
  unknown?: string | undefined;
  missingValue?: string | undefined;
}

export function parseArgs(argv: readonly string[]): Args {
  const a: Args = { debug: false, help: false, version: false, daemonChild: false, warmCache: false, positional: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      a.positional.push(...argv.slice(i + 1));
      break;
    }
    const long = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (long) {
      const [, name, inline] = long;
      const value = (): string | undefined => {
        if (inline !== undefined) return inline;
        if (i + 1 < argv.length) return argv[++i];
        a.missingValue = `--${name}`;
        return undefined;
      };
      switch (name) {
        case 'debug': a.debug = true; continue;
        case 'help': a.help = true; continue;
        case 'version': a.version = true; continue;
        case 'backend': a.backend = value(); continue;
        case 'pid-file': a.pidFile = value(); continue;
        case 'control-socket': a.controlSocket = value(); continue;
        case 'daemon-child': a.daemonChild = true; continue;
        case 'warm-cache': a.warmCache = true; continue;
        default: a.unknown ??= name; continue;
      }
    }
    if (/^-[^-]/.test(arg)) {
      for (const ch of arg.slice(1)) {
        if (ch === 'd') a.debug = true;
        else if (ch === 'h' || ch === '?') a.help = true;
        else if (ch === 'v') a.version = true;
        else a.unknown ??= ch;
      }
      continue;
    }
    a.positional.push(arg);
  }
  return a;
}

/** ldirectord's lookup: /etc/ha.d/<cfg>, /etc/ha.d/conf/<cfg>, then the path itself (made absolute). */
export function findConfigFile(name: string, haDir = '/etc/ha.d', cwd = process.cwd()): string | undefined {
  const candidates = [join(haDir, name), join(haDir, 'conf', name), resolve(cwd, name)];
  return candidates.find((p) => existsSync(p));
}

/** A pid file counts only if it names a live process whose command line mentions ldirectord. */
export function daemonPid(pidFile: string): { pid?: number | undefined; stale: boolean } {
  const pid = readPidFile(pidFile);
  if (pid === undefined) return { stale: existsSync(pidFile) };
  if (!processAlive(pid)) return { pid, stale: true };
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (!cmdline.includes('ldirectord')) return { pid, stale: true };
  } catch {
    /* no /proc: trust the pid */
  }
  return { pid, stale: false };
}

/** winston is only loaded by a process that runs the daemon (configtest and status stay quick). */
async function loggerFactory(): Promise<(config: LdConfig, debug: boolean) => Logger> {
  const { createLogger } = await import('@tandem/core/log');
  return (config, debug) => loggerFor(createLogger, config, debug);
}

function loggerFor(createLogger: typeof import('@tandem/core/log').createLogger, config: LdConfig, debug: boolean): Logger {
  const g = config.global;
  if (debug) return createLogger({ ident: 'ldirectord', console: true, level: 'debug' });
  if (g.supervised) return createLogger({ ident: 'ldirectord', console: true, level: 'info' });
  return g.logfile.startsWith('/')
    ? createLogger({ ident: 'ldirectord', logfile: g.logfile })
    : createLogger({ ident: 'ldirectord', logfacility: g.logfile });
}

async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, stepMs = 50): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  for (let i = 0; i < 100_000; i++) {
    if (await cond()) return true;
    if (performance.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  return false;
}

const BIN = fileURLToPath(new URL('../bin/ldirectord.ts', import.meta.url));

export async function main(argv: readonly string[], io: CliIO = defaultIO): Promise<number> {
  const args = parseArgs(argv);
  if (args.version) {
    io.stdout(`${VERSION}\n1999-2006 Jacob Rief, Horms and others (tandem: a TypeScript reimplementation)\n`);
    return 0;
  }
  if (args.help) {
    io.stdout(USAGE);
    return 0;
  }
  if (args.warmCache) {
    const { COMPILE_CACHE_DIR } = await import('./node-flags.ts');
    await warmCompileCache(io.env.NODE_COMPILE_CACHE ?? COMPILE_CACHE_DIR);
    return 0;
  }
  if (args.unknown !== undefined || args.missingValue !== undefined) {
    io.stdout(USAGE);
    io.stderr(args.unknown !== undefined ? `Unknown option: ${args.unknown}\n` : `Option ${args.missingValue} needs a value\n`);
    return 255;
  }
  const pos = args.positional;
  const command = pos.at(-1) as Command | undefined;
  if (pos.length === 0 || pos.length > 2 || !COMMANDS.includes(command!)) {
    io.stdout(USAGE);
    return 255;
  }
  const backendName = (args.backend ?? io.env.TANDEM_LD_BACKEND) as BackendName | undefined;
  if (backendName !== undefined && !BACKEND_NAMES.includes(backendName)) {
    io.stderr(`unknown backend "${backendName}": use ${BACKEND_NAMES.join(', ')} [E_LD_USAGE]\n`);
    return 255;
  }
  const cfgArg = pos.length === 2 ? pos[0]! : 'ldirectord.cf';
  const file = findConfigFile(cfgArg, io.env.TANDEM_HA_D ?? '/etc/ha.d');
  if (!file) {
    io.stderr(`Config file ${cfgArg} not found [E_LD_CONFIG_NOT_FOUND]\n`);
    return 1;
  }
  const name = pos.length === 2 ? basename(file) : 'ldirectord';
  const runDir = io.env.TANDEM_LD_RUNDIR ?? '/var/run';
  const pidFile = args.pidFile ?? join(runDir, `ldirectord.${name}.pid`);
  const controlSocket = args.controlSocket ?? join(runDir, `ldirectord.${name}.sock`);

  // Parse before acting, as ldirectord does; but a broken file only blocks what needs the file.
  let config: LdConfig | undefined;
  let configError: ConfigError | TandemError | undefined;
  try {
    config = await loadConfig(file);
  } catch (err) {
    configError = err as ConfigError;
  }
  const reportConfig = (): void => {
    if (configError instanceof ConfigError) io.stderr(configError.report() + '\n');
    else if (configError) io.stderr(`${configError.message}\n`);
  };
  const running = (): { pid?: number | undefined; stale: boolean } => daemonPid(pidFile);
  const ctx: Ctx = { args, io, file, name, pidFile, controlSocket, backendName };

  let rc: number;
  switch (command!) {
    case 'configtest': {
      if (!config) {
        reportConfig();
        const n = configError instanceof ConfigError ? configError.problems.filter((p) => p.severity === 'error').length : 1;
        io.stderr(`${file}: ${n} error(s); configuration NOT valid\n`);
        return 2;
      }
      for (const p of config.problems) io.stderr(formatProblem(p) + '\n');
      const reals = config.virtuals.reduce((n, v) => n + v.reals.length, 0);
      io.stdout(`${file}: configuration OK: ${config.virtuals.length} virtual service(s), ${reals} real server(s), ${config.problems.length} warning(s)\n`);
      return 0;
    }
    case 'status': {
      if (configError) reportConfig();
      const r = running();
      if (r.pid !== undefined && !r.stale) {
        io.stdout(`ldirectord for ${file} is running with pid: ${r.pid}\n`);
        return 0;
      }
      if (r.stale) {
        io.stderr(`ldirectord stale pid file ${pidFile} for ${file}\n`);
        io.stdout(`ldirectord is stopped for ${file}\n`);
        return 1;
      }
      io.stdout(`ldirectord is stopped for ${file}\n`);
      return configError ? 2 : 3;
    }
    case 'stop':
      rc = await stopDaemon(ctx);
      break;
    case 'reload':
    case 'force-reload': {
      if (!config) {
        reportConfig();
        io.stderr(`reload refused: ${file} has errors; the running daemon keeps its configuration [E_LD_RELOAD_REJECTED]\n`);
        return 2;
      }
      rc = await reloadDaemon(ctx);
      break;
    }
    case 'start':
      if (!config) {
        reportConfig();
        return 2;
      }
      rc = await startDaemon(ctx, config);
      break;
    case 'restart':
    case 'try-restart': {
      if (!config) {
        reportConfig();
        io.stderr(`${command} refused: ${file} has errors; nothing was stopped\n`);
        return 2;
      }
      const r = running();
      if (command === 'try-restart' && (r.pid === undefined || r.stale)) return 0;
      await stopDaemon(ctx);
      rc = await startDaemon(ctx, config);
      break;
    }
  }
  if (config && config.global.execute.length > 0 && ['start', 'stop', 'restart', 'try-restart', 'reload', 'force-reload'].includes(command!)) {
    const { runCommand } = await import('@tandem/core/run');
    // The chain of files already being handled, so that two configs executing each other stop.
    const chain = [...(io.env.TANDEM_LD_EXECUTE_CHAIN ?? '').split('\n').filter(Boolean), file];
    for (const other of config.global.execute) {
      const target = findConfigFile(other, io.env.TANDEM_HA_D ?? '/etc/ha.d');
      if (target && chain.includes(target)) continue;
      const r = await runCommand(process.execPath, [BIN, other, command!], { timeoutMs: 120_000, env: { ...io.env, TANDEM_LD_EXECUTE_CHAIN: chain.join('\n') } });
      if (!r.ok) io.stderr(`execute=${other}: ldirectord ${other} ${command} failed: ${r.spawnError ?? `exit ${r.exitCode}`} ${r.stderr.trim()}\n`);
    }
  }
  return rc!;
}

interface Ctx {
  args: Args;
  io: CliIO;
  file: string;
  name: string;
  pidFile: string;
  controlSocket: string;
  backendName: BackendName | undefined;
}

async function stopDaemon(ctx: Ctx): Promise<number> {
  const r = daemonPid(ctx.pidFile);
  if (r.pid === undefined || r.stale) return 0;
  try {
    process.kill(r.pid, 'SIGTERM');
  } catch {
    return 0;
  }
  const gone = await waitFor(() => !processAlive(r.pid!), 60_000);
  if (!gone) {
    ctx.io.stderr(`ldirectord (pid ${r.pid}) did not stop within 60 s\n`);
    return 1;
  }
  return 0;
}

async function reloadDaemon(ctx: Ctx): Promise<number> {
  const r = daemonPid(ctx.pidFile);
  if (r.pid === undefined || r.stale) {
    ctx.io.stderr(`ldirectord is not running for ${ctx.file} [E_LD_NOT_RUNNING]\n`);
    return 1;
  }
  try {
    const reply = await controlRequest(ctx.controlSocket, { cmd: 'reload' }, 60_000);
    if (reply.ok) return 0;
    ctx.io.stderr(`${reply.error}\n`);
    return 2;
  } catch {
    // No control socket (another path, or an old daemon): SIGHUP, as ldirectord.
    process.kill(r.pid, 'SIGHUP');
    return 0;
  }
}

async function startDaemon(ctx: Ctx, config: LdConfig): Promise<number> {
  const { args, io } = ctx;
  const foreground = args.debug || args.daemonChild || config.global.supervised;
  if (!foreground) {
    const r = daemonPid(ctx.pidFile);
    if (r.pid !== undefined && !r.stale) return 0;
    return spawnBackground(ctx);
  }
  const { createBackend, defaultBackendName } = await import('./backend.ts');
  const { LdDaemon } = await import('./daemon.ts');
  const makeLogger = await loggerFactory();
  let backend;
  try {
    // IPVSADM names an ipvsadm-compatible command (as resource.d/ipvsadm honours it), e.g. tandem-ipvsadm.
    backend = await createBackend(ctx.backendName ?? defaultBackendName(), { ipvsadm: io.env.IPVSADM || undefined });
  } catch (err) {
    io.stderr(`${(err as Error).message}\n`);
    return 1;
  }
  // A foreground run (-d, supervised=yes) has no pid file unless one is asked for, as ldirectord.
  const pidFile = args.daemonChild || args.pidFile ? ctx.pidFile : undefined;
  const daemon = new LdDaemon({
    configFile: ctx.file,
    backend,
    pidFile,
    controlSocket: ctx.controlSocket,
    loggerFor: (c) => makeLogger(c, args.debug),
  });
  try {
    await daemon.start();
  } catch (err) {
    await backend.close?.();
    if (err instanceof ConfigError) {
      io.stderr(err.report() + '\n');
      return 2;
    }
    io.stderr(`${(err as TandemError).code ? `${(err as TandemError).message} [${(err as TandemError).code}]` : (err as Error).message}\n`);
    return 1;
  }
  const onStop = (sig: string) => () => void daemon.stop(`signal: ${sig}`);
  const stopSignals = ['SIGTERM', 'SIGINT', 'SIGQUIT', 'SIGABRT', 'SIGXCPU', 'SIGXFSZ'] as const;
  const handlers = stopSignals.map((s) => [s, onStop(s.slice(3))] as const);
  for (const [s, h] of handlers) process.on(s, h);
  const onHup = (): void => void daemon.reload('signal');
  process.on('SIGHUP', onHup);
  process.on('SIGPIPE', () => {});
  if (args.daemonChild) process.stderr.on('error', () => {});
  await daemon.stopped;
  for (const [s, h] of handlers) process.off(s, h);
  process.off('SIGHUP', onHup);
  await backend.close?.();
  return 0;
}

/**
 * Compiles what the daemon child runs into the compile cache and writes the cache now: Node
 * writes it at exit otherwise, after the child has started, and a child that finds its modules
 * missing loads the TypeScript stripper and keeps its memory (~25 MB) for the daemon's life.
 */
async function warmCompileCache(dir: string): Promise<void> {
  const mod = await import('node:module');
  if (!mod.getCompileCacheDir?.()) mod.enableCompileCache?.(dir);
  if (!mod.getCompileCacheDir?.()) return;
  await Promise.all([import('./daemon.ts'), import('./backend.ts'), import('@tandem/ipvs/backends/index'), import('./checks/index.ts'), import('./checks/scheduler.ts'), import('./checks/negotiate.ts').then((m) => m.loadAllCheckers()), import('./checks/first-pass-worker.ts'), import('@tandem/core/log'), import('@tandem/core/run')]);
  mod.flushCompileCache?.();
}

/** Starts a detached copy of this command in daemon mode and waits until it answers on its control socket. */
async function spawnBackground(ctx: Ctx): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'ldirectord-start-'));
  const errFile = join(dir, 'stderr');
  const { DAEMON_NODE_FLAGS, daemonEnv, COMPILE_CACHE_DIR } = await import('./node-flags.ts');
  await warmCompileCache(ctx.io.env.NODE_COMPILE_CACHE ?? COMPILE_CACHE_DIR);
  const childArgs = [...DAEMON_NODE_FLAGS, BIN, '--daemon-child', '--pid-file', ctx.pidFile, '--control-socket', ctx.controlSocket];
  if (ctx.backendName) childArgs.push('--backend', ctx.backendName);
  childArgs.push(ctx.file, 'start');
  const { execa } = await import('execa');
  try {
    const child = execa(process.execPath, childArgs, {
      detached: true,
      stdin: 'ignore',
      stdout: 'ignore',
      stderr: { file: errFile },
      reject: false,
      cwd: '/',
      cleanup: false,
      env: daemonEnv(ctx.io.env),
    });
    let exited: number | undefined;
    void child.then((r) => (exited = r.exitCode ?? 1));
    const ok = await waitFor(async () => {
      if (exited !== undefined) return true;
      if (readPidFile(ctx.pidFile) !== child.pid) return false;
      return controlRequest(ctx.controlSocket, { cmd: 'ping' }, 1000).then(() => true, () => false);
    }, 60_000);
    if (exited !== undefined || !ok) {
      const text = existsSync(errFile) ? readFileSync(errFile, 'utf8') : '';
      if (text) ctx.io.stderr(text.endsWith('\n') ? text : text + '\n');
      if (!ok && exited === undefined && child.pid) {
        try { process.kill(child.pid, 'SIGTERM'); } catch { /* gone */ }
      }
      ctx.io.stderr(`ldirectord did not start [E_LD_START_FAILED]\n`);
      return exited === 2 ? 2 : 1;
    }
    return 0;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
