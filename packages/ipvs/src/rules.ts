import { isIPv6 } from 'node:net';
import { ProblemSink } from '@tandem/core/errors';
import { canonicalAddress, familyOf } from './addr.ts';
import type { Forwarding, IpvsOp, Persistence, Protocol, RealServer, ServiceKey, VirtualService } from './model.ts';
import { type NameResolver, numericResolver } from './names.ts';

/**
 * ipvsadm's command line as data: the argument parser of ipvsadm 1.31 (both for a command line and
 * for each line of `ipvsadm -R` input and ipvsadm-save files), with its messages and exit codes,
 * and the conversion of a parsed command into table operations. Pure: names are resolved through
 * an injected NameResolver, nothing is read or written.
 */

export type CommandName =
  | 'add-service'
  | 'edit-service'
  | 'delete-service'
  | 'flush'
  | 'restore'
  | 'save'
  | 'add-server'
  | 'edit-server'
  | 'delete-server'
  | 'list'
  | 'zero'
  | 'set'
  | 'start-daemon'
  | 'stop-daemon'
  | 'help'
  | 'version';

/** What ipvsadm prints and the code it exits with when it refuses a command line. */
export class IpvsadmExit extends Error {
  readonly exitCode: number;
  /** When set, the "Try `PROG -h'..." line is printed instead of `message`. */
  readonly tryHelp: boolean;
  constructor(exitCode: number, message: string, tryHelp = false) {
    super(message);
    this.name = 'IpvsadmExit';
    this.exitCode = exitCode;
    this.tryHelp = tryHelp;
  }
}

export function tryHelpText(prog: string): string {
  return `Try \`${prog} -h' or '${prog} --help' for more information.`;
}

const fail = (message: string): never => {
  throw new IpvsadmExit(2, message);
};
const tryHelp = (): never => {
  throw new IpvsadmExit(255, '', true);
};

export interface ListFlags {
  numeric: boolean;
  connection: boolean;
  timeout: boolean;
  daemon: boolean;
  stats: boolean;
  rate: boolean;
  thresholds: boolean;
  persistentConn: boolean;
  nosort: boolean;
  exact: boolean;
  tunInfo: boolean;
}

export interface ParsedCommand {
  cmd: CommandName;
  /** The virtual service (-t/-u/--sctp-service/-f), with its port resolved. */
  service?: ServiceKey | undefined;
  scheduler: string;
  persistence?: Persistence | undefined;
  schedFlags: string[];
  ops: boolean;
  pe?: string | undefined;
  real?: { address: string; port: number } | undefined;
  forwarding: Forwarding;
  weight: number;
  upperThreshold: number;
  lowerThreshold: number;
  tunType?: string | undefined;
  list: ListFlags;
  /** --set tcp tcpfin udp */
  timeouts?: [number, number, number] | undefined;
  daemonState?: 'master' | 'backup' | undefined;
}

/** Option names in ipvsadm's order: legality is checked in this order and messages use these names. */
const OPTION_NAMES = [
  'numeric',
  'connection',
  'service-address',
  'scheduler',
  'persistent',
  'netmask',
  'real-server',
  'forwarding-method',
  'weight',
  'u-threshold',
  'l-threshold',
  'mcast-interface',
  'syncid',
  'timeout',
  'daemon',
  'stats',
  'rate',
  'thresholds',
  'persistent-conn',
  'nosort',
  'sort',
  'exact',
  'ipv6',
  'ops',
  'pe',
  'sched-flags',
  'sync-maxlen',
  'mcast-group',
  'mcast-port',
  'mcast-ttl',
  'tun-type',
  'tun-port',
  'tun-nocsum',
  'tun-csum',
  'tun-remcsum',
  'tun-info',
] as const;
type OptionName = (typeof OPTION_NAMES)[number];

const TUN = ['tun-type', 'tun-port', 'tun-nocsum', 'tun-csum', 'tun-remcsum'] as const;
const SYNC = ['mcast-interface', 'syncid', 'sync-maxlen', 'mcast-group', 'mcast-port', 'mcast-ttl'] as const;
const LISTING = ['numeric', 'connection', 'timeout', 'daemon', 'stats', 'rate', 'thresholds', 'persistent-conn', 'nosort', 'exact', 'tun-info'] as const;

