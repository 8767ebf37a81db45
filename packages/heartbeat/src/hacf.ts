/**
 * ha.cf as heartbeat 3.0.6 reads it (reference/heartbeat.md §3): one directive per line, `#` starts a
 * comment anywhere, ordinary directives take values split on white space and commas (applied in
 * turn, so `keepalive 1 2` means 2 and `node a b` adds two nodes), "whole-line" directives and media
 * with their own syntax take the rest of the line. Directives apply in order: a bcast/ucast line takes
 * the udpport in force at that point, a serial line the baud.
 *
 * Parsing is pure. What depends on the machine (this host a `node`, interfaces, serial devices,
 * respawn users and programs) is checked separately by `checkMachine`, so `configtest` can report it
 * as warnings and start as errors.
 */
import { existsSync, readdirSync, readFileSync, accessSync, constants as fsConstants } from 'node:fs';
import { hostname } from 'node:os';
import { basename } from 'node:path';
import { isIPv4 } from 'node:net';
import { splitConfigLines, didYouMean, parseBool, parseDuration, ProblemSink, TandemError, type Location, type Problem } from '@tandem/core';
import type { Timing } from './types.ts';

export type AutoFailback = 'on' | 'off' | 'legacy';

export interface BcastMedium { type: 'bcast'; dev: string; port: number; at: Location }
export interface McastMedium { type: 'mcast'; dev: string; group: string; port: number; ttl: number; loop: boolean; at: Location }
export interface UcastMedium { type: 'ucast'; dev: string; peer: string; port: number; at: Location }
export interface SerialMedium { type: 'serial'; device: string; baud: number; at: Location }
export type MediumConfig = BcastMedium | McastMedium | UcastMedium | SerialMedium;

export interface PingGroup { name: string; addresses: readonly string[]; at: Location }

export interface RespawnEntry {
  user: string;
  command: string;
  args: readonly string[];
  at: Location;
}

export interface ApiAuth { client: string; uids: readonly string[]; gids: readonly string[]; at: Location }

/** The validated, frozen ha.cf. Times in ms. */
export interface HaConfig {
  file: string;
  /** Lower-case, in file order, no duplicates. */
  nodes: readonly string[];
  timing: Timing;
  keepaliveMs: number;
  deadtimeMs: number;
  warntimeMs: number;
  initdeadMs: number;
  deadpingMs: number;
  autoFailback: AutoFailback;
  hopfudge: number;
  cluster: string;
  autojoin: 'none';
  uuidfrom: 'file' | 'nodename';
  hbgenmethod: 'file' | 'time';
  /** The udpport in force at the end of the file (each bcast/ucast medium carries its own). */
  udpport: number;
  baud: number;
  media: readonly MediumConfig[];
  /** `ping` addresses: each a pseudo-node. */
  pingNodes: readonly string[];
  pingGroups: readonly PingGroup[];
  logfile: string | undefined;
  debugfile: string | undefined;
  /** Syslog facility name, `none`, or undefined. */
  logfacility: string | undefined;
  connLogdTimeMs: number;
  syslogmsgfmt: boolean;
  debug: number;
  logBadpack: boolean;
  coredumps: boolean;
  coreroot: string | undefined;
  realtime: boolean;
  rtprio: number | undefined;
  memreserveKb: number;
  /** respawn lines other than ipfail. */
  respawn: readonly RespawnEntry[];
  /** `respawn <user> .../ipfail` was given: tandem runs its own ipfail behaviour instead. */
  ipfail: boolean;
  apiauth: readonly ApiAuth[];
  msgfmt: 'classic' | 'netstring';
  compression: 'zlib' | 'bz2';
  compressionThresholdKb: number;
  traditionalCompression: boolean;
  maxRexmitDelayMs: number;
  /** `env NAME=value`: exported to children as HA_NAME=value. */
  env: ReadonlyMap<string, string>;
}

export interface HaCfResult {
  /** Present when there is no error. */
  config: HaConfig | undefined;
  /** Errors and warnings from the file alone, in file order. */
  problems: Problem[];
}

// ---------------------------------------------------------------------------------------------
// Directive table

type Kind =
  | 'time' | 'bool' | 'int' | 'string' | 'path' | 'enum' | 'nodes' | 'media' | 'wholeline';

interface Directive {
  kind: Kind;
  /** What it does, for HEARTBEAT-CONFIG.md and `heartbeat -D`. */
  help: string;
  /** Refused: tandem does not do this; the message says what to use instead. */
  refused?: string;
  /** Values of an enum. */
  values?: readonly string[];
}

