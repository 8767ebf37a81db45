/**
 * The `heartbeat` command: the real daemon's flags (`-d -D -k -M -r -s -l -v -V -W -f`) plus the
 * commands `start|stop|status|reload|configtest` and `--config-dir DIR` (default /etc/ha.d).
 *
 * `heartbeat` / `heartbeat start` checks the configuration, then starts the daemon detached (a new
 * Node process with tuned V8 flags, see V8_FLAGS) and waits until it answers on its control socket.
 * `-f` runs it in the foreground. `-k` / `stop` sends SIGTERM to the pid in the pid file and waits
 * until the process has gone (the daemon releases its resources and tells its peers first).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import {
  createLogger, claimPidFile, removePidFile, readPidFile, controlRequest, formatProblem,
  type Logger,
} from '@tandem/core';
import { HeartbeatDaemon, DEFAULT_CONTROL_SOCKET, DEFAULT_STATE_DIR, TANDEM_HEARTBEAT_VERSION, type ResourceManagerPlugin, type ReloadResult } from '../daemon.ts';
import { fetchStatus, heartbeatStatusLine } from '../control.ts';
import { loadConfig, configtest, DEFAULT_CONFIG_DIR, type LoadedConfig } from './config.ts';
import { buildMedia, loadResourceManager } from './plugins.ts';

export const DEFAULT_PID_FILE = '/var/run/heartbeat/tandem.pid';

/**
 * V8 flags of the daemon process. A small young generation keeps every scavenge short (its pause
 * grows with what survives, and a heartbeat daemon keeps almost nothing); the old space is capped so
 * a leak ends in a crash that a supervisor sees, not in a swapping machine that misses keepalives.
 */
export const V8_FLAGS = ['--max-semi-space-size=4', '--max-old-space-size=128'];

export interface HeartbeatArgs {
  command: 'start' | 'stop' | 'status' | 'reload' | 'configtest' | 'version' | 'defaults' | 'help';
  foreground: boolean;
  debug: number;
  verbose: boolean;
  noResources: boolean;
  noRealtime: boolean;
  configDir: string;
  socket: string;
  pidFile: string;
  stateDir: string;
}

export const USAGE = `usage: heartbeat [-dDkMrRsvWlVf] [--config-dir DIR] [--socket PATH] [--pid-file PATH] [--state-dir DIR]
                 [start|stop|status|reload|configtest]
  -d  debug level +1        -k  stop the running daemon     -r  reload the configuration
  -s  status                -f  run in the foreground       -M  do not manage resources
  -l  no realtime priority  -v  verbose                     -V  version      -D  print defaults
`;

export function parseArgs(argv: readonly string[]): HeartbeatArgs | { error: string } {
  const a: HeartbeatArgs = {
    command: 'start', foreground: false, debug: 0, verbose: false, noResources: false, noRealtime: false,
    configDir: DEFAULT_CONFIG_DIR, socket: process.env.TANDEM_HB_SOCKET || DEFAULT_CONTROL_SOCKET,
    pidFile: DEFAULT_PID_FILE, stateDir: DEFAULT_STATE_DIR,
  };
  for (let i = 0; i < argv.length; i++) {
    const x = argv[i]!;
    const value = (name: string): string | undefined => {
      const eq = x.indexOf('=');
      if (eq > 0) return x.slice(eq + 1);
      const v = argv[++i];
      if (v === undefined) throw new Error(`${name} needs a value`);
      return v;
    };
    try {
      if (x.startsWith('--config-dir')) a.configDir = value('--config-dir')!;
      else if (x.startsWith('--socket')) a.socket = value('--socket')!;
      else if (x.startsWith('--pid-file')) a.pidFile = value('--pid-file')!;
      else if (x.startsWith('--state-dir')) a.stateDir = value('--state-dir')!;
      else if (x === '--help' || x === '-h') a.command = 'help';
      else if (['start', 'stop', 'status', 'reload', 'configtest'].includes(x)) a.command = x as HeartbeatArgs['command'];
      else if (/^-[dDkMrRsvWlVfC]+$/.test(x)) {
        for (const f of x.slice(1)) {
          switch (f) {
            case 'd': a.debug++; break;
            case 'D': case 'W': a.command = 'defaults'; break;
            case 'k': a.command = 'stop'; break;
            case 'M': a.noResources = true; break;
            case 'r': a.command = 'reload'; break;
            case 's': a.command = 'status'; break;
            case 'v': a.verbose = true; break;
            case 'V': a.command = 'version'; break;
            case 'l': a.noRealtime = true; break;
            case 'f': a.foreground = true; break;
            case 'R': case 'C':
              return { error: '-R/-C (internal restart) are not supported: tandem reloads in place (heartbeat -r)' };
          }
        }
      } else return { error: `unknown argument ${x}` };
    } catch (err) {
      return { error: (err as Error).message };
    }
  }
  return a;
}