/** Options each command allows ('sort' and 'ipv6' are allowed everywhere); the rest are illegal. */
const ALLOWED: Record<Exclude<CommandName, 'help' | 'version'>, readonly OptionName[]> = {
  'add-service': ['service-address', 'scheduler', 'persistent', 'netmask', 'ops', 'pe', 'sched-flags'],
  'edit-service': ['service-address', 'scheduler', 'persistent', 'netmask', 'ops', 'pe', 'sched-flags'],
  'delete-service': ['service-address'],
  flush: [],
  restore: [],
  save: ['numeric'],
  'add-server': ['service-address', 'real-server', 'forwarding-method', 'weight', 'u-threshold', 'l-threshold', ...TUN],
  'edit-server': ['service-address', 'real-server', 'forwarding-method', 'weight', 'u-threshold', 'l-threshold', ...TUN],
  'delete-server': ['service-address', 'real-server'],
  list: ['service-address', 'syncid', ...LISTING],
  zero: ['service-address'],
  set: [],
  'start-daemon': [...SYNC],
  'stop-daemon': ['syncid'],
};

const REQUIRED: Partial<Record<CommandName, readonly OptionName[]>> = {
  'add-service': ['service-address'],
  'edit-service': ['service-address'],
  'delete-service': ['service-address'],
  'add-server': ['service-address', 'real-server'],
  'edit-server': ['service-address', 'real-server'],
  'delete-server': ['service-address', 'real-server'],
};

interface CommandSpec {
  short?: string;
  long: string;
  cmd: CommandName;
  /** Name used in "Illegal ... with the 'X' command". */
  label: string;
}

const COMMANDS: CommandSpec[] = [
  { short: 'A', long: 'add-service', cmd: 'add-service', label: 'add-service' },
  { short: 'E', long: 'edit-service', cmd: 'edit-service', label: 'edit-service' },
  { short: 'D', long: 'delete-service', cmd: 'delete-service', label: 'delete-service' },
  { short: 'C', long: 'clear', cmd: 'flush', label: 'flush' },
  { short: 'R', long: 'restore', cmd: 'restore', label: 'restore' },
  { short: 'S', long: 'save', cmd: 'save', label: 'save' },
  { short: 'a', long: 'add-server', cmd: 'add-server', label: 'add-server' },
  { short: 'e', long: 'edit-server', cmd: 'edit-server', label: 'edit-server' },
  { short: 'd', long: 'delete-server', cmd: 'delete-server', label: 'delete-server' },
  { short: 'L', long: 'list', cmd: 'list', label: 'list' },
  { short: 'l', long: 'list', cmd: 'list', label: 'list' },
  { short: 'Z', long: 'zero', cmd: 'zero', label: 'zero' },
  { long: 'set', cmd: 'set', label: 'set' },
  { long: 'start-daemon', cmd: 'start-daemon', label: 'start-daemon' },
  { long: 'stop-daemon', cmd: 'stop-daemon', label: 'stop-daemon' },
  { short: 'h', long: 'help', cmd: 'help', label: 'help' },
  { short: 'v', long: 'version', cmd: 'version', label: 'version' },
];

interface OptionSpec {
  short?: string;
  long: string;
  name: OptionName;
  arg: 'none' | 'required' | 'optional';
  /** Distinguishes -t/-u/--sctp-service/-f and -g/-i/-m, which share a name. */
  tag?: string;
}