const REFUSED_CRM = 'tandem manages resources from haresources only (R1 mode); it does not run Pacemaker/CRM';

export const DIRECTIVES: Readonly<Record<string, Directive>> = {
  node: { kind: 'nodes', help: 'cluster members (lower-cased); this machine must be one' },
  keepalive: { kind: 'time', help: 'interval between status packets (default 1000ms)' },
  deadtime: { kind: 'time', help: 'silence after which a node is dead (default 30000ms); > 2×keepalive' },
  warntime: { kind: 'time', help: 'silence after which a late heartbeat is logged (default deadtime/2)' },
  initdead: { kind: 'time', help: 'dead time until communication is up (default from deadtime); ≥ deadtime' },
  deadping: { kind: 'time', help: 'dead time of ping nodes (default deadtime)' },
  auto_failback: { kind: 'enum', values: ['on', 'off', 'legacy'], help: 'the preferred node takes its groups back (default legacy = on)' },
  nice_failback: { kind: 'bool', help: 'obsolete: on = auto_failback off, off = legacy' },
  hopfudge: { kind: 'int', help: 'ttl = node count + hopfudge (0..255, default 1)' },
  cluster: { kind: 'string', help: 'cluster name (default linux-ha)' },
  autojoin: { kind: 'enum', values: ['none', 'other', 'any'], help: 'automatic joining; only none works with haresources' },
  uuidfrom: { kind: 'enum', values: ['file', 'nodename'], help: 'node UUID kept in hb_uuid or derived from the name' },
  hbgenmethod: { kind: 'enum', values: ['file', 'time'], help: 'generation kept in hb_generation or taken from the clock' },
  udpport: { kind: 'int', help: 'UDP port of bcast and ucast (default 694); must precede the media' },
  bcast: { kind: 'media', help: 'broadcast on each interface named' },
  udp: { kind: 'media', help: 'old name of bcast' },
  mcast: { kind: 'media', help: 'dev group port ttl loop' },
  ucast: { kind: 'media', help: 'dev peer-address' },
  serial: { kind: 'media', help: 'serial devices; uses baud' },
  baud: { kind: 'int', help: 'serial speed (9600..460800, default 19200); must precede serial' },
  mcast6: { kind: 'media', help: 'IPv6 multicast', refused: 'IPv6 media are not implemented in tandem; use mcast or ucast over IPv4' },
  ucast6: { kind: 'media', help: 'IPv6 unicast', refused: 'IPv6 media are not implemented in tandem; use ucast over IPv4' },
  ping: { kind: 'media', help: 'ping nodes: each address is a pseudo-node' },
  ping6: { kind: 'media', help: 'IPv6 ping nodes', refused: 'IPv6 ping nodes are not implemented in tandem; use ping or ping_group with IPv4 addresses' },
  ping_group: { kind: 'media', help: 'name addr...: one pseudo-node, up while any address answers' },
  logfile: { kind: 'path', help: 'log file for non-debug messages' },
  debugfile: { kind: 'path', help: 'log file for debug messages' },
  logfacility: { kind: 'string', help: 'syslog facility, or none' },
  use_logd: { kind: 'bool', help: 'log through ha_logd' },
  conn_logd_time: { kind: 'time', help: 'logd reconnect interval (no effect: tandem has no logd)' },
  syslogmsgfmt: { kind: 'bool', help: 'syslog-style lines in log files' },
  debug: { kind: 'int', help: 'debug level 0..255' },
  log_badpack: { kind: 'bool', help: 'warn about bad packets' },
  coredumps: { kind: 'bool', help: 'enable core dumps' },
  coreroot: { kind: 'path', help: 'core dump directory' },
  realtime: { kind: 'bool', help: 'realtime scheduling and locked memory' },
  rtprio: { kind: 'int', help: 'realtime priority 1..99' },
  memreserve: { kind: 'int', help: 'KB preallocated at start (default 6500)' },
  watchdog: { kind: 'path', help: 'hardware watchdog device', refused: 'tandem does not drive a watchdog device; use systemd WatchdogSec= or the watchdog daemon' },
  respawn: { kind: 'wholeline', help: 'user /abs/program [args]: supervised child; .../ipfail switches on tandem\'s ipfail' },
  failfast: { kind: 'wholeline', help: 'like respawn, but reboots the machine when the child dies', refused: 'tandem never reboots the machine; use respawn' },
  apiauth: { kind: 'wholeline', help: 'client [uid=..] [gid=..]: who may use the API' },
  stonith: { kind: 'wholeline', help: 'STONITH device', refused: 'tandem does not do STONITH; fence with your platform (IPMI, cloud API) outside tandem' },
  stonith_host: { kind: 'wholeline', help: 'STONITH device per host', refused: 'tandem does not do STONITH; fence with your platform (IPMI, cloud API) outside tandem' },
  msgfmt: { kind: 'enum', values: ['classic', 'netstring'], help: 'classic adds the inner auth field (default classic)' },
  compression: { kind: 'enum', values: ['zlib', 'bz2'], help: 'compression of big messages (tandem never needs it)' },
  compression_threshold: { kind: 'int', help: 'KB above which messages are compressed (default 2)' },
  traditional_compression: { kind: 'bool', help: 'compress whole messages' },
  max_rexmit_delay: { kind: 'int', help: 'ms before answering a retransmission request (default 250)' },
  env: { kind: 'wholeline', help: 'NAME=value exported as HA_NAME to children' },
  pacemaker: { kind: 'string', help: 'Pacemaker mode', refused: REFUSED_CRM },
  crm: { kind: 'string', help: 'Pacemaker mode', refused: REFUSED_CRM },
  crm_daemon_dir: { kind: 'path', help: 'Pacemaker daemons (always a config error in 3.0.6)', refused: REFUSED_CRM },
  crmd_spawns_pengine: { kind: 'bool', help: 'Pacemaker only', refused: REFUSED_CRM },
  record_config_changes: { kind: 'bool', help: 'Pacemaker only: no effect without it' },
  record_pengine_inputs: { kind: 'bool', help: 'Pacemaker only: no effect without it' },
  enable_config_writes: { kind: 'bool', help: 'Pacemaker only: no effect without it' },
  use_apphbd: { kind: 'bool', help: 'register with apphbd' },
  quorum_server: { kind: 'string', help: 'quorum server', refused: 'tandem has no quorum server support (and 3.0.6 clobbers cluster with it)' },
};

