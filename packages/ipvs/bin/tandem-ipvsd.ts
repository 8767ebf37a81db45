#!/usr/bin/env node
// The embedded balancer's daemon: holds the IPVS table, forwards, answers tandem-ipvsadm. See packages/ipvs/README.md.
import { isIP } from 'node:net';
import { setPriority } from 'node:os';
import { parseArgs } from 'node:util';
import { createLogger, formatProblem, ConfigError, TandemError } from '@tandem/core';
import { IpvsDaemon, DEFAULT_STATE_FILE, nullDataplane, resolveGroup, socketPath } from '../src/daemon.ts';

const HELP = `Usage: tandem-ipvsd [options]
  --socket PATH     control socket (default $TANDEM_IPVSD_SOCKET or /run/tandem/ipvsd.sock)
  --group G         let group G use the socket too (mode 0660; default 0600, root only)
  --state FILE      where the table is kept across restarts (default ${DEFAULT_STATE_FILE})
  --no-state        keep the table in memory only
  --restore FILE    load an ipvsadm-save file at start (replaces the saved table)
  --dataplane none  hold the table without forwarding (tests, or a kernel data plane elsewhere)
  --source ADDR     connect to IPv4 real servers from ADDR (like HAProxy's "source"; default: by route)
  --source6 ADDR    the same for IPv6 real servers
  --nice=N          scheduling priority of the forwarding thread (default -5; 0 leaves it alone)
  --engine E        TCP forwarding engine: raw (libuv handles), net (net.Socket) or auto (default:
                    raw when this Node offers its bindings)
  --logfile FILE    log to FILE (default: stderr)
  --logfacility F   log to syslog facility F
  --debug           log debug lines too
`;

let args;
try {
  args = parseArgs({
    options: {
      socket: { type: 'string' },
      group: { type: 'string' },
      state: { type: 'string' },
      'no-state': { type: 'boolean' },
      restore: { type: 'string' },
      dataplane: { type: 'string' },
      source: { type: 'string' },
      source6: { type: 'string' },
      engine: { type: 'string' },
      nice: { type: 'string' },
      'warm-cache': { type: 'boolean' },
      logfile: { type: 'string' },
      logfacility: { type: 'string' },
      debug: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  }).values;
} catch (err) {
  process.stderr.write(`tandem-ipvsd: ${(err as Error).message}\n${HELP}`);
  process.exit(2);
}
if (args.engine !== undefined && !['auto', 'raw', 'net'].includes(args.engine)) {
  process.stderr.write(`tandem-ipvsd: unknown --engine ${args.engine} (auto, raw or net)\n`);
  process.exit(2);
}
/*
 * The forwarding thread runs ahead of the director's other processes, as kernel IPVS forwards in
 * softirq context ahead of every process and heartbeat runs realtime. Measured here with the
 * backends on the balancer's core (npm run bench -- dataplane): at nice 0 the balancer is
 * preempted by the very wake-ups its writes cause, about 0.35 times per request, and answers
 * 11% fewer keep-alive and 13% fewer `Connection: close` requests than at -5; at -10 it starts
 * preempting the backends in turn and keep-alive falls by half. HAProxy, measured the same way,
 * gains nothing from -5. On Linux this sets the calling (main, event-loop) thread only.
 */
const DEFAULT_NICE = -5;
const nice = args.nice === undefined ? DEFAULT_NICE : Number(args.nice);
if (!Number.isInteger(nice) || nice < -20 || nice > 19) {
  process.stderr.write(`tandem-ipvsd: --nice ${args.nice} is not a nice value (an integer from -20 to 19)\n`);
  process.exit(2);
}
for (const [opt, family] of [['source', 4], ['source6', 6]] as const) {
  const a = args[opt];
  if (a !== undefined && isIP(a) !== family) {
    process.stderr.write(`tandem-ipvsd: --${opt} ${a} is not an IPv${family} address\n`);
    process.exit(2);
  }
}
if (args['warm-cache']) {
  // For the launcher: load (and so compile into NODE_COMPILE_CACHE) every module the daemon
  // needs, then leave. The data plane is imported lazily by the daemon, so it is named here.
  await import('../src/dataplane/index.ts');
  process.exit(0);
}
if (args.help) {
  process.stdout.write(HELP);
  process.exit(0);
}
if (args.dataplane !== undefined && args.dataplane !== 'none' && args.dataplane !== 'embedded') {
  process.stderr.write(`tandem-ipvsd: unknown --dataplane ${args.dataplane} (none or embedded)\n`);
  process.exit(2);
}

const logger = createLogger({ ident: 'tandem-ipvsd', logfile: args.logfile, logfacility: args.logfacility, console: !args.logfile && !args.logfacility, level: args.debug ? 'debug' : 'info' });
const path = socketPath(args.socket);
try {
  const daemon = await IpvsDaemon.create({
    stateFile: args['no-state'] ? undefined : (args.state ?? DEFAULT_STATE_FILE),
    dataplane: args.dataplane === 'none' ? nullDataplane() : undefined,
    sourceAddress: args.source,
    sourceAddress6: args.source6,
    engine: args.engine as 'auto' | 'raw' | 'net' | undefined,
    logger,
  });
  if (args.restore) {
    await daemon.restoreFile(args.restore);
    logger.info(`restored ${daemon.table.services.length} virtual service(s) from ${args.restore}`);
  }
  const server = await daemon.listen(path, args.group === undefined ? undefined : resolveGroup(args.group));
  if (nice !== 0) {
    try {
      setPriority(nice);
      logger.info(`forwarding at nice ${nice}`);
    } catch (err) {
      logger.warn(`cannot set nice ${nice} (${(err as Error).message}); forwarding at the inherited priority (root or CAP_SYS_NICE needed; --nice 0 to not try)`);
    }
  }
  logger.info(`listening on ${path} (pid ${process.pid}${daemon.engine ? `, ${daemon.engine} TCP engine` : ''})`);
  let stopping = false;
  const stop = async (sig: string) => {
    if (stopping) return;
    stopping = true;
    logger.info(`${sig}: stopping`);
    await server.close();
    await daemon.close();
    await logger.close();
    process.exit(0);
  };
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(sig, () => void stop(sig));
} catch (err) {
  const msg = err instanceof ConfigError ? err.report() : err instanceof TandemError ? formatProblem({ severity: 'error', code: err.code, message: err.message, hint: err.hint }) : String((err as Error).stack ?? err);
  process.stderr.write(`tandem-ipvsd: ${msg}\n`);
  await logger.close();
  process.exit(1);
}