const OPTIONS: OptionSpec[] = [
  { short: 'n', long: 'numeric', name: 'numeric', arg: 'none' },
  { short: 'c', long: 'connection', name: 'connection', arg: 'none' },
  { short: 't', long: 'tcp-service', name: 'service-address', arg: 'required', tag: 'tcp' },
  { short: 'u', long: 'udp-service', name: 'service-address', arg: 'required', tag: 'udp' },
  { long: 'sctp-service', name: 'service-address', arg: 'required', tag: 'sctp' },
  { short: 'f', long: 'fwmark-service', name: 'service-address', arg: 'required', tag: 'fwm' },
  { short: 's', long: 'scheduler', name: 'scheduler', arg: 'required' },
  { short: 'p', long: 'persistent', name: 'persistent', arg: 'optional' },
  { short: 'M', long: 'netmask', name: 'netmask', arg: 'required' },
  { short: 'r', long: 'real-server', name: 'real-server', arg: 'required' },
  { short: 'g', long: 'gatewaying', name: 'forwarding-method', arg: 'none', tag: 'gate' },
  { short: 'i', long: 'ipip', name: 'forwarding-method', arg: 'none', tag: 'ipip' },
  { short: 'm', long: 'masquerading', name: 'forwarding-method', arg: 'none', tag: 'masq' },
  { short: 'w', long: 'weight', name: 'weight', arg: 'required' },
  { short: 'x', long: 'u-threshold', name: 'u-threshold', arg: 'required' },
  { short: 'y', long: 'l-threshold', name: 'l-threshold', arg: 'required' },
  { long: 'mcast-interface', name: 'mcast-interface', arg: 'required' },
  { long: 'syncid', name: 'syncid', arg: 'required' },
  { long: 'timeout', name: 'timeout', arg: 'none' },
  { long: 'daemon', name: 'daemon', arg: 'none' },
  { long: 'stats', name: 'stats', arg: 'none' },
  { long: 'rate', name: 'rate', arg: 'none' },
  { long: 'thresholds', name: 'thresholds', arg: 'none' },
  { long: 'persistent-conn', name: 'persistent-conn', arg: 'none' },
  { long: 'nosort', name: 'nosort', arg: 'none' },
  { long: 'sort', name: 'sort', arg: 'none' },
  { long: 'exact', name: 'exact', arg: 'none' },
  { short: '6', long: 'ipv6', name: 'ipv6', arg: 'none' },
  { short: 'o', long: 'ops', name: 'ops', arg: 'none' },
  { long: 'pe', name: 'pe', arg: 'required' },
  { short: 'b', long: 'sched-flags', name: 'sched-flags', arg: 'required' },
  { long: 'sync-maxlen', name: 'sync-maxlen', arg: 'required' },
  { long: 'mcast-group', name: 'mcast-group', arg: 'required' },
  { long: 'mcast-port', name: 'mcast-port', arg: 'required' },
  { long: 'mcast-ttl', name: 'mcast-ttl', arg: 'required' },
  { long: 'tun-type', name: 'tun-type', arg: 'required' },
  { long: 'tun-port', name: 'tun-port', arg: 'required' },
  { long: 'tun-nocsum', name: 'tun-nocsum', arg: 'none' },
  { long: 'tun-csum', name: 'tun-csum', arg: 'none' },
  { long: 'tun-remcsum', name: 'tun-remcsum', arg: 'none' },
  { long: 'tun-info', name: 'tun-info', arg: 'none' },
];

/** Default persistence timeout of ipvsadm 1.31 when -p has no value (its man page says 300; the code uses 360). */
export const DEFAULT_PERSISTENCE_S = 360;
const MAX_TIMEOUT_S = 31 * 24 * 3600;

/** C's strtoul(s, &end, 10) over the whole string, with its leading white space; undefined if junk. */
function decimal(s: string): number | undefined {
  const m = /^\s*\+?(\d+)$/.exec(s);
  return m ? Number(m[1]) : undefined;
}

/** C's strtoul with base 0: 0x hex, leading-0 octal, else decimal. */
function cNumber(s: string): number | undefined {
  if (/^0[xX][0-9a-fA-F]+$/.test(s)) return parseInt(s.slice(2), 16);
  if (/^0[0-7]*$/.test(s)) return parseInt(s, 8);
  if (/^[1-9]\d*$/.test(s)) return Number(s);
  return undefined;
}

/** inet_aton: a, a.b, a.b.c or a.b.c.d, each part in C notation; the last part fills the rest. */
export function inetAton(s: string): string | undefined {
  const parts = s.split('.');
  if (parts.length < 1 || parts.length > 4) return undefined;
  const nums = parts.map(cNumber);
  if (nums.some((n) => n === undefined)) return undefined;
  const last = nums[nums.length - 1]!;
  const head = nums.slice(0, -1) as number[];
  if (head.some((n) => n > 255)) return undefined;
  const lastBits = 8 * (4 - head.length);
  if (last >= 2 ** lastBits) return undefined;
  let value = 0;
  head.forEach((n, i) => (value += n * 2 ** (24 - 8 * i)));
  value += last;
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join('.');
}

