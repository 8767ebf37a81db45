import type { IpvsdClient } from './client.ts';
import type { ExecResult } from './daemon.ts';
import { renderList, renderRules } from './listing.ts';
import { type NameResolver, numericResolver } from './names.ts';
import { IpvsadmExit, type ParsedCommand, type TableCommand, commandToOp, parseIpvsadmArgs, splitRuleLine, tryHelpText } from './rules.ts';

/**
 * tandem-ipvsadm: ipvsadm 1.31's command line on the embedded balancer's table. Same arguments,
 * same output, same messages and exit codes (0 ok; 2 refused by the parser; 255 refused by the
 * table, or unknown option; 1 listing of an unknown service). The table lives in tandem-ipvsd and
 * is reached through an IpvsdClient.
 */

export const IPVSADM_VERSION = 'ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)';

export interface CliIO {
  out(s: string): void;
  err(s: string): void;
  /** Standard input, read whole (for -R). */
  stdin(): Promise<string>;
}

export interface CliOptions {
  /** The program name in messages (ipvsadm prints its argv[0]). */
  prog: string;
  /** The daemon; a function so that -h and parse errors work without one. */
  client: () => IpvsdClient;
  names?: NameResolver;
  /** Text of "Can't initialize ipvs" when the daemon is not reachable. */
  socketPath?: string;
}

export function usage(prog: string): string {
  const p = prog;
  return `${IPVSADM_VERSION} (tandem-ipvsadm: the embedded balancer's table)
Usage:
  ${p} -A|E virtual-service [-s scheduler] [-p [timeout]] [-M netmask] [-b sched-flags] [-o]
  ${p} -D virtual-service
  ${p} -C
  ${p} -R
  ${p} -S [-n]
  ${p} -a|e virtual-service -r server-address [-g|i|m] [-w weight] [-x upper] [-y lower]
  ${p} -d virtual-service -r server-address
  ${p} -L|l [virtual-service] [-n] [--stats|--rate|--thresholds|--persistent-conn] [--exact] [--nosort] [-c] [--timeout]
  ${p} -Z [virtual-service]
  ${p} --set tcp tcpfin udp
  ${p} -h

Commands:
  --add-service     -A        add virtual service with options
  --edit-service    -E        edit virtual service with options
  --delete-service  -D        delete virtual service
  --clear           -C        clear the whole table
  --restore         -R        restore rules from stdin (one ipvsadm command per line)
  --save            -S        save rules to stdout
  --add-server      -a        add real server with options
  --edit-server     -e        edit real server with options
  --delete-server   -d        delete real server
  --list            -L|-l     list the table
  --zero            -Z        zero counters in a service or all services
  --set tcp tcpfin udp        set connection timeout values
  --help            -h        display this help message
  --version         -v        display the version

virtual-service:
  --tcp-service|-t  service-address   service-address is host[:port]
  --udp-service|-u  service-address   service-address is host[:port]
  --sctp-service    service-address   service-address is host[:port]
  --fwmark-service|-f fwmark          fwmark is an integer greater than zero

Options:
  --ipv6         -6                   fwmark entry uses IPv6
  --scheduler    -s scheduler         one of rr|wrr|lc|wlc|lblc|lblcr|dh|sh|sed|nq|fo|ovf|mh (default wlc)
  --persistent   -p [timeout]         persistent service (default 360 s)
  --netmask      -M netmask           persistent granularity mask
  --sched-flags  -b flags             scheduler flags (comma-separated)
  --ops          -o                   one-packet scheduling
  --real-server  -r server-address    server-address is host (and port)
  --gatewaying   -g                   gatewaying (direct routing) (default)
  --ipip         -i                   ipip encapsulation (tunneling)
  --masquerading -m                   masquerading (NAT)
  --weight       -w weight            capacity of real server
  --u-threshold  -x uthreshold        upper threshold of connections
  --l-threshold  -y lthreshold        lower threshold of connections
  --numeric      -n                   numeric output of addresses and ports
  --connection   -c                   output of current connections (header only)
  --timeout                           output of timeout (tcp tcpfin udp)
  --stats                             output of statistics information
  --rate                              output of rate information
  --exact                             expand numbers (display exact values)
  --thresholds                        output of thresholds information
  --persistent-conn                   output of persistent connection info
  --nosort                            disable sorting output of service/server entries
  --sort                              does nothing, for backwards compatibility
`;
}

const NOT_SUPPORTED = 255;

class Stop extends Error {
  readonly code: number;
  constructor(code: number) {
    super(`exit ${code}`);
    this.code = code;
  }
}