const BAUDS = [9600, 19200, 38400, 57600, 115200, 230400, 460800];
const FACILITIES = ['auth', 'authpriv', 'cron', 'daemon', 'ftp', 'kern', 'lpr', 'mail', 'news', 'syslog', 'user', 'uucp',
  'local0', 'local1', 'local2', 'local3', 'local4', 'local5', 'local6', 'local7', 'none'];
const IFNAME = /^[A-Za-z0-9_.:@-]{1,15}$/;

/** `N`, `N.M` seconds, `Nms`/`Nmsec`, `Nus`/`Nusec`, plus tandem's `s`, `sec`, `min`. No space before the unit. */
export function parseHbTime(text: string): number | undefined {
  if (!/^(\d+(\.\d+)?|\.\d+)[a-zA-Z]*$/.test(text)) return undefined;
  return parseDuration(text);
}

function isMulticast4(a: string): boolean {
  if (!isIPv4(a)) return false;
  const first = Number(a.split('.')[0]);
  return first >= 224 && first <= 239;
}

// ---------------------------------------------------------------------------------------------
// Parser

interface Draft {
  nodes: string[];
  keepalive?: number; deadtime?: number; warntime?: number; initdead?: number; deadping?: number;
  autoFailback?: AutoFailback;
  hopfudge: number; cluster: string;
  uuidfrom: 'file' | 'nodename'; hbgenmethod: 'file' | 'time';
  udpport: number; baud: number;
  media: MediumConfig[]; pingNodes: string[]; pingGroups: PingGroup[];
  logfile?: string; debugfile?: string; logfacility?: string;
  connLogdTimeMs: number; syslogmsgfmt: boolean; debug: number; logBadpack: boolean; coredumps: boolean;
  coreroot?: string; realtime: boolean; rtprio?: number; memreserveKb: number;
  respawn: RespawnEntry[]; ipfail: boolean; apiauth: ApiAuth[];
  msgfmt: 'classic' | 'netstring'; compression: 'zlib' | 'bz2'; compressionThresholdKb: number;
  traditionalCompression: boolean; maxRexmitDelayMs: number; env: Map<string, string>;
  /** Lines that created a udp-port medium / a serial medium, for the ordering warnings. */
  udpMediaAt?: Location; serialAt?: Location;
}