interface Endpoint {
  address: string;
  port: number;
  portGiven: boolean;
}

/** ipvsadm's host[:port] parser: `[v6]:port`, `v6` alone (no port), `v4-or-host[:port]`. */
function parseEndpoint(text: string, proto: Protocol, names: NameResolver): Endpoint | undefined {
  let host: string;
  let portText: string | undefined;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) return undefined;
    host = text.slice(1, close);
    const rest = text.slice(close + 1);
    // A bracketed address must have a port.
    if (!rest.startsWith(':')) return undefined;
    portText = rest.slice(1);
    if (!isIPv6(host)) return undefined;
  } else if (isIPv6(text)) {
    host = text;
  } else {
    const colon = text.indexOf(':');
    host = colon < 0 ? text : text.slice(0, colon);
    portText = colon < 0 ? undefined : text.slice(colon + 1);
  }
  let address: string | undefined;
  if (isIPv6(host)) address = canonicalAddress(host);
  else address = host === '' ? undefined : (inetAton(host) ?? names.hostToAddress(host));
  if (address === undefined) return undefined;
  if (portText === undefined) return { address, port: 0, portGiven: false };
  let port: number | undefined;
  if (/^\d+$/.test(portText)) port = Number(portText);
  else if (/^[A-Za-z][\w.+-]*$/.test(portText)) port = names.serviceToPort(portText, proto === 'fwm' ? 'tcp' : proto);
  if (port === undefined || port > 65535) return undefined;
  return { address, port, portGiven: true };
}

function emptyList(): ListFlags {
  return {
    numeric: false,
    connection: false,
    timeout: false,
    daemon: false,
    stats: false,
    rate: false,
    thresholds: false,
    persistentConn: false,
    nosort: false,
    exact: false,
    tunInfo: false,
  };
}

export interface ParseOptions {
  names?: NameResolver;
  /** True for a line of -R input: a nested -R is refused as ipvsadm refuses it. */
  readingStdin?: boolean;
}

/**
 * Parses ipvsadm's arguments (without the program name). Throws IpvsadmExit with ipvsadm's
 * message and exit code for anything ipvsadm refuses before talking to the kernel.
 */