interface Out {
  out(s: string): void;
  err(s: string): void;
}

const stdio: Out = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) };

/** A pid is gone when /proc has no entry or it is a zombie waiting for a lazy reaper. */
export function processGone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return /^\d+ \(.*\) Z/.test(stat);
  } catch {
    return true;
  }
}

async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, stepMs = 50): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  return cond();
}

function printProblems(cfg: LoadedConfig, io: Out): void {
  for (const p of cfg.problems) io.err(formatProblem(p) + '\n');
}

export async function main(argv: readonly string[], io: Out = stdio): Promise<number> {
  const a = parseArgs(argv);
  if ('error' in a) {
    io.err(`heartbeat: ${a.error}\n${USAGE}`);
    return 1;
  }
  switch (a.command) {
    case 'help':
      io.out(USAGE);
      return 0;
    case 'version':
      io.out(`${TANDEM_HEARTBEAT_VERSION} (node: tandem)\n`);
      return 0;
    case 'defaults':
      io.out('keepalive 1\ndeadtime 30\nwarntime deadtime/2\ninitdead deadtime if > 10s; 12s if < 6s; else 2*deadtime\nudpport 694\nbaud 19200\nhopfudge 1\nauto_failback legacy\nmsgfmt classic\nrealtime true\n');
      return 0;
    case 'configtest': {
      const r = await configtest(a.configDir);
      io.out(r.stdout);
      return r.code;
    }
    case 'status': {
      const r = heartbeatStatusLine(await fetchStatus(a.socket));
      io.out(r.stdout);
      io.err(r.stderr);
      return r.code;
    }
    case 'reload': {
      try {
        const r = await controlRequest(a.socket, { cmd: 'reload' }, 30_000);
        if (r.ok) {
          io.out(`${String(r.message)}\n`);
          return 0;
        }
        io.err(`heartbeat: reload failed: ${r.error}\n`);
        return 1;
      } catch (err) {
        io.err(`heartbeat: ${(err as Error).message}\n`);
        return 1;
      }
    }
    case 'stop':
      return stop(a, io);
    case 'start':
      return a.foreground ? runForeground(a, io) : startDetached(a, argv, io);
  }
}

async function stop(a: HeartbeatArgs, io: Out): Promise<number> {
  const pid = readPidFile(a.pidFile);
  if (pid === undefined || processGone(pid)) {
    io.err('heartbeat is not running\n');
    return 0;
  }
  try {
    process.kill(pid, 'SIGTERM');
  } catch (err) {
    io.err(`heartbeat: cannot signal pid ${pid}: ${(err as Error).message}\n`);
    return 1;
  }
  // Releasing resources runs their stop scripts: give it time.
  if (await waitFor(() => processGone(pid), 120_000)) return 0;
  io.err(`heartbeat: pid ${pid} did not stop within 120 s\n`);
  return 1;
}

async function startDetached(a: HeartbeatArgs, argv: readonly string[], io: Out): Promise<number> {
  const running = readPidFile(a.pidFile);
  if (running !== undefined && !processGone(running)) {
    io.err(`heartbeat: already running [pid ${running}]\n`);
    return 0;
  }
  // Check first, so that configuration errors reach the terminal instead of only the log.
  const cfg = await loadConfig(a.configDir, { machine: 'error', haresources: !a.noResources });
  if (!cfg.daemon) {
    printProblems(cfg, io);
    io.err('Heartbeat not started: configuration error.\n');
    return 6;
  }
  const self = fileURLToPath(import.meta.url);
  const child = execa(process.execPath, [...V8_FLAGS, self, ...argv.filter((x) => x !== 'start'), '-f'], {
    detached: true, stdio: 'ignore', reject: false, cleanup: false,
  });
  child.catch(() => {});
  let exited: number | undefined;
  void child.then((r) => { exited = r.exitCode ?? 1; });
  const ready = await waitFor(async () => exited !== undefined || (await fetchStatus(a.socket, 500)) !== undefined, 30_000, 100);
  if (!ready || exited !== undefined) {
    io.err(`heartbeat: the daemon did not start${exited !== undefined ? ` (exit ${exited})` : ''}; see ${cfg.haConfig?.logfile ?? 'the log'}\n`);
    return 1;
  }
  return 0;
}