export function parseHaCf(content: string, file: string): HaCfResult {
  const sink = new ProblemSink(file);
  const problems = sink.problems;
  const err = sink.error.bind(sink);
  const warn = sink.warn.bind(sink);
  const d: Draft = {
    nodes: [], hopfudge: 1, cluster: 'linux-ha', uuidfrom: 'file', hbgenmethod: 'file', udpport: 694, baud: 19200,
    media: [], pingNodes: [], pingGroups: [], connLogdTimeMs: 60_000, syslogmsgfmt: true, debug: 0, logBadpack: true,
    coredumps: true, realtime: true, memreserveKb: 6500, respawn: [], ipfail: false, apiauth: [], msgfmt: 'classic',
    compression: 'zlib', compressionThresholdKb: 2, traditionalCompression: false, maxRexmitDelayMs: 250, env: new Map(),
  };
  let autojoin = 'none';
  let autojoinAt: Location | undefined;
  /** Where each directive last appeared, to point whole-file problems at a line. */
  const lastAt = new Map<string, Location>();

  for (const sl of splitConfigLines(content, file, { comments: 'anywhere' })) {
    const m = /^(\S+)\s*(.*)$/.exec(sl.text)!;
    const name = m[1]!;
    const rest = m[2]!.trim();
    const at: Location = { file, line: sl.line, directive: name };
    const dir = DIRECTIVES[name];
    lastAt.set(name, at);
    if (!dir) {
      const dym = didYouMean(name, Object.keys(DIRECTIVES));
      err('E_HACF_UNKNOWN_DIRECTIVE', `Illegal directive [${name}]`, { file, line: sl.line },
        dym ? `did you mean ${dym}?` : 'see HEARTBEAT-CONFIG.md for the directives heartbeat 3.0.6 accepts');
      continue;
    }
    if (rest === '') {
      err('E_HACF_MISSING_VALUE', `${name} needs a value`, at);
      continue;
    }
    if (dir.refused) {
      // crm/pacemaker off, use_apphbd off: heartbeat does nothing either, so accept them.
      if ((name === 'crm' || name === 'pacemaker') && parseBool(rest) === false) continue;
      err('E_HACF_REFUSED', `${name} is not supported by tandem`, at, dir.refused);
      continue;
    }
    if (name === 'pacemaker' || name === 'crm') continue;
    if (['respawn', 'apiauth', 'env', 'mcast', 'ucast', 'ping_group'].includes(name)) {
      applyWholeLine(name, rest, at);
      continue;
    }
    // Ordinary directives: every value in turn (white space and commas separate).
    const values = rest.split(/[\s,]+/).filter((v) => v !== '');
    for (const v of values) applyValue(name, dir, v, at);
  }

  function applyValue(name: string, dir: Directive, v: string, at: Location): void {
    const bad = (why: string, hint?: string): void => err('E_HACF_BAD_VALUE', `invalid value [${v}]: ${why}`, at, hint);
    switch (dir.kind) {
      case 'time': {
        const ms = parseHbTime(v);
        if (ms === undefined) return bad('not a time', 'write seconds (2, 1.5), or attach ms/us/s/min to the number (500ms)');
        if (name === 'keepalive') {
          if (ms <= 0) return bad('keepalive must be more than 0 ms (values round to whole ms)');
          d.keepalive = ms;
        } else if (name === 'warntime') {
          if (ms <= 0) { err('E_HACF_BAD_VALUE', `Warn time [${ms}] is invalid.`, at, 'warntime must be more than 0'); return; }
          d.warntime = ms;
        } else if (name === 'deadtime') d.deadtime = ms;
        else if (name === 'initdead') d.initdead = ms;
        else if (name === 'deadping') d.deadping = ms;
        else if (name === 'conn_logd_time') d.connLogdTimeMs = ms;
        return;
      }
      case 'bool': {
        const b = parseBool(v);
        if (b === undefined) return bad('not a boolean', 'use on/off, yes/no, true/false, 1/0');
        if (name === 'nice_failback') {
          d.autoFailback = b ? 'off' : 'legacy';
          warn('E_HACF_DEPRECATED', `nice_failback is obsolete; taken as auto_failback ${d.autoFailback}`, at, `write auto_failback ${b ? 'off' : 'on'}`);
        } else if (name === 'syslogmsgfmt') d.syslogmsgfmt = b;
        else if (name === 'log_badpack') d.logBadpack = b;
        else if (name === 'coredumps') d.coredumps = b;
        else if (name === 'realtime') d.realtime = b;
        else if (name === 'traditional_compression') d.traditionalCompression = b;
        else if (name === 'use_logd') {
          if (b) err('E_HACF_REFUSED', 'use_logd is not supported by tandem', at, 'tandem has no ha_logd: use logfile, debugfile or logfacility');
        } else if (name === 'use_apphbd') {
          if (b) err('E_HACF_REFUSED', 'use_apphbd is not supported by tandem', at, 'tandem has no apphbd; run it under systemd with WatchdogSec= instead');
        } else if (['record_config_changes', 'record_pengine_inputs', 'enable_config_writes'].includes(name)) {
          warn('E_HACF_DEPRECATED', `${name} has no effect without Pacemaker`, at, 'remove the line');
        }
        return;
      }
      case 'enum': {
        let val = v.toLowerCase();
        if (name === 'auto_failback' && val !== 'legacy') {
          const b = parseBool(val);
          if (b === undefined) return bad(`expected on, off or legacy`);
          val = b ? 'on' : 'off';
        }
        if (!dir.values!.includes(val)) {
          const dym = didYouMean(val, dir.values!);
          return bad(`expected ${dir.values!.join(', ')}`, dym ? `did you mean ${dym}?` : undefined);
        }
        if (name === 'auto_failback') d.autoFailback = val as AutoFailback;
        else if (name === 'autojoin') { autojoin = val; autojoinAt = at; }
        else if (name === 'uuidfrom') d.uuidfrom = val as Draft['uuidfrom'];
        else if (name === 'hbgenmethod') d.hbgenmethod = val as Draft['hbgenmethod'];
        else if (name === 'msgfmt') d.msgfmt = val as Draft['msgfmt'];
        else if (name === 'compression') d.compression = val as Draft['compression'];
        return;
      }
      case 'int': {
        if (!/^\d+$/.test(v)) return bad('not a whole number');
        const n = Number(v);
        if (name === 'udpport') {
          if (n < 1 || n > 65535) { err('E_HACF_BAD_VALUE', `invalid port [${v}] specified.`, at, 'udpport is 1..65535'); return; }
          if (d.udpMediaAt && n !== d.udpport) {
            warn('E_HACF_ORDER', `udpport ${n} comes after the medium on line ${d.udpMediaAt.line}, which keeps port ${d.udpport}`, at, 'put udpport before the bcast/ucast lines');
          }
          d.udpport = n;
        } else if (name === 'baud') {
          if (!BAUDS.includes(n)) { err('E_HACF_BAD_VALUE', `invalid baudrate [${v}] specified.`, at, `use one of ${BAUDS.join(', ')}`); return; }
          if (d.serialAt && n !== d.baud) {
            warn('E_HACF_ORDER', `baud ${n} comes after the serial medium on line ${d.serialAt.line}, which keeps ${d.baud}`, at, 'put baud before the serial lines');
          }
          d.baud = n;
        } else if (name === 'hopfudge') {
          if (n > 255) return bad('hopfudge is 0..255');
          d.hopfudge = n;
        } else if (name === 'debug') {
          if (n > 255) return bad('debug is 0..255');
          d.debug = n;
        } else if (name === 'rtprio') {
          if (n < 1 || n > 99) { err('E_HACF_BAD_VALUE', `Illegal realtime priority [${v}]`, at, 'rtprio is 1..99'); return; }
          d.rtprio = n;
        } else if (name === 'memreserve') {
          if (n < 1) return bad('memreserve must be more than 0');
          d.memreserveKb = n;
        } else if (name === 'compression_threshold') {
          if (n < 1) return bad('compression_threshold must be more than 0');
          d.compressionThresholdKb = n;
        } else if (name === 'max_rexmit_delay') {
          if (n < 1) return bad('max_rexmit_delay must be more than 0');
          d.maxRexmitDelayMs = n;
        }
        return;
      }
      case 'string':
        if (name === 'cluster') d.cluster = v;
        else if (name === 'logfacility') {
          const f = v.toLowerCase();
          if (!FACILITIES.includes(f)) {
            const dym = didYouMean(f, FACILITIES);
            return bad('not a syslog facility', dym ? `did you mean ${dym}?` : `use one of ${FACILITIES.join(', ')}`);
          }
          d.logfacility = f;
        }
        return;
      case 'path':
        if (name === 'logfile') d.logfile = v;
        else if (name === 'debugfile') d.debugfile = v;
        else if (name === 'coreroot') {
          if (!v.startsWith('/')) return bad('coreroot must be an absolute path');
          d.coreroot = v;
        }
        return;
      case 'nodes':
        if (!d.nodes.includes(v.toLowerCase())) d.nodes.push(v.toLowerCase());
        return;
      case 'media':
        applyMedium(name, v, at);
        return;
      case 'wholeline':
        return;
    }
  }

  function applyMedium(name: string, v: string, at: Location): void {
    if (name === 'udp') {
      warn('E_HACF_DEPRECATED', 'udp is the old name of bcast', at, 'write bcast');
      name = 'bcast';
    }
    if (name === 'bcast') {
      if (!IFNAME.test(v)) { err('E_HACF_BAD_MEDIUM', `[${v}] is not an interface name`, at); return; }
      d.media.push({ type: 'bcast', dev: v, port: d.udpport, at });
      d.udpMediaAt ??= at;
    } else if (name === 'serial') {
      if (!v.startsWith('/')) { err('E_HACF_BAD_MEDIUM', `[${v}] is not a device path`, at, 'write /dev/ttyS0'); return; }
      d.media.push({ type: 'serial', device: v, baud: d.baud, at });
      d.serialAt ??= at;
    } else if (name === 'ping') {
      if (!isIPv4(v)) { err('E_HACF_BAD_MEDIUM', `[${v}] is not an IPv4 address`, at); return; }
      if (!d.pingNodes.includes(v)) d.pingNodes.push(v);
    }
  }

  function applyWholeLine(name: string, rest: string, at: Location): void {
    const w = rest.split(/\s+/);
    switch (name) {
      case 'mcast': {
        if (w.length !== 5) {
          err('E_HACF_BAD_MEDIUM', `mcast needs 5 fields (dev group port ttl loop), got ${w.length}`, at, 'e.g. mcast eth0 225.0.0.1 694 1 0');
          return;
        }
        const [dev, group, port, ttl, loop] = w as [string, string, string, string, string];
        const problems0 = problems.length;
        if (!IFNAME.test(dev)) err('E_HACF_BAD_MEDIUM', `[${dev}] is not an interface name`, at);
        if (!isMulticast4(group)) err('E_HACF_BAD_MEDIUM', `[${group}] is not an IPv4 multicast group (224.0.0.0-239.255.255.255)`, at);
        if (!/^\d+$/.test(port) || Number(port) < 1 || Number(port) > 65535) err('E_HACF_BAD_MEDIUM', `invalid port [${port}]`, at);
        if (!/^\d+$/.test(ttl) || Number(ttl) > 255) err('E_HACF_BAD_MEDIUM', `invalid ttl [${ttl}]`, at, 'ttl is 0..255');
        if (loop !== '0' && loop !== '1') err('E_HACF_BAD_MEDIUM', `invalid loop [${loop}]`, at, 'loop is 0 or 1');
        if (problems.length > problems0) return;
        d.media.push({ type: 'mcast', dev, group, port: Number(port), ttl: Number(ttl), loop: loop === '1', at });
        return;
      }
      case 'ucast': {
        if (w.length !== 2) { err('E_HACF_BAD_MEDIUM', `ucast needs 2 fields (dev peer-address), got ${w.length}`, at, 'one peer per ucast line: ucast eth0 10.0.0.2'); return; }
        const [dev, peer] = w as [string, string];
        if (!IFNAME.test(dev)) { err('E_HACF_BAD_MEDIUM', `[${dev}] is not an interface name`, at); return; }
        if (!isIPv4(peer)) { err('E_HACF_BAD_MEDIUM', `[${peer}] is not an IPv4 address`, at, 'tandem takes the peer as an address, not a host name'); return; }
        d.media.push({ type: 'ucast', dev, peer, port: d.udpport, at });
        d.udpMediaAt ??= at;
        return;
      }
      case 'ping_group': {
        const [gname, ...addrs] = w;
        if (!gname || addrs.length === 0) { err('E_HACF_BAD_MEDIUM', 'ping_group needs a name and at least one address', at); return; }
        const badAddr = addrs.find((a) => !isIPv4(a));
        if (badAddr) { err('E_HACF_BAD_MEDIUM', `ping_group ${gname}: [${badAddr}] is not an IPv4 address`, at); return; }
        d.pingGroups.push({ name: gname, addresses: Object.freeze(addrs), at });
        return;
      }
      case 'respawn': {
        const [user, command, ...args] = w;
        if (!user || !command) { err('E_HACF_RESPAWN', 'respawn needs a user and a program', at, 'e.g. respawn hacluster /usr/lib/heartbeat/ipfail'); return; }
        if (!command.startsWith('/')) {
          err('E_HACF_RESPAWN', `Client child command [${[command, ...args].join(' ')}] is not full pathname`, at, 'give the absolute path of the program');
          return;
        }
        if (basename(command) === 'ipfail') {
          d.ipfail = true;
          return;
        }
        d.respawn.push({ user, command, args: Object.freeze(args), at });
        return;
      }
      case 'apiauth': {
        const [client, ...specs] = w;
        const uids: string[] = [];
        const gids: string[] = [];
        for (const s of specs) {
          const m = /^(uid|gid)=(.*)$/.exec(s);
          if (!m) { err('E_HACF_APIAUTH', `Invalid apiauth directive [${rest}]: [${s}] is not uid=... or gid=...`, at); return; }
          (m[1] === 'uid' ? uids : gids).push(...m[2]!.split(',').filter((x) => x !== ''));
        }
        if (uids.length === 0 && gids.length === 0) {
          err('E_HACF_APIAUTH', `Invalid apiauth directive [${rest}]`, at, 'give uid=user[,user] or gid=group[,group] (one or the other must be specified)');
          return;
        }
        d.apiauth.push({ client: client!, uids: Object.freeze(uids), gids: Object.freeze(gids), at });
        return;
      }
      case 'env': {
        const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(rest);
        if (!m) { err('E_HACF_BAD_VALUE', `env [${rest}] is not NAME=value`, at); return; }
        d.env.set(m[1]!, m[2]!);
        return;
      }
    }
  }

  // Whole-file checks, with the real daemon's messages where it has them.
  const keepalive = d.keepalive ?? 1000;
  const deadtime = d.deadtime ?? 30_000;
  const whole = (...names: string[]): Location | undefined => {
    for (const n of names) { const l = lastAt.get(n); if (l) return l; }
    return undefined;
  };
  if (deadtime <= 2 * keepalive) {
    err('E_HACF_TIMING', `Dead time [${deadtime}] is too small compared to keeplive [${keepalive}]`, whole('deadtime', 'keepalive'), 'deadtime must be more than twice keepalive');
  }
  const initdead = d.initdead ?? (deadtime > 10_000 ? deadtime : deadtime < 6000 ? 12_000 : 2 * deadtime);
  if (initdead < deadtime) {
    err('E_HACF_TIMING', `Initial dead time [${initdead}] is smaller than deadtime [${deadtime}]`, whole('initdead', 'deadtime'), 'initdead must be at least deadtime');
  } else if (d.initdead !== undefined && initdead < 10_000) {
    warn('E_HACF_TIMING', `Initial dead time [${initdead} ms] may be too small!`, whole('initdead'), 'initdead covers the time until the peer is first heard; 10 s or more is safe');
  }
  const deadping = d.deadping ?? deadtime;
  if (d.deadping !== undefined && deadping <= 2 * keepalive) {
    err('E_HACF_TIMING', `Dead ping [${deadping}] is too small compared to keeplive [${keepalive}]`, whole('deadping'), 'deadping must be more than twice keepalive');
  }
  const warntime = d.warntime ?? Math.floor(deadtime / 2);
  const autoFailback = d.autoFailback ?? 'legacy';
  if (autoFailback === 'legacy') {
    warn('E_HACF_DEPRECATED', "Deprecated 'legacy' auto_failback option selected.", whole('auto_failback', 'nice_failback'), "write 'auto_failback on' (legacy behaves like on)");
  }
  if (d.media.length === 0) err('E_HACF_NO_MEDIA', `No heartbeat media defined in ${file}`, undefined, 'add a bcast, mcast, ucast or serial line');
  if (autojoin !== 'none') {
    err('E_HACF_AUTOJOIN', 'R1 style resource management conflicts with autojoin set', autojoinAt, 'remove autojoin and list the nodes with node lines');
  } else if (d.nodes.length === 0) {
    err('E_HACF_NO_NODES', `no nodes defined in ${file}`, undefined, 'add a node line for each director, named as uname -n prints it');
  }

  problems.sort((a, b) => (a.location?.line ?? Infinity) - (b.location?.line ?? Infinity));
  if (problems.some((p) => p.severity === 'error')) return { config: undefined, problems };
  const config: HaConfig = deepFreeze({
    file,
    nodes: d.nodes,
    timing: { keepaliveMs: keepalive, deadtimeMs: deadtime, warntimeMs: warntime, initdeadMs: initdead },
    keepaliveMs: keepalive,
    deadtimeMs: deadtime,
    warntimeMs: warntime,
    initdeadMs: initdead,
    deadpingMs: deadping,
    autoFailback,
    hopfudge: d.hopfudge,
    cluster: d.cluster,
    autojoin: 'none',
    uuidfrom: d.uuidfrom,
    hbgenmethod: d.hbgenmethod,
    udpport: d.udpport,
    baud: d.baud,
    media: d.media,
    pingNodes: d.pingNodes,
    pingGroups: d.pingGroups,
    logfile: d.logfile,
    debugfile: d.debugfile,
    logfacility: d.logfacility,
    connLogdTimeMs: d.connLogdTimeMs,
    syslogmsgfmt: d.syslogmsgfmt,
    debug: d.debug,
    logBadpack: d.logBadpack,
    coredumps: d.coredumps,
    coreroot: d.coreroot,
    realtime: d.realtime,
    rtprio: d.rtprio,
    memreserveKb: d.memreserveKb,
    respawn: d.respawn,
    ipfail: d.ipfail,
    apiauth: d.apiauth,
    msgfmt: d.msgfmt,
    compression: d.compression,
    compressionThresholdKb: d.compressionThresholdKb,
    traditionalCompression: d.traditionalCompression,
    maxRexmitDelayMs: d.maxRexmitDelayMs,
    env: d.env,
  });
  return { config, problems };
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    if (o instanceof Map) {
      for (const v of o.values()) deepFreeze(v);
      const m = o as unknown as Map<unknown, unknown>;
      m.set = m.delete = () => { throw new TypeError('frozen map'); };
      m.clear = () => { throw new TypeError('frozen map'); };
    } else for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

// ---------------------------------------------------------------------------------------------
// Machine-dependent checks

/** What the machine offers; injected so the checks are testable. */
export interface MachineFacts {
  /** This node's name: the first line of `nodeinfo` in the config dir, else `uname -n`, lower-cased. */
  nodeName: string;
  interfaces: ReadonlySet<string>;
  exists(path: string): boolean;
  executable(path: string): boolean;
  userExists(user: string): boolean;
}

export function realMachineFacts(configDir = '/etc/ha.d'): MachineFacts {
  let nodeName = hostname();
  try {
    const first = readFileSync(`${configDir}/nodeinfo`, 'utf8').split('\n')[0]!.trim();
    if (first) nodeName = first;
  } catch { /* no nodeinfo: uname -n */ }
  let interfaces: Set<string>;
  try {
    interfaces = new Set(readdirSync('/sys/class/net'));
  } catch {
    interfaces = new Set();
  }
  let users: Set<string> | undefined;
  return {
    nodeName: nodeName.toLowerCase(),
    interfaces,
    exists: (p) => existsSync(p),
    executable: (p) => {
      try { accessSync(p, fsConstants.X_OK); return true; } catch { return false; }
    },
    userExists: (u) => {
      if (/^\d+$/.test(u)) return true;
      users ??= new Set(readFileSync('/etc/passwd', 'utf8').split('\n').map((l) => l.split(':')[0]!).filter(Boolean));
      return users.has(u);
    },
  };
}

/**
 * Problems that depend on the machine, as errors; `heartbeat configtest` prints them as warnings,
 * `heartbeat start` refuses to start on them.
 */
export function checkMachine(cfg: HaConfig, m: MachineFacts): Problem[] {
  const out: Problem[] = [];
  const e = (code: string, message: string, location: Location | undefined, hint?: string): void => {
    out.push({ severity: 'error', code, message, location, hint });
  };
  if (!cfg.nodes.includes(m.nodeName)) {
    e('E_HACF_LOCAL_NODE', `Current node [${m.nodeName}] not in configuration ${cfg.file}!`, undefined,
      `add "node ${m.nodeName}" (nodes are named by uname -n, or by the first line of nodeinfo in the config dir)`);
  }
  for (const md of cfg.media) {
    if (md.type === 'serial') {
      if (!m.exists(md.device)) e('E_HACF_NO_DEVICE', `serial device ${md.device} does not exist`, md.at);
    } else if (!m.interfaces.has(md.dev)) {
      const dym = didYouMean(md.dev, m.interfaces);
      e('E_HACF_NO_INTERFACE', `interface ${md.dev} does not exist on this machine`, md.at, dym ? `did you mean ${dym}?` : `interfaces here: ${[...m.interfaces].join(', ')}`);
    }
  }
  for (const r of cfg.respawn) {
    if (!m.userExists(r.user)) e('E_HACF_RESPAWN', `Invalid uid [${r.user}] specified for client child`, r.at, 'the user must exist on this machine');
    if (!m.executable(r.command)) e('E_HACF_RESPAWN', `respawn program ${r.command} is missing or not executable`, r.at);
  }
  return out;
}

/** Reads and parses a file; a read failure is a TandemError (E_CONF_READ). */
export function loadHaCf(file: string): HaCfResult {
  let content: string;
  try {
    content = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new TandemError('E_CONF_READ', `cannot read ${file}: ${(cause as Error).message}`, { cause, hint: 'check the path and its permissions' });
  }
  return parseHaCf(content, file);
}