export function parseIpvsadmArgs(argv: readonly string[], opts: ParseOptions = {}): ParsedCommand {
  const names = opts.names ?? numericResolver;
  const args = [...argv];
  if (args.length === 0) return { ...defaults('list') };
  // The command is the first option word; words that are not options before it are kept as
  // arguments (popt permutes them to the end) and refused later as unexpected.
  const leading: string[] = [];
  while (args.length > 0 && !(args[0]!.startsWith('-') && args[0]!.length > 1 && args[0] !== '--')) leading.push(args.shift()!);
  if (args.length === 0 || args[0] === '--') return tryHelp();
  const first = args.shift()!;
  let spec: CommandSpec | undefined;
  let pendingShort = '';
  let pendingBundle = first;
  if (first.startsWith('--')) {
    spec = COMMANDS.find((c) => `--${c.long}` === first);
  } else {
    spec = COMMANDS.find((c) => c.short === first[1]);
    pendingShort = first.slice(2);
  }
  if (!spec) return tryHelp();
  const cmd = defaults(spec.cmd);
  if (spec.cmd === 'help' || spec.cmd === 'version') return cmd;
  if (spec.cmd === 'restore' && opts.readingStdin) return tryHelp();

  const seen = new Set<OptionName>();
  const positional: string[] = [...leading];
  let fwmarkSeen = false;
  let realText: string | undefined;
  let netmaskText: string | undefined;
  let flagsText: string | undefined;
  let tunPortGiven = false;

  if (spec.cmd === 'set') {
    const v = args.shift();
    if (v === undefined) return tryHelp();
    positional.push(v);
  } else if (spec.cmd === 'start-daemon' || spec.cmd === 'stop-daemon') {
    const v = args.shift();
    if (v === undefined) return tryHelp();
    if (v !== 'master' && v !== 'backup') fail(`illegal ${spec.cmd} parameter specified`);
    cmd.daemonState = v as 'master' | 'backup';
  }

  const take = (o: OptionSpec, value: string | undefined): void => {
    if (seen.has(o.name)) fail(`multiple '${o.name}' options specified`);
    seen.add(o.name);
    switch (o.name) {
      case 'numeric':
        cmd.list.numeric = true;
        return;
      case 'connection':
        cmd.list.connection = true;
        return;
      case 'timeout':
        cmd.list.timeout = true;
        return;
      case 'daemon':
        cmd.list.daemon = true;
        return;
      case 'stats':
        cmd.list.stats = true;
        return;
      case 'rate':
        cmd.list.rate = true;
        return;
      case 'thresholds':
        cmd.list.thresholds = true;
        return;
      case 'persistent-conn':
        cmd.list.persistentConn = true;
        return;
      case 'nosort':
        cmd.list.nosort = true;
        return;
      case 'exact':
        cmd.list.exact = true;
        return;
      case 'tun-info':
        cmd.list.tunInfo = true;
        return;
      case 'sort':
        return;
      case 'service-address': {
        if (o.tag === 'fwm') {
          const mark = /^\d+$/.test(value!) ? Number(value) : undefined;
          if (mark === undefined || mark < 1 || mark > 0xffffffff) fail(`invalid fwmark value \`${value}' specified`);
          fwmarkSeen = true;
          cmd.service = { protocol: 'fwm', address: '', port: 0, fwmark: mark, family: 'inet' };
        } else {
          const ep = parseEndpoint(value!, o.tag as Protocol, names);
          if (!ep) fail('illegal virtual server address[:port] specified');
          cmd.service = { protocol: o.tag as Protocol, address: ep!.address, port: ep!.port };
        }
        return;
      }
      case 'scheduler':
        cmd.scheduler = value!;
        return;
      case 'persistent': {
        let t = DEFAULT_PERSISTENCE_S;
        if (value !== undefined) {
          const v = value.startsWith('=') ? value.slice(1) : value;
          const n = decimal(v);
          if (n === undefined || n < 1 || n > MAX_TIMEOUT_S) fail(`invalid timeout value \`${v}' specified`);
          t = n!;
        }
        cmd.persistence = { timeoutS: t };
        return;
      }
      case 'netmask':
        netmaskText = value!;
        return;
      case 'real-server':
        realText = value!;
        return;
      case 'forwarding-method':
        cmd.forwarding = o.tag as Forwarding;
        return;
      case 'weight': {
        const n = decimal(value!);
        if (n === undefined || n > 2147483647) fail('illegal weight specified');
        cmd.weight = n!;
        return;
      }
      case 'u-threshold':
      case 'l-threshold': {
        const n = decimal(value!);
        const which = o.name === 'u-threshold' ? 'u_threshold' : 'l_threshold';
        if (n === undefined || n > 0xffffffff) fail(`illegal ${which} specified`);
        if (o.name === 'u-threshold') cmd.upperThreshold = n!;
        else cmd.lowerThreshold = n!;
        return;
      }
      case 'ipv6':
        if (!fwmarkSeen) fail('-6 used before -f\n');
        cmd.service = { ...cmd.service!, family: 'inet6' };
        return;
      case 'ops':
        cmd.ops = true;
        return;
      case 'pe':
        cmd.pe = value!;
        return;
      case 'sched-flags':
        flagsText = value!;
        return;
      case 'tun-type':
        if (!['ipip', 'gue', 'gre'].includes(value!)) fail(`illegal tunnel type \`${value}' specified`);
        cmd.tunType = value!;
        return;
      case 'tun-port':
        tunPortGiven = true;
        return;
      default:
        return;
    }
  };

  /** Processes one short-option bundle (without the leading '-'); `token` is the argv word. */
  const shortBundle = (bundle: string, token: string): void => {
    for (let i = 0; i < bundle.length; i++) {
      const ch = bundle[i]!;
      if (COMMANDS.some((c) => c.short === ch)) fail(`invalid option \`-${ch}'`);
      const o = OPTIONS.find((x) => x.short === ch);
      if (!o) {
        // popt reports an unknown digit option, and passes over an unknown letter.
        if (/\d/.test(ch)) throw new IpvsadmExit(255, `${token}: unknown option`);
        continue;
      }
      if (o.arg === 'none') {
        take(o, undefined);
        continue;
      }
      const rest = bundle.slice(i + 1);
      if (rest !== '') {
        take(o, rest);
        return;
      }
      if (o.arg === 'optional') {
        const next = args[0];
        take(o, next !== undefined && !next.startsWith('-') ? args.shift() : undefined);
        return;
      }
      const next = args.shift();
      if (next === undefined) throw new IpvsadmExit(255, `${token}: missing argument`);
      take(o, next);
      return;
    }
  };

  if (pendingShort) shortBundle(pendingShort, pendingBundle);
  while (args.length > 0) {
    const a = args.shift()!;
    if (a === '--') {
      positional.push(...args.splice(0));
      break;
    }
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
      const inline = eq < 0 ? undefined : a.slice(eq + 1);
      if (COMMANDS.some((c) => c.long === name)) fail(`invalid option \`${a}'`);
      const o = OPTIONS.find((x) => x.long === name);
      if (!o) throw new IpvsadmExit(255, `${a}: unknown option`);
      if (o.arg === 'none') {
        if (inline !== undefined) throw new IpvsadmExit(255, `${a}: option does not take an argument`);
        take(o, undefined);
      } else if (inline !== undefined) {
        take(o, inline);
      } else if (o.arg === 'optional') {
        const next = args[0];
        take(o, next !== undefined && !next.startsWith('-') ? args.shift() : undefined);
      } else {
        const next = args.shift();
        if (next === undefined) throw new IpvsadmExit(255, `${a}: missing argument`);
        take(o, next);
      }
      continue;
    }
    if (a.startsWith('-') && a.length > 1) {
      pendingBundle = a;
      shortBundle(a.slice(1), a);
      continue;
    }
    positional.push(a);
  }

  if (cmd.cmd === 'set') {
    if (positional.length < 3) fail('--set option requires 3 timeout values');
    if (positional.length > 3) fail(`unexpected argument ${positional[3]}`);
    const t = positional.map((v) => {
      const n = decimal(v);
      if (n === undefined || n > 2147483647) fail(`invalid timeout value \`${v}' specified`);
      return n!;
    });
    cmd.timeouts = [t[0]!, t[1]!, t[2]!];
  } else if (positional.length > 0) {
    fail(`unexpected argument ${positional[0]}`);
  }

  const allowed = ALLOWED[spec.cmd as keyof typeof ALLOWED];
  const required = REQUIRED[spec.cmd] ?? [];
  for (const name of OPTION_NAMES) {
    if (name === 'sort' || name === 'ipv6') continue;
    if (seen.has(name) && !allowed.includes(name)) fail(`Illegal '${name}' option with the '${spec.label}' command`);
    if (!seen.has(name) && required.includes(name)) fail(`You need to supply the '${name}' option for the '${spec.label}' command`);
  }
  if (cmd.cmd === 'list' && cmd.list.connection && seen.has('service-address')) {
    fail("The option 'service-address' conflicts with the 'connection' option in the 'list' command");
  }

  const svc = cmd.service;
  if (svc && netmaskText !== undefined) {
    const v6 = svc.protocol === 'fwm' ? svc.family === 'inet6' : familyOf(svc.address) === 'inet6';
    let mask: string | undefined;
    if (v6) mask = /^\d+$/.test(netmaskText) && Number(netmaskText) >= 1 && Number(netmaskText) <= 128 ? String(Number(netmaskText)) : undefined;
    else mask = inetAton(netmaskText);
    if (mask === undefined) fail('illegal virtual server persistent mask specified');
    if (cmd.persistence) cmd.persistence = { ...cmd.persistence, netmask: mask };
  }
  if (flagsText !== undefined) cmd.schedFlags = parseSchedFlags(flagsText, cmd.scheduler);

  if (cmd.cmd === 'add-service' || cmd.cmd === 'edit-service') {
    if (svc && svc.protocol !== 'fwm' && svc.port === 0 && !cmd.persistence) fail('Zero port specified for non-persistent service');
    if (cmd.ops && svc && svc.protocol !== 'udp' && svc.protocol !== 'fwm') fail('One-Packet Scheduling is only for UDP virtual services');
  }
  if (cmd.cmd === 'add-server' || cmd.cmd === 'edit-server' || cmd.cmd === 'delete-server') {
    const ep = parseEndpoint(realText!, svc!.protocol === 'fwm' ? 'tcp' : svc!.protocol, names);
    if (!ep) fail('illegal real server address[:port] specified');
    // No port given: the service's port (0 for a firewall-mark service).
    cmd.real = { address: ep!.address, port: ep!.portGiven ? ep!.port : svc!.port };
    if (cmd.cmd !== 'delete-server') {
      const anyTun = TUN.some((t) => seen.has(t));
      if (anyTun && cmd.forwarding !== 'ipip') fail('Tunnel options conflict with forward method');
      const tt = cmd.tunType ?? 'ipip';
      if (tt === 'gue' && !tunPortGiven) fail("You need to supply the 'tun-port' option for the 'gue' tunnel type");
      if (tt !== 'gue' && tunPortGiven) fail(`Illegal 'tun-port' option with the '${tt}' tunnel type`);
      const svcFamily = svc!.protocol === 'fwm' ? (svc!.family ?? 'inet') : familyOf(svc!.address);
      if (familyOf(ep!.address) !== svcFamily && cmd.forwarding !== 'ipip') fail('Different address family is allowed only for tunneling servers');
    }
  }
  return cmd;
}