async function runForeground(a: HeartbeatArgs, io: Out): Promise<number> {
  const cfg = await loadConfig(a.configDir, { machine: 'error', haresources: !a.noResources });
  if (!cfg.daemon || !cfg.haConfig) {
    printProblems(cfg, io);
    io.err('Heartbeat not started: configuration error.\n');
    return 6;
  }
  for (const p of cfg.problems) io.err(formatProblem(p) + '\n');
  const hc = cfg.haConfig;
  const noLog = !hc.logfile && !hc.debugfile && !hc.logfacility;
  const logger: Logger = createLogger({
    ident: 'heartbeat', logfile: hc.logfile, debugfile: hc.debugfile,
    // heartbeat falls back to logd when nothing is configured; tandem falls back to syslog (daemon).
    logfacility: noLog ? 'daemon' : hc.logfacility,
    console: a.verbose, level: a.debug + hc.debug > 0 ? 'debug' : 'info',
  });
  if (noLog) logger.info('No log entry found in ha.cf -- logging to syslog facility daemon');
  // A detached daemon has no terminal: a crash must at least reach the log.
  process.on('uncaughtException', (err) => {
    logger.error(`uncaught exception: ${err.stack ?? err.message}`);
    void logger.close().finally(() => process.exit(1));
  });
  try {
    claimPidFile(a.pidFile);
  } catch (err) {
    io.err(`heartbeat: ${(err as Error).message}\n`);
    await logger.close();
    return 0;
  }
  let daemon: HeartbeatDaemon | undefined;
  let code = 0;
  try {
    const media = buildMedia(hc, cfg.daemon.authKeys, logger);
    let rm: ResourceManagerPlugin | undefined;
    if (!a.noResources) rm = await loadResourceManager({ configDir: a.configDir, haConfig: hc, nodeName: cfg.daemon.nodeName, logger });
    const reload = async (): Promise<ReloadResult> => {
      const next = await loadConfig(a.configDir, { machine: 'error' });
      if (!next.daemon || !next.authKeys) {
        return { ok: false, message: `configuration not reloaded, the running one stays: ${next.problems.filter((p) => p.severity === 'error').map(formatProblem).join('; ')}` };
      }
      const d = next.daemon;
      const cur = cfg.daemon!;
      const restartNeeded = JSON.stringify([d.nodes, d.timing, next.haConfig?.media.map((m) => ({ ...m, at: undefined }))])
        !== JSON.stringify([cur.nodes, cur.timing, hc.media.map((m) => ({ ...m, at: undefined }))]);
      return {
        ok: true, authKeys: next.authKeys,
        message: restartNeeded
          ? 'authkeys reloaded; ha.cf changes to nodes, timing or media take effect at the next restart (heartbeat stop; heartbeat start)'
          : 'configuration reloaded (authkeys)',
      };
    };
    daemon = new HeartbeatDaemon({
      config: { ...cfg.daemon, realtime: a.noRealtime ? false : cfg.daemon.realtime },
      media, logger, resourceManager: rm, controlSocket: a.socket, stateDir: a.stateDir, reload, applyScheduling: true,
    });
    const d = daemon;
    const done = new Promise<void>((resolve) => {
      const shutdown = (sig: string) => {
        logger.info(`Received ${sig}: shutting down`);
        void d.stop().then(resolve, resolve);
      };
      process.once('SIGTERM', () => shutdown('SIGTERM'));
      process.once('SIGINT', () => shutdown('SIGINT'));
      process.on('SIGHUP', () => void controlRequest(a.socket, { cmd: 'reload' }).catch(() => {}));
      d.start().catch((err) => {
        io.err(`heartbeat: ${(err as Error).message}\n`);
        code = 1;
        resolve();
      });
      // A `stop` request on the control socket ends the process the same way.
      const timer = setInterval(() => { if (d.state === 'stopped') resolve(); }, 200);
      timer.unref();
    });
    await done;
  } catch (err) {
    io.err(`heartbeat: ${(err as Error).message}\n`);
    logger.error((err as Error).message);
    code = 1;
  } finally {
    await daemon?.stop();
    removePidFile(a.pidFile);
    await logger.close();
  }
  return code;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).then((code) => process.exit(code), (err) => {
    process.stderr.write(`heartbeat: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  });
}