export async function runIpvsadm(argv: readonly string[], io: CliIO, o: CliOptions): Promise<number> {
  const names = o.names ?? numericResolver;
  let client: IpvsdClient | undefined;
  const daemon = (): IpvsdClient => (client ??= o.client());
  /** A daemon call; an unreachable daemon is reported as ipvsadm reports a missing kernel module. */
  const call = async <T>(fn: (c: IpvsdClient) => Promise<T>): Promise<T> => {
    try {
      return await fn(daemon());
    } catch (err) {
      const e = err as Error & { code?: string };
      if (e.code === 'E_IPVS_DAEMON') {
        io.err(`Can't initialize ipvs: ${e.message}\nAre you sure that tandem-ipvsd (the embedded IP Virtual Server) is running?\n`);
        throw new Stop(2);
      }
      throw err;
    }
  };

  const refuse = (e: IpvsadmExit): number => {
    io.err((e.tryHelp ? tryHelpText(o.prog) : e.message) + '\n');
    return e.exitCode;
  };

  /** Runs one parsed non-restore command; returns its exit code. */
  const runOne = async (c: ParsedCommand): Promise<number> => {
    switch (c.cmd) {
      case 'help':
        io.out(usage(o.prog));
        return 0;
      case 'version':
        io.out(`${IPVSADM_VERSION}\n`);
        return 0;
      case 'start-daemon':
      case 'stop-daemon':
        io.err(`${o.prog}: the connection synchronisation daemon is not supported by the embedded balancer\n`);
        return NOT_SUPPORTED;
      case 'list':
        return list(c);
      case 'save': {
        const { table } = await call((d) => d.list());
        io.out(renderRules(table, { numeric: c.list.numeric, names }));
        return 0;
      }
      default: {
        if (c.pe !== undefined) {
          // The kernel's answer for a persistence engine it does not have; the embedded balancer has none.
          io.err('Scheduler or persistence engine not found\n');
          return 255;
        }
        if (c.tunType !== undefined && c.tunType !== 'ipip') {
          io.err(`${o.prog}: tunnel type ${c.tunType} is not supported by the embedded balancer\n`);
          return NOT_SUPPORTED;
        }
        const op = commandToOp(c)!;
        const r = await call((d) => d.exec([op], 'sequential'));
        return report(r)[0] ?? 0;
      }
    }
  };

  /** Prints the refusals of a batch in order; returns each command's exit code. */
  const report = (r: ExecResult): number[] =>
    r.results.map((x) => {
      if (x.ok) return 0;
      io.err(`${x.message}\n`);
      return 255;
    });

  const list = async (c: ParsedCommand): Promise<number> => {
    if (c.list.tunInfo) {
      io.err(`${o.prog}: --tun-info is not supported by tandem-ipvsadm\n`);
      return 2;
    }
    const { table, stats, timeouts, persistConns } = await call((d) => d.list());
    if (c.list.timeout) {
      io.out(`Timeout (tcp tcpfin udp): ${timeouts[0]} ${timeouts[1]} ${timeouts[2]}\n`);
      return 0;
    }
    if (c.list.daemon) return 0;
    if (c.list.connection) {
      io.out('IPVS connection entries\npro expire state       source             virtual            destination\n');
      return 0;
    }
    const text = renderList(
      table,
      {
        numeric: c.list.numeric,
        stats: c.list.stats,
        rate: c.list.rate,
        thresholds: c.list.thresholds,
        persistentConn: c.list.persistentConn,
        exact: c.list.exact,
        nosort: c.list.nosort,
        only: c.service,
        names,
      },
      { stats, persistConns },
    );
    if (text === undefined) {
      io.err('No such service\n');
      return 1;
    }
    io.out(text);
    return 0;
  };

  const restore = async (): Promise<number> => {
    const input = await io.stdin();
    let rc = 0;
    let pending: TableCommand[] = [];
    const flush = async () => {
      if (pending.length === 0) return;
      const batch = pending;
      pending = [];
      const codes = report(await call((d) => d.exec(batch, 'sequential')));
      rc = codes[codes.length - 1] ?? rc;
    };
    for (const line of input.split('\n')) {
      const words = splitRuleLine(line);
      if (words.length === 0) continue;
      let c: ParsedCommand;
      try {
        c = parseIpvsadmArgs(words, { names, readingStdin: true });
      } catch (err) {
        if (!(err instanceof IpvsadmExit)) throw err;
        await flush();
        return refuse(err);
      }
      const op = c.pe === undefined && (c.tunType ?? 'ipip') === 'ipip' ? commandToOp(c) : undefined;
      if (op) {
        pending.push(op);
        continue;
      }
      await flush();
      rc = await runOne(c);
      // ipvsadm stops at a listing that fails (it exits from inside the listing).
      if (c.cmd === 'list' && rc !== 0) return rc;
    }
    await flush();
    return rc;
  };

  try {
    let c: ParsedCommand;
    try {
      c = parseIpvsadmArgs(argv, { names });
    } catch (err) {
      if (err instanceof IpvsadmExit) return refuse(err);
      throw err;
    }
    if (c.cmd === 'restore') return await restore();
    return await runOne(c);
  } catch (err) {
    if (err instanceof Stop) return err.code;
    throw err;
  }
}