/** -b flags: names valid for the scheduler (sh-*, mh-*) or flag-1..3 for any scheduler. */
function parseSchedFlags(text: string, scheduler: string): string[] {
  const out: string[] = [];
  for (const f of text.split(',')) {
    if (f === '') continue;
    if (/^flag-[123]$/.test(f)) out.push(f);
    else if (f === 'sh-fallback' || f === 'sh-port' || f === 'mh-fallback' || f === 'mh-port') {
      if (!f.startsWith(`${scheduler}-`)) fail(`incompatible scheduler flag \`${f}'`);
      out.push(f);
    } else fail(`invalid scheduler flag \`${f}'`);
  }
  return out;
}

function defaults(c: CommandName): ParsedCommand {
  return {
    cmd: c,
    scheduler: 'wlc',
    schedFlags: [],
    ops: false,
    forwarding: 'gate',
    weight: 1,
    upperThreshold: 0,
    lowerThreshold: 0,
    list: emptyList(),
  };
}

/** A command that changes the table, as the operations the table applies. */
export type TableCommand = IpvsOp | { op: 'clear' } | { op: 'zero'; key?: ServiceKey | undefined } | { op: 'set-timeouts'; timeouts: [number, number, number] };

/** The table operation of a parsed -A -E -D -a -e -d -C -Z --set command, or undefined for the others. */
export function commandToOp(c: ParsedCommand): TableCommand | undefined {
  const key = c.service;
  switch (c.cmd) {
    case 'add-service':
    case 'edit-service': {
      const service: VirtualService = { ...key!, scheduler: c.scheduler, reals: [] };
      if (c.persistence) service.persistence = c.persistence;
      if (c.schedFlags.length > 0) service.schedFlags = c.schedFlags;
      if (c.ops) service.ops = true;
      return { op: c.cmd === 'add-service' ? 'add-service' : 'edit-service', service };
    }
    case 'delete-service':
      return { op: 'delete-service', key: key! };
    case 'add-server':
    case 'edit-server': {
      const real: RealServer = { address: c.real!.address, port: c.real!.port, forwarding: c.forwarding, weight: c.weight };
      if (c.upperThreshold) real.upperThreshold = c.upperThreshold;
      if (c.lowerThreshold) real.lowerThreshold = c.lowerThreshold;
      return { op: c.cmd === 'add-server' ? 'add-real' : 'edit-real', key: key!, real };
    }
    case 'delete-server':
      return { op: 'delete-real', key: key!, address: c.real!.address, port: c.real!.port };
    case 'flush':
      return { op: 'clear' };
    case 'zero':
      return { op: 'zero', key };
    case 'set':
      return { op: 'set-timeouts', timeouts: c.timeouts! };
    default:
      return undefined;
  }
}

