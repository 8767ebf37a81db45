import { createHash } from 'node:crypto';
import { accessSync, constants, existsSync, readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { hostname as osHostname } from 'node:os';
import { isIPv4, isIPv6 } from 'node:net';
import { ConfigError, ProblemSink, TandemError, type Location, type Problem } from '@tandem/core/errors';
import { didYouMean } from '@tandem/core/text';
import { endpoint, serviceId, type Forwarding, type ServiceKey } from '@tandem/ipvs/model';
import type { CheckSpec, CheckType, ServiceName } from './checks/types.ts';
import { resolveMissing, systemNameTables, type NameTables } from './resolve.ts';

/**
 * ldirectord.cf, every directive of ldirectord 4.12 (reference/ldirectord.md §2), parsed into a
 * frozen config: global settings, one entry per virtual service with its effective settings, one
 * entry per real server with the CheckSpec its checker runs. Parsing is pure (names are resolved
 * from tables prepared beforehand); every problem is collected with file, line and directive.
 *
 * Syntax, as ldirectord reads it: `directive=value`; a line `virtual=` or `virtual6=` in column 0
 * opens a section whose lines are indented; globals start in column 0. Where ldirectord 4.12 is
 * needlessly strict or buggy tandem accepts the line and says so with an E_LDCF_COMPAT warning
 * (blank lines inside a section, `#` inside quotes, trailing comments on globals, short indents,
 * `Yes`, missing quotes), and never gives a line ldirectord accepts another meaning without one.
 */

export type EmailAlertState = 'starting' | 'running' | 'stopping' | 'reloading';
const DAEMON_STATES: readonly EmailAlertState[] = ['starting', 'running', 'stopping', 'reloading'];

export const SERVICES: readonly ServiceName[] = [
  'dns', 'ftp', 'http', 'https', 'http_proxy', 'imap', 'imaps', 'ldap', 'ldaps', 'mysql', 'nntp', 'none', 'oracle',
  'pgsql', 'pop', 'pops', 'radius', 'simpletcp', 'sip', 'smtp', 'submission',
];

/** The service ldirectord assumes from the virtual port when service= is absent. */
const SERVICE_BY_PORT: Record<number, ServiceName> = {
  21: 'ftp', 25: 'smtp', 53: 'dns', 80: 'http', 110: 'pop', 119: 'nntp', 143: 'imap', 389: 'ldap', 443: 'https',
  587: 'submission', 636: 'ldaps', 993: 'imaps', 995: 'pops', 1521: 'oracle', 1812: 'radius', 3128: 'http_proxy',
  3306: 'mysql', 5060: 'sip', 5432: 'pgsql',
};

/** The port a check uses when neither checkport nor the real's port is given. */
const PORT_BY_SERVICE: Partial<Record<ServiceName, number>> = {
  ftp: 21, smtp: 25, dns: 53, http: 80, https: 443, http_proxy: 3128, pop: 110, pops: 995, imap: 143, imaps: 993,
  nntp: 119, ldap: 389, ldaps: 636, mysql: 3306, pgsql: 5432, oracle: 1521, radius: 1812, sip: 5060, submission: 587,
};

/** syslog(3) facility names, for `logfile=` values that are not paths. */
const SYSLOG_FACILITY_NAMES = [
  'kern', 'user', 'mail', 'daemon', 'auth', 'syslog', 'lpr', 'news', 'uucp', 'cron', 'authpriv', 'ftp',
  'local0', 'local1', 'local2', 'local3', 'local4', 'local5', 'local6', 'local7',
];

export const KNOWN_SCHEDULERS = ['rr', 'wrr', 'lc', 'wlc', 'lblc', 'lblcr', 'dh', 'sh', 'sed', 'nq', 'fo', 'ovf', 'mh', 'twos'];

export interface LdFallback {
  address: string;
  /** Port as configured (the virtual's port when omitted). */
  port: number;
  /** Port as IPVS stores it (gate/ipip on an address virtual: the virtual's port). */
  ipvsPort: number;
  forwarding: Forwarding;
}

export interface LdReal {
  /** Stable id: `<virtual id>/<address:port as configured>`. */
  id: string;
  virtualId: string;
  address: string;
  /** Port as configured, 0 when omitted. */
  port: number;
  /** Port as IPVS stores it: ipvsadm rewrites gate/ipip destinations of address virtuals to the virtual port. */
  ipvsPort: number;
  forwarding: Forwarding;
  weight: number;
  upperThreshold: number;
  lowerThreshold: number;
  check: CheckSpec;
  location: Location;
}

export interface LdVirtual {
  /** serviceId of key: `tcp 127.0.0.100:80`, `fwm 5`. */
  id: string;
  key: ServiceKey;
  /** As ldirectord prints it in log lines: `127.0.0.100:80`, `[::1]:80`, `5` for a fwmark. */
  label: string;
  protocol: 'tcp' | 'udp' | 'fwm';
  family: 'inet' | 'inet6';
  scheduler: string;
  persistent?: number | undefined;
  netmask?: string | undefined;
  schedFlags?: string[] | undefined;
  ops: boolean;
  service: ServiceName;
  checktype: CheckType;
  combinedConnects?: number | undefined;
  checkIntervalMs: number;
  checkTimeoutMs: number;
  negotiateTimeoutMs: number;
  failureCount: number;
  quiescent: boolean;
  cleanstop: boolean;
  fallback?: LdFallback | undefined;
  /** Shell text run as `<cmd> start|stop <vip>:<vport> <protocol>`. */
  fallbackCommand?: string | undefined;
  emailAlert: string[];
  emailAlertFreqS: number;
  emailAlertStatus: EmailAlertState[];
  smtp?: string | undefined;
  monitorfile?: string | undefined;
  servicename?: string | undefined;
  comment?: string | undefined;
  load?: string | undefined;
  reals: LdReal[];
  location: Location;
}

export interface LdGlobal {
  checkIntervalMs: number;
  checkTimeoutMs?: number | undefined;
  negotiateTimeoutMs?: number | undefined;
  checkCount: number;
  failureCount: number;
  autoreload: boolean;
  callback?: string | undefined;
  /** A path (leading /) or a syslog facility name. */
  logfile: string;
  emailAlert: string[];
  emailAlertFreqS: number;
  emailAlertStatus: EmailAlertState[];
  emailAlertFrom?: string | undefined;
  smtp?: string | undefined;
  execute: string[];
  fork: boolean;
  supervised: boolean;
  quiescent: boolean;
  readdQuiescent: boolean;
  cleanstop: boolean;
  maintenanceDir?: string | undefined;
  fallbackCommand?: string | undefined;
}

export interface LdConfig {
  file: string;
  global: LdGlobal;
  virtuals: LdVirtual[];
  /** Warnings (a config with errors is never produced). */
  problems: Problem[];
  /** sha256 of the file content, for autoreload. */
  digest: string;
}

export interface ParseEnv {
  names?: NameTables | undefined;
  /** For ftp/sip defaults (`ldirectord@HOST`). */
  hostname?: string | undefined;
  exists?: ((path: string) => boolean) | undefined;
  writable?: ((path: string) => boolean) | undefined;
}

export interface ParseResult {
  config?: LdConfig | undefined;
  problems: Problem[];
  /** Host names the tables could not resolve (loadConfig asks DNS for them and parses again). */
  unresolved: string[];
}

// ---------------------------------------------------------------------------------------------
// Directive tables

const GLOBAL_ONLY = ['autoreload', 'callback', 'logfile', 'emailalertfrom', 'execute', 'fork', 'supervised', 'readdquiescent', 'maintenancedir'] as const;
const SHARED = [
  'checktimeout', 'negotiatetimeout', 'checkinterval', 'checkcount', 'failurecount', 'fallback', 'fallback6', 'fallbackcommand',
  'quiescent', 'cleanstop', 'emailalert', 'emailalertfreq', 'emailalertstatus', 'smtp', 'connecttimeout', 'timeout',
] as const;
const SECTION_ONLY = [
  'real', 'real6', 'service', 'checktype', 'checkport', 'checkcommand', 'request', 'receive', 'httpmethod', 'virtualhost',
  'login', 'passwd', 'database', 'secret', 'scheduler', 'persistent', 'netmask', 'schedflags', 'protocol', 'ops',
  'monitorfile', 'servicename', 'comment', 'load',
] as const;
const OPENERS = ['virtual', 'virtual6'] as const;
export const ALL_DIRECTIVES: readonly string[] = [...OPENERS, ...GLOBAL_ONLY, ...SHARED, ...SECTION_ONLY];
const GLOBAL_SET = new Set<string>([...GLOBAL_ONLY, ...SHARED]);
const SECTION_SET = new Set<string>([...SHARED, ...SECTION_ONLY]);
/** Directives that may appear several times in one scope, each adding something. */
const REPEATABLE = new Set(['real', 'real6', 'execute']);

interface Pos {
  loc: Location;
}

/** Settings that exist both globally and per virtual; undefined = not given in that scope. */
interface Scope {
  checkTimeoutMs?: number;
  negotiateTimeoutMs?: number;
  checkIntervalMs?: number;
  checkCount?: number;
  failureCount?: number;
  fallback?: RawFallback;
  fallback6?: RawFallback;
  fallbackCommand?: string;
  quiescent?: boolean;
  cleanstop?: boolean;
  emailAlert?: string[];
  emailAlertFreqS?: number;
  emailAlertStatus?: EmailAlertState[];
  smtp?: string;
}

interface RawFallback extends Pos {
  host: string;
  bracketed: boolean;
  port?: string | undefined;
  forwarding: Forwarding;
}

interface RawReal extends Pos {
  /** Expanded addresses, already literal (or a host name to resolve). */
  hosts: { text: string; bracketed: boolean }[];
  six: boolean;
  port?: string | undefined;
  forwarding: Forwarding;
  weight: number;
  upper: number;
  lower: number;
  request?: string | undefined;
  receive?: string | undefined;
}

interface RawVirtual extends Pos {
  six: boolean;
  fwmark?: number;
  host?: string;
  bracketed: boolean;
  port?: string;
  scope: Scope;
  reals: RawReal[];
  service?: ServiceName;
  checktype?: CheckType;
  combinedConnects?: number;
  checkport?: number;
  checkcommand?: string;
  request?: string;
  receive?: string;
  httpMethod?: 'GET' | 'HEAD';
  virtualHost?: string;
  login?: string;
  passwd?: string;
  database?: string;
  secret?: string;
  scheduler?: string;
  persistent?: number;
  netmask?: string;
  netmaskLoc?: Location;
  schedFlags?: string[];
  protocol?: 'tcp' | 'udp' | 'fwm';
  protocolLoc?: Location;
  ops?: boolean;
  monitorfile?: string;
  servicename?: string;
  comment?: string;
  load?: string;
  seen: Set<string>;
}

interface GlobalOnly {
  autoreload?: boolean;
  callback?: string;
  logfile?: string;
  emailAlertFrom?: string;
  execute: string[];
  fork?: boolean;
  supervised?: boolean;
  readdQuiescent?: boolean;
  maintenanceDir?: string;
  seen: Set<string>;
}

// ---------------------------------------------------------------------------------------------
// Lexical helpers

/**
 * Removes a comment. Inside a section ldirectord strips from the first `#` even inside quotes
 * (which breaks `request="/a#b"`); tandem strips from the first `#` outside double quotes. Global
 * lines are not comment-stripped by ldirectord at all; tandem strips a `#` that follows white space
 * (so `checkinterval=1 # every second` and `quiescent=yes # x` both work) and keeps `a#b`.
 */
function stripComment(text: string, inSection: boolean): { text: string; quotedHash: boolean; trailingComment: boolean } {
  let inQuote = false;
  let quotedHash = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') inQuote = !inQuote;
    else if (c === '#') {
      if (inQuote) {
        quotedHash = true;
        continue;
      }
      if (inSection || i === 0 || /\s/.test(text[i - 1]!)) {
        return { text: text.slice(0, i).trimEnd(), quotedHash, trailingComment: text.slice(0, i).trim() !== '' };
      }
    }
  }
  return { text: text.trimEnd(), quotedHash, trailingComment: false };
}

/** Width of leading white space as ldirectord measures it: a tab counts as 4 spaces. */
function indentOf(raw: string): { width: number; hasTab: boolean } {
  const lead = /^[ \t]*/.exec(raw)![0];
  let width = 0;
  for (const ch of lead) width += ch === '\t' ? 4 : 1;
  return { width, hasTab: lead.includes('\t') };
}

/** Tokens of a real=/fallback= value: words and "quoted strings", commas as separators. */
function tokenize(text: string): { tokens: { text: string; quoted: boolean }[]; error?: string } {
  const tokens: { text: string; quoted: boolean }[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (isSeparator(text.charCodeAt(i))) {
      i++;
      continue;
    }
    if (c === '"') {
      const end = text.indexOf('"', i + 1);
      if (end < 0) return { tokens, error: `unterminated quote in ${text.slice(i)}` };
      tokens.push({ text: text.slice(i + 1, end), quoted: true });
      i = end + 1;
      continue;
    }
    let j = i;
    while (j < text.length && !isSeparator(text.charCodeAt(j)) && text.charCodeAt(j) !== 34) j++;
    tokens.push({ text: text.slice(i, j), quoted: false });
    i = j;
  }
  return { tokens };
}

/** White space (as \s: ASCII and Unicode) or a comma; by code, as a regex per character costs 10,000 real= lines dearly. */
function isSeparator(code: number): boolean {
  if (code === 44 || code === 32 || (code >= 9 && code <= 13)) return true;
  return code > 127 && /\s/.test(String.fromCharCode(code));
}