/** Splits one line of -R input the way ipvsadm does: on white space, no quoting, no comments. */
export function splitRuleLine(line: string): string[] {
  const words = line.split(/[ \t\r\n\v\f]+/).filter((w) => w !== '');
  if (words[0] === 'ipvsadm') words.shift();
  return words;
}

export interface RulesResult {
  ops: TableCommand[];
}

/**
 * Reads a rules file (ipvsadm-save output, /etc/sysconfig/ipvsadm) into table commands. Every line
 * is parsed as `ipvsadm -R` would; in addition a line starting with `#` is a comment. All problems
 * are collected and reported together (ConfigError), each naming file and line with ipvsadm's message.
 */
export function parseRules(text: string, file: string, opts: { names?: NameResolver } = {}): RulesResult {
  const sink = new ProblemSink(file);
  const ops: TableCommand[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = i + 1;
    if (/^\s*#/.test(raw)) return;
    const words = splitRuleLine(raw);
    if (words.length === 0) return;
    const directive = words[0]!;
    try {
      const parsed = parseIpvsadmArgs(words, { ...opts, readingStdin: true });
      const op = commandToOp(parsed);
      if (!op || op.op === 'zero' || op.op === 'set-timeouts') {
        sink.error('E_IPVS_RULE', `${directive} does not change the table and is not allowed in a rules file`, { file, line, directive }, 'use -A -E -D -a -e -d or -C');
        return;
      }
      ops.push(op);
    } catch (err) {
      if (!(err instanceof IpvsadmExit)) throw err;
      const message = err.tryHelp ? 'not an ipvsadm command' : err.message.trim();
      sink.error('E_IPVS_RULE', message, { file, line, directive }, err.tryHelp ? 'each line must start with a command such as -A or -a' : undefined);
    }
  });
  sink.throwIfErrors();
  return { ops };
}