function ipv4ToInt(a: string): number {
  return a.split('.').reduce((n, o) => n * 256 + Number(o), 0);
}
function intToIpv4(n: number): string {
  return [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}
function canonical6(a: string): string {
  return new URL(`http://[${a}]/`).hostname.slice(1, -1);
}
function canonical4(a: string): string {
  // Only leading zeros need rewriting (010.0.0.1 → 10.0.0.1); most addresses are already canonical.
  return /(^|\.)0\d/.test(a) ? a.split('.').map((o) => String(Number(o))).join('.') : a;
}

const MAX_RANGE = 65536;

// ---------------------------------------------------------------------------------------------
// The parser

class Parser {
  readonly sink: ProblemSink;
  readonly file: string;
  readonly env: Required<ParseEnv>;
  readonly unresolved = new Set<string>();
  readonly global: Scope = {};
  readonly gonly: GlobalOnly = { execute: [], seen: new Set() };
  readonly globalSeen = new Set<string>();
  readonly virtuals: RawVirtual[] = [];

  constructor(file: string, env: Required<ParseEnv>) {
    this.file = file;
    this.sink = new ProblemSink(file);
    this.env = env;
  }

  error(code: string, loc: Location, message: string, hint?: string): void {
    this.sink.error(code, message, loc, hint);
  }
  warn(code: string, loc: Location, message: string, hint?: string): void {
    this.sink.warn(code, message, loc, hint);
  }
  compat(loc: Location, message: string, hint?: string): void {
    this.sink.warn('E_LDCF_COMPAT', message, loc, hint);
  }

  parse(content: string): void {
    const lines = content.split(/\r?\n/);
    let section: RawVirtual | undefined;
    let blankSince = 0;
    for (let i = 0; i < lines.length; i++) {
      const raw = lines[i]!;
      const lineNo = i + 1;
      const loc0: Location = { file: this.file, line: lineNo };
      if (/^\s*#/.test(raw)) continue;
      if (raw.trim() === '') {
        if (section && blankSince === 0) blankSince = lineNo;
        continue;
      }
      const { width, hasTab } = indentOf(raw);
      const indented = width > 0;
      const inSection = indented && section !== undefined;
      const stripped = stripComment(raw.trim(), indented);
      const text = stripped.text;
      if (text === '') continue;
      const m = /^([A-Za-z0-9_-]+)\s*(?:=\s*(.*))?$/.exec(text);
      const word = m ? m[1]! : text.split(/[\s=]/)[0]!;
      const directive = word.toLowerCase();
      const loc: Location = { ...loc0, directive: word };
      if (stripped.quotedHash && inSection) {
        this.compat(loc, 'a "#" inside a quoted value is kept; ldirectord 4.12 cuts the line there and rejects it');
      }
      if (stripped.trailingComment && !indented) {
        this.compat(loc, 'trailing comment removed; ldirectord 4.12 does not strip comments from global lines');
      }
      if (!m) {
        if (ALL_DIRECTIVES.includes(directive)) this.error('E_LDCF_SYNTAX', loc, `expected ${word}=value, got "${text}"`);
        else this.unknown(loc, word, text);
        continue;
      }
      if (word !== directive) {
        // ldirectord matches directives case-sensitively; `Real=` is an unknown command there.
        this.compat(loc, `directive written as "${word}"; ldirectord 4.12 only knows "${directive}"`);
      }
      const value = m[2];

      if ((OPENERS as readonly string[]).includes(directive)) {
        if (indented) this.compat(loc, `indented ${directive}= line; ldirectord 4.12 wants it in column 0`);
        section = this.openSection(directive === 'virtual6', value ?? '', loc);
        blankSince = 0;
        continue;
      }

      if (!indented) {
        section = undefined;
        blankSince = 0;
        this.globalLine(directive, value, loc);
        continue;
      }

      // An indented line.
      if (!section) {
        if (GLOBAL_SET.has(directive)) {
          this.compat(loc, `indented global directive ${directive}; ldirectord 4.12 wants global lines in column 0`);
          this.globalLine(directive, value, loc);
        } else if (SECTION_SET.has(directive)) {
          this.error('E_LDCF_INDENT', loc, `${directive} belongs to a virtual section, but no virtual= line comes before it`, 'start the section with virtual=ip:port in column 0');
        } else {
          this.unknown(loc, word, text);
        }
        continue;
      }
      if (blankSince > 0) {
        this.compat(loc, `blank line ${blankSince} inside the section of virtual= line ${section.loc.line}; ldirectord 4.12 ends the section at a blank line and rejects this line`);
        blankSince = 0;
      }
      if (width < 4 && !hasTab) this.compat(loc, `indented by ${width} space(s); ldirectord 4.12 needs at least 4 spaces or a tab`);
      this.sectionLine(section, directive, value, loc);
    }
  }

  unknown(loc: Location, word: string, text: string): void {
    const guess = didYouMean(word, ALL_DIRECTIVES);
    this.error('E_LDCF_UNKNOWN_DIRECTIVE', loc, `unknown directive "${word}" in "${text}"`, guess ? `did you mean ${guess}?` : 'see the directive table in packages/ldirectord/README.md');
  }

  // -- values -----------------------------------------------------------------------------------

  /** A value that ldirectord wants in double quotes; unquoted is accepted with a warning. */
  quoted(value: string, loc: Location, required: boolean): string | undefined {
    const v = value.trim();
    if (v.startsWith('"')) {
      const end = v.indexOf('"', 1);
      if (end < 0) {
        this.error('E_LDCF_QUOTE', loc, `no closing quote in ${v}`);
        return undefined;
      }
      if (v.slice(end + 1).trim() !== '') {
        this.error('E_LDCF_SYNTAX', loc, `unexpected text after the closing quote: ${v.slice(end + 1).trim()}`);
        return undefined;
      }
      return v.slice(1, end);
    }
    if (required) this.compat(loc, `value should be in double quotes ("${v}"); ldirectord 4.12 requires them`);
    return v;
  }

  bool(value: string, loc: Location): boolean | undefined {
    const v = value.trim();
    if (v === 'yes') return true;
    if (v === 'no') return false;
    const lower = v.toLowerCase();
    if (lower === 'yes' || lower === 'no') {
      this.compat(loc, `"${v}" read as ${lower}; ldirectord 4.12 only accepts lower-case yes or no`);
      return lower === 'yes';
    }
    this.error('E_LDCF_BOOL', loc, `${loc.directive} must be 'yes' or 'no', got "${v}"`);
    return undefined;
  }

  /** A whole number in [min, max]. Junk after the digits is ignored as ldirectord does, with a warning. */
  int(value: string, loc: Location, min: number, max: number, what: string): number | undefined {
    const v = value.trim();
    let m = /^(\d+)$/.exec(v);
    if (!m) {
      m = /^(\d+)/.exec(v);
      if (m) this.compat(loc, `"${v.slice(m[1]!.length)}" after ${m[1]} ignored, as ldirectord 4.12 does`);
    }
    if (!m) {
      this.error('E_LDCF_NUMBER', loc, `invalid ${what} "${v}": expected a whole number from ${min} to ${max}`);
      return undefined;
    }
    const n = Number(m[1]);
    if (n < min || n > max) {
      this.error('E_LDCF_NUMBER', loc, `invalid ${what} ${n}: must be from ${min} to ${max}`);
      return undefined;
    }
    return n;
  }

  /**
   * A duration > 0 in ms. ldirectord takes whole seconds; tandem also takes `1.5`, `500ms`, `2s`
   * (a value ldirectord would read differently gets a warning that says how).
   */
  seconds(value: string, loc: Location, what: string): number | undefined {
    const v = value.trim();
    const m = /^(\d+(?:\.\d+)?|\.\d+)\s*(ms|msec|s|sec)?$/i.exec(v);
    if (!m) {
      const lead = /^(\d+)/.exec(v);
      if (lead && Number(lead[1]) > 0) {
        this.compat(loc, `"${v}" read as ${lead[1]} seconds, as ldirectord 4.12 does`);
        return Number(lead[1]) * 1000;
      }
      this.error('E_LDCF_NUMBER', loc, `invalid ${what} value "${v}": expected seconds (e.g. 5, 1.5, 500ms)`);
      return undefined;
    }
    const n = Number(m[1]);
    const unit = (m[2] ?? 's').toLowerCase();
    const ms = Math.round(unit.startsWith('m') ? n : n * 1000);
    if (!(ms > 0)) {
      this.error('E_LDCF_NUMBER', loc, `invalid ${what} value "${v}": must be greater than zero`);
      return undefined;
    }
    if (m[2] !== undefined || !/^\d+$/.test(m[1]!)) {
      const legacy = /^(\d+)/.exec(m[1]!)?.[1];
      this.compat(loc, `${what} of ${ms} ms; ldirectord 4.12 takes whole seconds only and would read ${legacy && Number(legacy) > 0 ? `${legacy} s` : 'this as an error'}`);
    }
    return ms;
  }

  // -- addresses ----------------------------------------------------------------------------------

  /** Resolves a host (literal or name) to one address of the family; undefined after reporting. */
  address(text: string, bracketed: boolean, family: 'inet' | 'inet6', loc: Location, what: string): string | undefined {
    if (bracketed) {
      if (!isIPv6(text)) {
        this.error('E_LDCF_HOST', loc, `${what} [${text}] is not an IPv6 address`);
        return undefined;
      }
      if (family !== 'inet6') {
        this.error('E_LDCF_HOST', loc, `${what} [${text}] is IPv6 but the virtual service is IPv4`, 'use virtual6= for IPv6 services');
        return undefined;
      }
      return canonical6(text);
    }
    if (isIPv4(text)) {
      if (family !== 'inet') {
        this.error('E_LDCF_HOST', loc, `${what} ${text} is IPv4 but the virtual service is IPv6`);
        return undefined;
      }
      return canonical4(text);
    }
    if (isIPv6(text)) {
      this.error('E_LDCF_HOST', loc, `IPv6 ${what} must be written in brackets: [${text}]`);
      return undefined;
    }
    if (!/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(text)) {
      this.error('E_LDCF_HOST', loc, `${what} "${text}" is neither an address nor a host name`);
      return undefined;
    }
    const found = this.env.names.hosts.get(text.toLowerCase());
    if (!found) {
      this.unresolved.add(text);
      this.error('E_LDCF_HOST', loc, `${what} host name "${text}" does not resolve`, 'check /etc/hosts or DNS, or write the address');
      return undefined;
    }
    const pick = found.find((a) => (family === 'inet' ? isIPv4(a) : isIPv6(a)));
    if (!pick) {
      this.error('E_LDCF_HOST', loc, `${what} host name "${text}" has no ${family === 'inet' ? 'IPv4' : 'IPv6'} address`);
      return undefined;
    }
    return family === 'inet' ? canonical4(pick) : canonical6(pick);
  }

  /** A port number or a service name from /etc/services for the protocol. */
  port(text: string, proto: 'tcp' | 'udp', loc: Location, what: string): number | undefined {
    if (/^\d+$/.test(text)) {
      const n = Number(text);
      if (n > 65535) {
        this.error('E_LDCF_NUMBER', loc, `${what} port ${n} is out of range (0-65535)`);
        return undefined;
      }
      return n;
    }
    const n = this.env.names.services.get(`${text}/${proto}`) ?? this.env.names.services.get(`${text}/${proto === 'tcp' ? 'udp' : 'tcp'}`);
    if (n === undefined) {
      this.error('E_LDCF_SERVICE_NAME', loc, `${what} port "${text}" is not a known service name for ${proto}`, 'write the port number, or add the name to /etc/services');
      return undefined;
    }
    return n;
  }

  /** `host[:port]`, `[v6][:port]`; returns undefined after reporting. */
  hostPort(text: string, loc: Location, what: string): { host: string; bracketed: boolean; port?: string | undefined } | undefined {
    let m = /^\[([^\]]+)\](?::([A-Za-z0-9_-]+))?$/.exec(text);
    if (m) return { host: m[1]!, bracketed: true, port: m[2] };
    m = /^([^:[\]\s]+)(?::([A-Za-z0-9_-]+))?$/.exec(text);
    if (m) return { host: m[1]!, bracketed: false, port: m[2] };
    this.error('E_LDCF_REAL', loc, `${what} "${text}" is not host[:port] or [ipv6][:port]`);
    return undefined;
  }

  forwarding(text: string | undefined, loc: Location): Forwarding | undefined {
    if (text === 'gate' || text === 'masq' || text === 'ipip') return text;
    const lower = text?.toLowerCase();
    const alias: Record<string, Forwarding> = { route: 'gate', dr: 'gate', direct: 'gate', nat: 'masq', tun: 'ipip', tunnel: 'ipip', gate: 'gate', masq: 'masq', ipip: 'ipip' };
    const guess = lower ? alias[lower] ?? didYouMean(lower, ['gate', 'masq', 'ipip']) : undefined;
    this.error('E_LDCF_FORWARD', loc, `forward method must be gate, masq or ipip${text ? `, got "${text}"` : ' (it is missing)'}`, guess ? `did you mean ${guess}?` : 'gate = direct routing, masq = NAT, ipip = tunnel');
    return undefined;
  }

  // -- global lines -------------------------------------------------------------------------------

  globalLine(directive: string, value: string | undefined, loc: Location): void {
    if (SECTION_SET.has(directive) && !GLOBAL_SET.has(directive)) {
      this.error('E_LDCF_NOT_HERE', loc, `${directive} is only allowed inside a virtual section`, 'indent it under a virtual= line');
      return;
    }
    if (!GLOBAL_SET.has(directive)) {
      this.unknown(loc, loc.directive ?? directive, `${directive}=${value ?? ''}`);
      return;
    }
    if (value === undefined) {
      if (directive === 'supervised') {
        this.warn('E_LDCF_COMPAT', loc, 'a bare "supervised" means supervised=yes; please write supervised=yes');
        this.gonly.supervised = true;
        return;
      }
      this.error('E_LDCF_SYNTAX', loc, `expected ${directive}=value`);
      return;
    }
    if (!REPEATABLE.has(directive)) {
      if (this.globalSeen.has(directive)) this.warn('E_LDCF_COMPAT', loc, `${directive} given again; the later value wins`);
      this.globalSeen.add(directive);
    }
    if (this.scopeLine(this.global, directive, value, loc, true)) return;
    const g = this.gonly;
    switch (directive) {
      case 'autoreload': g.autoreload = this.bool(value, loc) ?? g.autoreload; break;
      case 'callback': {
        const v = this.quoted(value, loc, true);
        if (v) g.callback = v;
        break;
      }
      case 'logfile': {
        const v = this.quoted(value, loc, true);
        if (v === undefined) break;
        if (!v.startsWith('/') && !SYSLOG_FACILITY_NAMES.includes(v)) {
          const guess = didYouMean(v, SYSLOG_FACILITY_NAMES);
          this.error('E_LDCF_FILE', loc, `logfile "${v}" is neither an absolute path nor a syslog facility`, guess ? `did you mean ${guess}?` : 'use /var/log/ldirectord.log or a facility such as local0');
          break;
        }
        g.logfile = v;
        break;
      }
      case 'emailalertfrom': g.emailAlertFrom = this.quoted(value, loc, false); break;
      case 'execute': {
        const v = this.quoted(value, loc, false);
        if (v) g.execute.push(v);
        break;
      }
      case 'fork': {
        const v = this.bool(value, loc);
        if (v !== undefined) g.fork = v;
        if (v) this.warn('E_LDCF_NO_EFFECT', loc, 'fork=yes has no effect: tandem checks every real server concurrently in one process');
        break;
      }
      case 'supervised': g.supervised = this.bool(value, loc) ?? g.supervised; break;
      case 'readdquiescent': g.readdQuiescent = this.bool(value, loc) ?? g.readdQuiescent; break;
      case 'maintenancedir': {
        const v = this.quoted(value, loc, false);
        if (!v) break;
        g.maintenanceDir = v;
        if (!this.env.exists(v)) this.warn('E_LDCF_FILE', loc, `maintenance directory ${v} does not exist`, 'create it; real servers are forced down while a file named after them exists there');
        break;
      }
    }
  }

  /** Directives shared by both scopes; returns false when the directive is not one of them. */
  scopeLine(scope: Scope, directive: string, value: string, loc: Location, isGlobal: boolean): boolean {
    switch (directive) {
      case 'connecttimeout':
        this.error('E_LDCF_DEPRECATED', loc, 'connecttimeout directive deprecated in favour of negotiatetimeout', 'write negotiatetimeout= (negotiate checks) or checktimeout= (connect, ping, external)');
        return true;
      case 'timeout':
        this.error('E_LDCF_DEPRECATED', loc, 'timeout directive deprecated in favour of checktimeout and negotiatetimeout', 'write checktimeout= and/or negotiatetimeout=');
        return true;
      case 'checktimeout': {
        const v = this.seconds(value, loc, 'check timeout');
        if (v !== undefined) scope.checkTimeoutMs = v;
        return true;
      }
      case 'negotiatetimeout': {
        const v = this.seconds(value, loc, 'negotiate timeout');
        if (v !== undefined) scope.negotiateTimeoutMs = v;
        return true;
      }
      case 'checkinterval': {
        const v = this.seconds(value, loc, 'check interval');
        if (v !== undefined) scope.checkIntervalMs = v;
        return true;
      }
      case 'checkcount': {
        const v = this.int(value, loc, 1, 1000, 'checkcount');
        if (v !== undefined) scope.checkCount = v;
        this.warn('E_LDCF_COMPAT', loc, 'checkcount is deprecated (as in ldirectord); it only sets the number of ping attempts');
        return true;
      }
      case 'failurecount': {
        const v = this.int(value, loc, 1, 1_000_000, 'failurecount');
        if (v !== undefined) scope.failureCount = v;
        return true;
      }
      case 'fallback':
      case 'fallback6': {
        const fb = this.rawFallback(value, loc, directive === 'fallback6');
        if (fb) {
          if (directive === 'fallback6' || fb.bracketed) scope.fallback6 = fb;
          else scope.fallback = fb;
        }
        return true;
      }
      case 'fallbackcommand': {
        // ldirectord keeps the quotes of a global value (the shell removes them) and strips those
        // of a per-virtual value; both forms are kept as written here for the same effect.
        const v = isGlobal ? value.trim() : this.quoted(value, loc, false);
        if (v) scope.fallbackCommand = v;
        return true;
      }
      case 'quiescent': {
        const v = this.bool(value, loc);
        if (v !== undefined) scope.quiescent = v;
        return true;
      }
      case 'cleanstop': {
        const v = this.bool(value, loc);
        if (v !== undefined) scope.cleanstop = v;
        return true;
      }
      case 'emailalert': {
        const v = this.quoted(value, loc, false);
        if (v !== undefined) scope.emailAlert = v.split(/\s*,\s*/).map((s) => s.trim()).filter(Boolean);
        return true;
      }
      case 'emailalertfreq': {
        const v = this.int(value, loc, 0, 100_000_000, 'emailalertfreq');
        if (v !== undefined) scope.emailAlertFreqS = v;
        return true;
      }
      case 'emailalertstatus': {
        const v = this.emailStatus(value, loc);
        if (v) scope.emailAlertStatus = v;
        return true;
      }
      case 'smtp': {
        const v = this.quoted(value, loc, false);
        if (v) scope.smtp = v;
        return true;
      }
      default:
        return false;
    }
  }

  emailStatus(value: string, loc: Location): EmailAlertState[] | undefined {
    const parts = this.quoted(value, loc, false)?.split(/\s*,\s*/).map((s) => s.trim()).filter(Boolean) ?? [];
    if (parts.length === 0) {
      this.error('E_LDCF_EMAILSTATUS', loc, 'emailalertstatus is empty', 'all, none, or a list of starting,running,stopping,reloading');
      return undefined;
    }
    if (parts.includes('all')) return parts.length === 1 ? [...DAEMON_STATES] : this.emailStatusMix(loc, 'all', parts);
    if (parts.includes('none')) return parts.length === 1 ? [] : this.emailStatusMix(loc, 'none', parts);
    const out: EmailAlertState[] = [];
    for (const p of parts) {
      if ((DAEMON_STATES as readonly string[]).includes(p)) out.push(p as EmailAlertState);
      else {
        const guess = didYouMean(p, [...DAEMON_STATES, 'all', 'none']);
        this.error('E_LDCF_EMAILSTATUS', loc, `invalid email alert status "${p}"`, guess ? `did you mean ${guess}?` : 'all, none, starting, running, stopping, reloading');
        return undefined;
      }
    }
    return out;
  }

  emailStatusMix(loc: Location, word: string, parts: string[]): undefined {
    const other = parts.find((p) => p !== word);
    this.error('E_LDCF_EMAILSTATUS', loc, `invalid email alert status: "${other}" specified with "${word}"`);
    return undefined;
  }

  rawFallback(value: string, loc: Location, six: boolean): RawFallback | undefined {
    const { tokens, error } = tokenize(value.trim());
    if (error || tokens.length === 0) {
      this.error('E_LDCF_REAL', loc, error ?? 'fallback needs host[:port] [gate|masq|ipip]');
      return undefined;
    }
    const hp = this.hostPort(tokens[0]!.text, loc, 'fallback');
    if (!hp) return undefined;
    if (six && !hp.bracketed) {
      this.error('E_LDCF_REAL', loc, `fallback6 needs a bracketed IPv6 address, got ${tokens[0]!.text}`);
      return undefined;
    }
    let forwarding: Forwarding = 'gate';
    if (tokens.length > 1) {
      const f = this.forwarding(tokens[1]!.text, loc);
      if (!f) return undefined;
      forwarding = f;
    }
    if (tokens.length > 2) {
      this.error('E_LDCF_REAL', loc, `unexpected "${tokens.slice(2).map((t) => t.text).join(' ')}" after the fallback's forwarding method`, 'a fallback has no weight (it is always 1) and is never checked');
      return undefined;
    }
    return { ...hp, forwarding, loc };
  }

  // -- sections ---------------------------------------------------------------------------------

  openSection(six: boolean, value: string, loc: Location): RawVirtual {
    const v = stripComment(value, true).text.trim();
    const sec: RawVirtual = { six, bracketed: false, loc, scope: {}, reals: [], seen: new Set() };
    this.virtuals.push(sec);
    if (/^\d+$/.test(v)) {
      const mark = Number(v);
      if (mark < 1 || mark > 0xffffffff) this.error('E_LDCF_VIRTUAL', loc, `firewall mark ${v} is out of range (1-4294967295)`);
      sec.fwmark = mark;
      return sec;
    }
    let m = /^\[([^\]]+)\]:([A-Za-z0-9_-]+)$/.exec(v);
    if (m) {
      sec.host = m[1]!;
      sec.bracketed = true;
      sec.port = m[2]!;
      if (!six) sec.six = true;
      return sec;
    }
    m = /^([^:[\]\s]+):([A-Za-z0-9_-]+)$/.exec(v);
    if (m && !six) {
      sec.host = m[1]!;
      sec.port = m[2]!;
      return sec;
    }
    this.error(
      'E_LDCF_VIRTUAL', loc,
      six ? `virtual6 must be [ipv6]:port or a firewall mark, got "${v}"` : `virtual must be ip:port, [ipv6]:port, hostname:service or a firewall mark, got "${v}"`,
      'e.g. virtual=192.168.6.240:80, virtual6=[2001:db8::1]:80, virtual=1',
    );
    sec.host = undefined;
    return sec;
  }

  sectionLine(sec: RawVirtual, directive: string, value: string | undefined, loc: Location): void {
    if (!SECTION_SET.has(directive)) {
      if (GLOBAL_SET.has(directive)) this.error('E_LDCF_NOT_HERE', loc, `${directive} is a global directive and is not allowed inside a virtual section`, 'move it to column 0, before the first virtual= line');
      else this.unknown(loc, loc.directive ?? directive, `${directive}=${value ?? ''}`);
      return;
    }
    if (value === undefined) {
      this.error('E_LDCF_SYNTAX', loc, `expected ${directive}=value`);
      return;
    }
    if (!REPEATABLE.has(directive)) {
      if (sec.seen.has(directive)) this.warn('E_LDCF_COMPAT', loc, `${directive} given again in this section; the later value wins`);
      sec.seen.add(directive);
    }
    if (directive === 'timeout') {
      this.error('E_LDCF_DEPRECATED', loc, 'timeout directive deprecated in favour of checktimeout and negotiatetimeout');
      return;
    }
    if (this.scopeLine(sec.scope, directive, value, loc, false)) return;
    switch (directive) {
      case 'real':
      case 'real6': {
        if (directive === 'real6' && !sec.six) {
          this.error('E_LDCF_NOT_HERE', loc, 'cannot specify "real6" here.  please use "real" instead');
          return;
        }
        const r = this.rawReal(value, loc, directive === 'real6' || sec.six);
        if (r) sec.reals.push(r);
        return;
      }
      case 'service': {
        const v = value.trim();
        if ((SERVICES as readonly string[]).includes(v)) sec.service = v as ServiceName;
        else {
          const lower = v.toLowerCase();
          if ((SERVICES as readonly string[]).includes(lower)) {
            this.compat(loc, `service "${v}" read as ${lower}; ldirectord 4.12 only accepts lower case`);
            sec.service = lower as ServiceName;
          } else {
            const guess = didYouMean(v, SERVICES);
            this.error('E_LDCF_SERVICE', loc, `service must be ${SERVICES.slice(0, -1).join(', ')} or ${SERVICES.at(-1)}, got "${v}"`, guess ? `did you mean ${guess}?` : undefined);
          }
        }
        return;
      }
      case 'checktype': {
        const v = value.trim();
        const kinds = ['connect', 'negotiate', 'ping', 'external', 'external-perl', 'on', 'off'];
        if (kinds.includes(v)) sec.checktype = v as CheckType;
        else if (/^\d+$/.test(v)) {
          sec.checktype = 'combined';
          sec.combinedConnects = Number(v);
        } else if (kinds.includes(v.toLowerCase())) {
          this.compat(loc, `checktype "${v}" read as ${v.toLowerCase()}; ldirectord 4.12 only accepts lower case`);
          sec.checktype = v.toLowerCase() as CheckType;
        } else {
          const guess = didYouMean(v, kinds) ?? (v === 'negotiate_connect' ? '1 (one negotiate check, then N connect checks)' : v === 'tcp' ? 'connect' : undefined);
          this.error('E_LDCF_CHECKTYPE', loc, `checktype must be "connect", "negotiate", "on", "off", "ping", "external", "external-perl" or a positive number, got "${v}"`, guess ? `did you mean ${guess}?` : undefined);
        }
        return;
      }
      case 'checkport': {
        const v = this.int(value, loc, 1, 65535, 'checkport');
        if (v !== undefined) sec.checkport = v;
        return;
      }
      case 'checkcommand': {
        const v = this.quoted(value, loc, false);
        if (v) {
          sec.checkcommand = v;
          if (/\s/.test(v)) this.warn('E_LDCF_COMPAT', loc, `checkcommand "${v}" contains white space; like ldirectord, tandem runs it without a shell, as one program name`, 'put the command and its arguments in a script');
        }
        return;
      }
      case 'request': {
        const v = this.quoted(value, loc, true);
        if (v !== undefined) sec.request = v;
        return;
      }
      case 'receive': {
        const v = this.quoted(value, loc, true);
        if (v !== undefined) sec.receive = v;
        return;
      }
      case 'httpmethod': {
        const v = value.trim().toUpperCase();
        if (v === 'GET' || v === 'HEAD') sec.httpMethod = v;
        else this.error('E_LDCF_HTTPMETHOD', loc, `httpmethod must be GET or HEAD, got "${value.trim()}"`);
        return;
      }
      case 'virtualhost': sec.virtualHost = this.quoted(value, loc, false); return;
      case 'login': sec.login = this.quoted(value, loc, true); return;
      case 'passwd': sec.passwd = this.quoted(value, loc, true); return;
      case 'database': sec.database = this.quoted(value, loc, true); return;
      case 'secret': sec.secret = this.quoted(value, loc, true); return;
      case 'scheduler': {
        const v = value.trim();
        if (!/^[a-z]+$/.test(v)) {
          const guess = didYouMean(v.toLowerCase(), KNOWN_SCHEDULERS);
          this.error('E_LDCF_SCHEDULER', loc, `invalid scheduler "${v}", should be only lowercase letters (a-z)`, guess ? `did you mean ${guess}?` : undefined);
          return;
        }
        if (!KNOWN_SCHEDULERS.includes(v)) {
          const guess = didYouMean(v, KNOWN_SCHEDULERS);
          this.warn('E_LDCF_SCHEDULER', loc, `scheduler "${v}" is not one of the IPVS schedulers (${KNOWN_SCHEDULERS.join(', ')}); the backend may refuse it`, guess ? `did you mean ${guess}?` : undefined);
        }
        sec.scheduler = v;
        return;
      }
      case 'persistent': {
        const v = this.int(value, loc, 1, 0x7fffffff, 'persistent timeout');
        if (v !== undefined) sec.persistent = v;
        return;
      }
      case 'netmask': {
        sec.netmask = value.trim();
        sec.netmaskLoc = loc;
        return;
      }
      case 'schedflags': {
        const v = this.quoted(value, loc, false)?.trim() ?? '';
        if (!/^[a-z0-9-]+(,[a-z0-9-]+)*$/.test(v)) {
          this.error('E_LDCF_SYNTAX', loc, `schedflags must be a comma-separated list such as sh-port,sh-fallback, got "${v}"`);
          return;
        }
        sec.schedFlags = v.split(',');
        return;
      }
      case 'protocol': {
        const v = value.trim();
        if (v === 'tcp' || v === 'udp' || v === 'fwm') {
          sec.protocol = v;
          sec.protocolLoc = loc;
        } else this.error('E_LDCF_PROTOCOL', loc, `protocol must be tcp, udp or fwm, got "${v}"`, didYouMean(v, ['tcp', 'udp', 'fwm']) ? `did you mean ${didYouMean(v, ['tcp', 'udp', 'fwm'])}?` : undefined);
        return;
      }
      case 'ops': {
        const v = this.bool(value, loc);
        if (v !== undefined) sec.ops = v;
        return;
      }
      case 'monitorfile': {
        const v = this.quoted(value, loc, false);
        if (!v) return;
        if (!this.env.writable(v)) {
          this.error('E_LDCF_FILE', loc, `monitorfile ${v} is not writable`, 'create its directory, or fix permissions');
          return;
        }
        sec.monitorfile = v;
        return;
      }
      case 'servicename': sec.servicename = this.quoted(value, loc, false); return;
      case 'comment': sec.comment = this.quoted(value, loc, false); return;
      case 'load': sec.load = this.quoted(value, loc, false); return;
    }
  }

  rawReal(value: string, loc: Location, six: boolean): RawReal | undefined {
    const { tokens, error } = tokenize(value.trim());
    if (error) {
      this.error('E_LDCF_QUOTE', loc, error);
      return undefined;
    }
    if (tokens.length === 0 || tokens[0]!.quoted) {
      this.error('E_LDCF_REAL', loc, 'real needs host[:port] gate|masq|ipip [weight] ["request", "receive"] [l:N] [u:N]');
      return undefined;
    }
    const spec = tokens[0]!.text;
    const hosts = this.expandHosts(spec, loc, six);
    if (!hosts) return undefined;
    const forwarding = this.forwarding(tokens[1]?.quoted ? undefined : tokens[1]?.text, loc);
    if (!forwarding) return undefined;
    const r: RawReal = { loc, hosts: hosts.hosts, six, port: hosts.port, forwarding, weight: 1, upper: 0, lower: 0 };
    let i = 2;
    if (tokens[i] && !tokens[i]!.quoted && /^\d+$/.test(tokens[i]!.text)) {
      r.weight = Number(tokens[i]!.text);
      if (r.weight > 65535) {
        this.error('E_LDCF_NUMBER', loc, `weight ${r.weight} is out of range (0-65535)`);
        return undefined;
      }
      i++;
    }
    const quoted: string[] = [];
    for (; i < tokens.length; i++) {
      const t = tokens[i]!;
      if (t.quoted) {
        quoted.push(t.text);
        continue;
      }
      const th = /^([lu]):(\d+)$/.exec(t.text);
      if (th) {
        if (th[1] === 'l') r.lower = Number(th[2]);
        else r.upper = Number(th[2]);
        continue;
      }
      this.error('E_LDCF_REAL', loc, `unexpected "${t.text}" in real=${value.trim()}`, 'after the forwarding method come: weight, "request", "receive", l:N (lower threshold), u:N (upper threshold)');
      return undefined;
    }
    if (quoted.length === 1) {
      this.error('E_LDCF_REAL', loc, `a per-real request needs a receive string too: "${quoted[0]}", "<receive>"`);
      return undefined;
    }
    if (quoted.length > 2) {
      this.error('E_LDCF_REAL', loc, 'too many quoted strings: a real takes one "request" and one "receive"');
      return undefined;
    }
    if (quoted.length === 2) {
      r.request = quoted[0];
      r.receive = quoted[1];
    }
    return r;
  }

  /**
   * The host part of real=: `host`, `[v6]`, `a.b.c.d->a.b.c.e` and (tandem) `a.b.c.[x-y]`, each
   * with an optional `:port`. Ranges are expanded numerically, so a range across a digit boundary
   * (5.245.224.254->5.245.225.1) is the 4 addresses it names, not none as in ldirectord.
   */
  expandHosts(spec: string, loc: Location, six: boolean): { hosts: { text: string; bracketed: boolean }[]; port?: string | undefined } | undefined {
    let m = /^\[([^\]]+)\](?::([A-Za-z0-9_-]+))?$/.exec(spec);
    if (m && isIPv6(m[1]!)) return { hosts: [{ text: m[1]!, bracketed: true }], port: m[2] };
    const arrow = spec.includes('->') ? /^([^\s>]+)->(\S+)$/.exec(spec) : null;
    if (arrow) {
      m = /^([0-9.]+)->([0-9.]+)(?::([A-Za-z0-9_-]+))?$/.exec(spec);
      if (!m || !isIPv4(m[1]!) || !isIPv4(m[2]!)) {
        this.error('E_LDCF_RANGE', loc, `range ${spec} must join two IPv4 addresses (a.b.c.d->a.b.c.e[:port])`);
        return undefined;
      }
      const a = ipv4ToInt(m[1]!);
      const b = ipv4ToInt(m[2]!);
      if (b < a) {
        this.error('E_LDCF_RANGE', loc, `range ${m[1]}->${m[2]} ends before it starts`);
        return undefined;
      }
      if (b - a + 1 > MAX_RANGE) {
        this.error('E_LDCF_RANGE', loc, `range ${m[1]}->${m[2]} has ${b - a + 1} addresses; at most ${MAX_RANGE} per line`);
        return undefined;
      }
      const hosts = [];
      for (let n = a; n <= b; n++) hosts.push({ text: intToIpv4(n), bracketed: false });
      return { hosts, port: m[3] };
    }
    // Only an octet range has a '[' (an IPv6 address in brackets was taken above).
    m = spec.includes('[') ? /^((?:\d+|\[\d+-\d+\])(?:\.(?:\d+|\[\d+-\d+\])){3})(?::([A-Za-z0-9_-]+))?$/.exec(spec) : null;
    if (m && m[1]!.includes('[')) {
      const octets = m[1]!.split('.').map((o) => {
        const r = /^\[(\d+)-(\d+)\]$/.exec(o);
        return r ? [Number(r[1]), Number(r[2])] : [Number(o), Number(o)];
      });
      for (const [lo, hi] of octets) {
        if (lo! > 255 || hi! > 255) {
          this.error('E_LDCF_RANGE', loc, `range ${m[1]} has an octet above 255`);
          return undefined;
        }
        if (hi! < lo!) {
          this.error('E_LDCF_RANGE', loc, `range ${m[1]}: [${lo}-${hi}] ends before it starts`);
          return undefined;
        }
      }
      const count = octets.reduce((n, [lo, hi]) => n * (hi! - lo! + 1), 1);
      if (count > MAX_RANGE) {
        this.error('E_LDCF_RANGE', loc, `range ${m[1]} has ${count} addresses; at most ${MAX_RANGE} per line`);
        return undefined;
      }
      let list: number[][] = [[]];
      for (const [lo, hi] of octets) {
        const next: number[][] = [];
        for (const prefix of list) for (let o = lo!; o <= hi!; o++) next.push([...prefix, o]);
        list = next;
      }
      return { hosts: list.map((p) => ({ text: p.join('.'), bracketed: false })), port: m[2] };
    }
    if (six && !spec.startsWith('[')) {
      const hp = /^([^:[\]\s]+)(?::([A-Za-z0-9_-]+))?$/.exec(spec);
      if (hp && !isIPv4(hp[1]!)) return { hosts: [{ text: hp[1]!, bracketed: false }], port: hp[2] };
    }
    const hp = this.hostPort(spec, loc, 'real server');
    if (!hp) return undefined;
    return { hosts: [{ text: hp.host, bracketed: hp.bracketed }], port: hp.port };
  }

  // -- finishing ----------------------------------------------------------------------------------

  finish(content: string): LdConfig | undefined {
    const g = this.global;
    const go = this.gonly;
    const global: LdGlobal = {
      checkIntervalMs: g.checkIntervalMs ?? 10_000,
      checkTimeoutMs: g.checkTimeoutMs,
      negotiateTimeoutMs: g.negotiateTimeoutMs,
      checkCount: g.checkCount ?? 1,
      failureCount: g.failureCount ?? 1,
      autoreload: go.autoreload ?? false,
      callback: go.callback,
      logfile: go.logfile ?? '/var/log/ldirectord.log',
      emailAlert: g.emailAlert ?? [],
      emailAlertFreqS: g.emailAlertFreqS ?? 0,
      emailAlertStatus: g.emailAlertStatus ?? [...DAEMON_STATES],
      emailAlertFrom: go.emailAlertFrom,
      smtp: g.smtp,
      execute: go.execute,
      fork: go.fork ?? false,
      supervised: go.supervised ?? false,
      quiescent: g.quiescent ?? false,
      readdQuiescent: go.readdQuiescent ?? false,
      cleanstop: g.cleanstop ?? true,
      maintenanceDir: go.maintenanceDir,
      fallbackCommand: g.fallbackCommand,
    };
    const virtuals: LdVirtual[] = [];
    const byId = new Map<string, LdVirtual>();
    for (const raw of this.virtuals) {
      const v = this.finishVirtual(raw, global);
      if (!v) continue;
      const dup = byId.get(v.id);
      if (dup) {
        this.error('E_LDCF_DUPLICATE_VIRTUAL', raw.loc, `duplicate virtual server ${v.id}: already defined at line ${dup.location.line}`, 'the same address and port may be used once for tcp and once for udp');
        continue;
      }
      byId.set(v.id, v);
      virtuals.push(v);
    }
    if (this.sink.errorCount > 0) return undefined;
    return {
      file: this.file,
      global,
      virtuals,
      problems: this.sink.problems,
      digest: createHash('sha256').update(content).digest('hex'),
    };
  }

  finishVirtual(raw: RawVirtual, global: LdGlobal): LdVirtual | undefined {
    const loc = raw.loc;
    const family: 'inet' | 'inet6' = raw.six ? 'inet6' : 'inet';
    let protocol: 'tcp' | 'udp' | 'fwm';
    let key: ServiceKey;
    let label: string;
    let address = '';
    let port = 0;
    if (raw.fwmark !== undefined) {
      if (raw.protocol && raw.protocol !== 'fwm') {
        this.error('E_LDCF_PROTOCOL', raw.protocolLoc!, 'protocol must be fwm if the virtual service is a fwmark (a number)');
        return undefined;
      }
      protocol = 'fwm';
      key = { protocol: 'fwm', address: '', port: 0, fwmark: raw.fwmark, family };
      label = String(raw.fwmark);
    } else {
      if (raw.host === undefined || raw.port === undefined) return undefined;
      if (raw.protocol === 'fwm') {
        this.error('E_LDCF_PROTOCOL', raw.protocolLoc!, 'protocol must be tcp or udp if the virtual service is an address and port');
        return undefined;
      }
      const a = this.address(raw.host, raw.bracketed, family, loc, 'virtual');
      const p = this.port(raw.port, raw.protocol ?? 'tcp', loc, 'virtual');
      if (a === undefined || p === undefined) return undefined;
      address = a;
      port = p;
      protocol = raw.protocol ?? (p === 53 ? 'udp' : 'tcp');
      key = { protocol, address, port };
      label = endpoint(address, port);
    }
    const id = serviceId(key);
    const s = raw.scope;
    const g = this.global;
    const service: ServiceName = raw.service ?? (protocol === 'fwm' ? 'none' : SERVICE_BY_PORT[port] ?? 'none');
    const checktype: CheckType = raw.checktype ?? 'negotiate';
    if ((checktype === 'negotiate' || checktype === 'combined') && service === 'none') {
      this.warn('E_LDCF_NO_EFFECT', loc, `virtual ${label}: service is none (${raw.service ? 'as configured' : protocol === 'fwm' ? 'firewall-mark virtual' : `no default for port ${port}`}), so the negotiate check always succeeds and never takes a real server down (as in ldirectord)`, 'set service=, or checktype=connect');
    }
    // ldirectord's fallback chain: each timeout defaults to the other before its own default.
    const checkTimeoutMs = s.checkTimeoutMs ?? s.negotiateTimeoutMs ?? g.checkTimeoutMs ?? g.negotiateTimeoutMs ?? 5000;
    const negotiateTimeoutMs = s.negotiateTimeoutMs ?? s.checkTimeoutMs ?? g.negotiateTimeoutMs ?? g.checkTimeoutMs ?? 30_000;
    const checkIntervalMs = s.checkIntervalMs ?? global.checkIntervalMs;
    const failureCount = s.failureCount ?? global.failureCount;
    const checkCount = s.checkCount ?? global.checkCount;

    let login = raw.login;
    let passwd = raw.passwd;
    if (service === 'ftp') {
      login ??= 'anonymous';
      passwd ??= `ldirectord@${this.env.hostname}`;
    } else if (service === 'sip') {
      login ??= `ldirectord@${this.env.hostname}`;
    }

    if (raw.netmask !== undefined) {
      const nl = raw.netmaskLoc!;
      if (family === 'inet6') {
        if (!/^\d+$/.test(raw.netmask) || Number(raw.netmask) < 1 || Number(raw.netmask) > 128) {
          this.error('E_LDCF_NETMASK', nl, `netmask of an IPv6 virtual must be a prefix length 1-128, got "${raw.netmask}"`);
          return undefined;
        }
      } else if (!isIPv4(raw.netmask)) {
        this.error('E_LDCF_NETMASK', nl, `netmask must be a dotted IPv4 mask such as 255.255.255.0, got "${raw.netmask}"`);
        return undefined;
      }
      if (raw.persistent === undefined) this.warn('E_LDCF_NO_EFFECT', nl, 'netmask has no effect without persistent= (as in ldirectord)');
    }
    if (raw.ops && protocol !== 'udp') this.warn('E_LDCF_NO_EFFECT', loc, `ops=yes only applies to udp virtual services; ${label} is ${protocol}`);

    const ipvsPortOf = (fwd: Forwarding, p: number): number => (protocol !== 'fwm' && (fwd === 'gate' || fwd === 'ipip') ? port : p);
    const resolvProto: 'tcp' | 'udp' = protocol === 'udp' ? 'udp' : 'tcp';

    let fallback: LdFallback | undefined;
    const rawFb = family === 'inet6' ? s.fallback6 ?? g.fallback6 : s.fallback ?? g.fallback;
    if (rawFb) {
      const a = this.address(rawFb.host, rawFb.bracketed, family, rawFb.loc, 'fallback');
      const p = rawFb.port === undefined ? port : this.port(rawFb.port, resolvProto, rawFb.loc, 'fallback');
      if (a === undefined || p === undefined) return undefined;
      fallback = { address: a, port: p, ipvsPort: ipvsPortOf(rawFb.forwarding, p), forwarding: rawFb.forwarding };
    }

    const virtual: LdVirtual = {
      id, key, label, protocol, family,
      scheduler: raw.scheduler ?? 'wrr',
      persistent: raw.persistent,
      netmask: raw.persistent !== undefined ? raw.netmask : undefined,
      schedFlags: raw.schedFlags,
      ops: (raw.ops ?? false) && protocol === 'udp',
      service, checktype,
      combinedConnects: raw.combinedConnects,
      checkIntervalMs, checkTimeoutMs, negotiateTimeoutMs, failureCount,
      quiescent: s.quiescent ?? global.quiescent,
      cleanstop: s.cleanstop ?? global.cleanstop,
      fallback,
      fallbackCommand: s.fallbackCommand ?? global.fallbackCommand,
      emailAlert: s.emailAlert ?? global.emailAlert,
      emailAlertFreqS: s.emailAlertFreqS ?? global.emailAlertFreqS,
      emailAlertStatus: s.emailAlertStatus ?? global.emailAlertStatus,
      smtp: s.smtp ?? global.smtp,
      monitorfile: raw.monitorfile,
      servicename: raw.servicename,
      comment: raw.comment,
      load: raw.load,
      reals: [],
      location: loc,
    };

    const normRequest = (r: string | undefined): string | undefined => (r === undefined ? undefined : r.startsWith('/') ? r : `/${r}`);
    const seen = new Map<string, number>();
    for (const rr of raw.reals) {
      const rport = rr.port === undefined ? 0 : this.port(rr.port, resolvProto, rr.loc, 'real server');
      if (rport === undefined) continue;
      for (const h of rr.hosts) {
        const addr = this.address(h.text, h.bracketed, family, rr.loc, 'real server');
        if (addr === undefined) continue;
        const ipvsPort = ipvsPortOf(rr.forwarding, rport);
        const own = endpoint(addr, rport);
        const ek = ipvsPort === rport ? own : endpoint(addr, ipvsPort);
        const prev = seen.get(ek);
        if (prev !== undefined) {
          this.error('E_LDCF_DUPLICATE_REAL', rr.loc, `real server ${own} is already in virtual ${label} (line ${prev})${ipvsPort !== rport ? `: with ${rr.forwarding} IPVS uses the virtual port, so it is ${ek}` : ''}`);
          continue;
        }
        seen.set(ek, rr.loc.line);
        const checkPort = raw.checkport ?? (rport || PORT_BY_SERVICE[service] || port);
        const check: CheckSpec = {
          checktype,
          combinedConnects: raw.combinedConnects,
          service,
          protocol,
          host: addr,
          port: checkPort,
          realPort: rport,
          virtualAddress: protocol === 'fwm' ? String(raw.fwmark) : address,
          virtualPort: port,
          request: normRequest(rr.request ?? raw.request),
          receive: rr.receive ?? raw.receive,
          httpMethod: raw.httpMethod ?? 'GET',
          virtualHost: raw.virtualHost,
          login, passwd,
          database: raw.database,
          secret: raw.secret,
          checkcommand: raw.checkcommand ?? (checktype === 'external' || checktype === 'external-perl' ? '/bin/true' : undefined),
          checkTimeoutMs, negotiateTimeoutMs, checkCount,
        };
        Object.freeze(check);
        virtual.reals.push(Object.freeze({
          id: `${id}/${own}`,
          virtualId: id,
          address: addr,
          port: rport,
          ipvsPort,
          forwarding: rr.forwarding,
          weight: rr.weight,
          upperThreshold: rr.upper,
          lowerThreshold: rr.lower,
          check,
          location: rr.loc,
        }));
      }
    }
    if (fallback && seen.has(endpoint(fallback.address, fallback.ipvsPort))) {
      this.error('E_LDCF_DUPLICATE_REAL', rawFb!.loc, `fallback ${endpoint(fallback.address, fallback.port)} is also a real server of virtual ${label}`);
    }
    return virtual;
  }
}

/** Freezes the config's tree. Reals and their CheckSpecs are frozen as they are made (10,000 of them). */
function freezeConfig(c: LdConfig): LdConfig {
  for (const v of c.virtuals) {
    Object.freeze(v.reals);
    for (const x of [v.key, v.fallback, v.schedFlags, v.emailAlert, v.emailAlertStatus, v.location]) if (x) Object.freeze(x);
    Object.freeze(v);
  }
  for (const x of [c.global.emailAlert, c.global.emailAlertStatus, c.global.execute]) Object.freeze(x);
  Object.freeze(c.global);
  Object.freeze(c.virtuals);
  Object.freeze(c.problems);
  return Object.freeze(c);
}

function defaultWritable(path: string): boolean {
  try {
    if (existsSync(path)) {
      accessSync(path, constants.W_OK);
      return statSync(path).isFile();
    }
    accessSync(dirname(path), constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** Parses ldirectord.cf text. Pure given `env` (names, hostname, file probes). */
export function parseConfig(content: string, file: string, env: ParseEnv = {}): ParseResult {
  const p = new Parser(file, {
    names: env.names ?? systemNameTables(),
    hostname: env.hostname ?? osHostname(),
    exists: env.exists ?? existsSync,
    writable: env.writable ?? defaultWritable,
  });
  p.parse(content);
  const config = p.finish(content);
  // File order; problems found when a section is finished belong to their line too.
  const line = (x: Problem) => x.location?.line ?? 0;
  const problems = p.sink.problems.map((x, i) => [x, i] as const).sort((a, b) => line(a[0]) - line(b[0]) || a[1] - b[1]).map(([x]) => x);
  if (config) config.problems = problems;
  return { config: config ? freezeConfig(config) : undefined, problems, unresolved: [...p.unresolved] };
}

/**
 * Reads and parses a file, asking DNS for host names that /etc/hosts does not know. Throws a
 * ConfigError carrying every problem when there is at least one error.
 */
export async function loadConfig(file: string, env: ParseEnv = {}): Promise<LdConfig> {
  let content: string;
  try {
    content = readFileSync(file, 'utf8');
  } catch (err) {
    throw new TandemError('E_CONF_READ', `cannot read ${file}: ${(err as Error).message}`, { cause: err, hint: 'check the path and its permissions' });
  }
  let r = parseConfig(content, file, env);
  if (!r.config && r.unresolved.length > 0) {
    const names = await resolveMissing(r.unresolved, env.names ?? systemNameTables());
    r = parseConfig(content, file, { ...env, names });
  }
  if (!r.config) throw new ConfigError(file, r.problems);
  return r.config;
}

/** ldirectord's default pid-file and log tag name: the config file's base name. */
export function configName(file: string): string {
  return file.split('/').pop() || file;
}