function serviceArg(k: ServiceKey): string {
  if (k.protocol === 'fwm') return `-f ${k.fwmark}${k.family === 'inet6' ? ' -6' : ''}`;
  const ep = k.address.includes(':') ? `[${k.address}]:${k.port}` : `${k.address}:${k.port}`;
  return `${k.protocol === 'tcp' ? '-t' : k.protocol === 'udp' ? '-u' : '--sctp-service'} ${ep}`;
}

const FWD_FLAG: Record<Forwarding, string> = { gate: '-g', masq: '-m', ipip: '-i' };

/** One table operation as a line of `ipvsadm -R` input (numeric, thresholds included). */
export function opToRuleLine(op: IpvsOp): string {
  switch (op.op) {
    case 'add-service':
    case 'edit-service': {
      const s = op.service;
      let line = `${op.op === 'add-service' ? '-A' : '-E'} ${serviceArg(s)} -s ${s.scheduler}`;
      if (s.persistence) {
        line += ` -p ${s.persistence.timeoutS}`;
        if (s.persistence.netmask) line += ` -M ${s.persistence.netmask}`;
      }
      if (s.ops) line += ' -o';
      if (s.schedFlags && s.schedFlags.length > 0) line += ` -b ${s.schedFlags.join(',')}`;
      return line;
    }
    case 'delete-service':
      return `-D ${serviceArg(op.key)}`;
    case 'add-real':
    case 'edit-real': {
      const r = op.real;
      const ep = r.address.includes(':') ? `[${r.address}]:${r.port}` : `${r.address}:${r.port}`;
      let line = `${op.op === 'add-real' ? '-a' : '-e'} ${serviceArg(op.key)} -r ${ep} ${FWD_FLAG[r.forwarding]} -w ${r.weight}`;
      if (r.upperThreshold) line += ` -x ${r.upperThreshold}`;
      if (r.lowerThreshold) line += ` -y ${r.lowerThreshold}`;
      return line;
    }
    case 'delete-real': {
      const ep = op.address.includes(':') ? `[${op.address}]:${op.port}` : `${op.address}:${op.port}`;
      return `-d ${serviceArg(op.key)} -r ${ep}`;
    }
  }
}
