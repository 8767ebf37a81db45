import { familyOf, ipv4Number, ipv6Bytes } from './addr.ts';
import type { Counters, IpvsTable, RealServer, RealStats, ServiceKey, TableStats, VirtualService } from './model.ts';
import { realId, serviceId } from './model.ts';
import { type NameResolver, numericResolver } from './names.ts';
import { schedFlagBits, schedFlagNames, serviceFamily } from './table.ts';

/**
 * ipvsadm 1.31's listings, byte for byte: `-L` in its formats (default, --stats, --rate,
 * --thresholds, --persistent-conn, --exact, numeric or with names) and `-S` (the ipvsadm-save
 * rules), including ipvsadm's order of entries. Pure: stats and names come in as arguments.
 */

export const VERSION_LINE = 'IP Virtual Server version 1.2.1 (size=4096)';

export interface ListingOptions {
  numeric?: boolean;
  stats?: boolean;
  rate?: boolean;
  thresholds?: boolean;
  persistentConn?: boolean;
  exact?: boolean;
  nosort?: boolean;
  /** List only this service (ipvsadm -L -t ...): no version line. */
  only?: ServiceKey | undefined;
  names?: NameResolver;
}

const ZERO: Counters = { conns: 0, inPkts: 0, outPkts: 0, inBytes: 0, outBytes: 0, cps: 0, inPps: 0, outPps: 0, inBps: 0, outBps: 0 };
const ZERO_REAL: RealStats = { ...ZERO, activeConns: 0, inactiveConns: 0 };

type Format = 'default' | 'stats' | 'rate' | 'thresholds' | 'persistent-conn';

function formatOf(o: ListingOptions): Format {
  if (o.stats) return 'stats';
  if (o.rate) return 'rate';
  if (o.thresholds) return 'thresholds';
  if (o.persistentConn) return 'persistent-conn';
  return 'default';
}

const TITLES: Record<Format, string> = {
  default: 'Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n',
  stats: 'Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n  -> RemoteAddress:Port\n',
  rate: 'Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n  -> RemoteAddress:Port\n',
  thresholds: 'Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn \n  -> RemoteAddress:Port\n',
  'persistent-conn': 'Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn \n  -> RemoteAddress:Port\n',
};

const padEnd = (s: string, n: number) => (s.length >= n ? s : s + ' '.repeat(n - s.length));
const padStart = (s: string, n: number) => (s.length >= n ? s : ' '.repeat(n - s.length) + s);

/** ipvsadm's counter column: 9 wide, scaled to K/M/G/T from 10^8 on, or exact. */
export function largeNumber(n: number, exact: boolean): string {
  const v = BigInt(Math.max(0, Math.trunc(n)));
  if (exact) {
    const t = v.toString();
    return padStart(t, t.length <= 8 ? 9 : t.length + 1);
  }
  if (v < 100000000n) return padStart(v.toString(), 9);
  if (v < 1000000000n) return padStart((v / 1000n).toString(), 8) + 'K';
  if (v < 100000000000n) return padStart((v / 1000000n).toString(), 8) + 'M';
  if (v < 100000000000000n) return padStart((v / 1000000000n).toString(), 8) + 'G';
  return padStart((v / 1000000000000n).toString(), 8) + 'T';
}

const int32 = (n: number) => n | 0;

/** Address comparison as ipvsadm does it: IPv4 as the int difference of the host-order values (so it wraps), IPv6 bytewise. */
function cmpAddr(a: string, b: string): number {
  if (familyOf(a) === 'inet6' || familyOf(b) === 'inet6') {
    const x = ipv6Bytes(a);
    const y = ipv6Bytes(b);
    for (let i = 0; i < 16; i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
    return 0;
  }
  return int32(ipv4Number(a) - ipv4Number(b));
}

const PROTO: Record<string, number> = { tcp: 6, udp: 17, sctp: 132, fwm: 6 };

function cmpServices(a: ServiceKey, b: ServiceKey): number {
  const fa = a.protocol === 'fwm' ? (a.fwmark ?? 0) : 0;
  const fb = b.protocol === 'fwm' ? (b.fwmark ?? 0) : 0;
  let r = int32(fa - fb);
  if (r) return r;
  r = (serviceFamily(a) === 'inet' ? 2 : 10) - (serviceFamily(b) === 'inet' ? 2 : 10);
  if (r) return r;
  r = PROTO[a.protocol]! - PROTO[b.protocol]!;
  if (r) return r;
  if (a.protocol !== 'fwm' && b.protocol !== 'fwm') {
    r = cmpAddr(a.address, b.address);
    if (r) return r;
  }
  return a.port - b.port;
}

function cmpReals(a: RealServer, b: RealServer): number {
  return cmpAddr(a.address, b.address) || a.port - b.port;
}

/**
 * glibc's qsort on this machine is a top-down merge sort; ipvsadm's comparators wrap around for
 * IPv4, so for tables spanning far-apart addresses the order depends on that exact algorithm.
 */
export function mergeSort<T>(items: readonly T[], cmp: (a: T, b: T) => number): T[] {
  if (items.length <= 1) return [...items];
  const n1 = items.length >> 1;
  const left = mergeSort(items.slice(0, n1), cmp);
  const right = mergeSort(items.slice(n1), cmp);
  const out: T[] = [];
  let i = 0;
  let j = 0;
  while (i < left.length && j < right.length) out.push(cmp(left[i]!, right[j]!) <= 0 ? left[i++]! : right[j++]!);
  while (i < left.length) out.push(left[i++]!);
  while (j < right.length) out.push(right[j++]!);
  return out;
}

/** The table in the order ipvsadm prints it (the table's own order is the kernel's). */
export function ipvsadmOrder(table: IpvsTable, nosort = false): VirtualService[] {
  if (nosort) return table.services;
  return mergeSort(table.services, cmpServices).map((s) => ({ ...s, reals: mergeSort(s.reals, cmpReals) }));
}

function protoOf(s: ServiceKey): 'tcp' | 'udp' | 'sctp' {
  return s.protocol === 'fwm' ? 'tcp' : s.protocol;
}

function addrPort(address: string, port: number, proto: 'tcp' | 'udp' | 'sctp', numeric: boolean, names: NameResolver): string {
  const v6 = familyOf(address) === 'inet6';
  const host = numeric ? address : (names.addressToHost(address) ?? address);
  const p = numeric ? String(port) : (names.portToService(port, proto) ?? String(port));
  return v6 ? `[${host}]:${p}` : `${host}:${p}`;
}

/** The service's name column: `TCP  1.2.3.4:80`, `FWM  7`, or for rules `-t 1.2.3.4:80`, `-f 7 -6`. */
function serviceName(s: VirtualService, rule: boolean, numeric: boolean, names: NameResolver): string {
  if (s.protocol === 'fwm') {
    // ipvsadm prints the mark with %d.
    const mark = int32(s.fwmark ?? 0);
    const v6 = s.family === 'inet6';
    return rule ? `-f ${mark}${v6 ? ' -6' : ''}` : `FWM  ${mark}${v6 ? ' IPv6' : ''}`;
  }
  const v = addrPort(s.address, s.port, s.protocol, numeric, names);
  if (rule) return `${s.protocol === 'tcp' ? '-t' : s.protocol === 'udp' ? '-u' : '--sctp-service'} ${v}`;
  const name = `${padEnd(s.protocol.toUpperCase(), 4)} ${v}`;
  return familyOf(s.address) === 'inet6' ? name : name.slice(0, 33);
}

function flagsText(s: VirtualService): string {
  const bits = schedFlagBits(s.schedFlags ?? []) ?? 0;
  return schedFlagNames(s.scheduler, bits).join(',');
}

const FWD_NAME: Record<string, string> = { masq: 'Masq', gate: 'Route', ipip: 'Tunnel' };
const FWD_SWITCH: Record<string, string> = { masq: '-m', gate: '-g', ipip: '-i' };

export interface ListingStats {
  stats?: TableStats | undefined;
  /** Persistent-connection counts per service and real (ipvsadm --persistent-conn); zero when absent. */
  persistConns?: Map<string, Map<string, number>> | undefined;
}

/** `ipvsadm -L` output. Throws nothing: an unknown `only` service yields undefined (the caller says "No such service"). */
export function renderList(table: IpvsTable, o: ListingOptions = {}, st: ListingStats = {}): string | undefined {
  const names = o.names ?? numericResolver;
  const numeric = o.numeric ?? false;
  const fmt = formatOf(o);
  const exact = o.exact ?? false;
  let services = ipvsadmOrder(table, o.nosort);
  let out = '';
  if (o.only) {
    const id = serviceId(o.only);
    services = services.filter((s) => serviceId(s) === id);
    if (services.length === 0) return undefined;
  } else {
    out += VERSION_LINE + '\n';
  }
  out += TITLES[fmt];
  for (const s of services) {
    const sid = serviceId(s);
    const sst = st.stats?.services.get(sid);
    const sc = sst?.service ?? ZERO;
    const name = serviceName(s, false, numeric, names);
    const v6 = serviceFamily(s) === 'inet6';
    if (fmt === 'stats') {
      out += padEnd(name, 33) + [sc.conns, sc.inPkts, sc.outPkts, sc.inBytes, sc.outBytes].map((n) => largeNumber(n, exact)).join('') + '\n';
    } else if (fmt === 'rate') {
      out += padEnd(name, 33) + [sc.cps, sc.inPps, sc.outPps, sc.inBps, sc.outBps].map((n) => largeNumber(n, exact)).join('') + '\n';
    } else {
      let line = `${name} ${s.scheduler}`;
      const flags = flagsText(s);
      if (flags) line += ` (${flags})`;
      if (s.persistence) {
        line += ` persistent ${s.persistence.timeoutS}`;
        const m = s.persistence.netmask;
        if (m !== undefined && m !== '' && m !== (v6 ? '128' : '255.255.255.255')) line += ` mask ${m}`;
      }
      if (s.ops) line += ' ops';
      out += line + '\n';
    }
    for (const r of s.reals) {
      let dname = addrPort(r.address, r.port, protoOf(s), numeric, names);
      if (!v6) dname = dname.slice(0, 28);
      const rs = sst?.reals.get(realId(r)) ?? ZERO_REAL;
      const head = `  -> ${padEnd(dname, 28)}`;
      if (fmt === 'stats') {
        out += head + [rs.conns, rs.inPkts, rs.outPkts, rs.inBytes, rs.outBytes].map((n) => largeNumber(n, exact)).join('') + '\n';
      } else if (fmt === 'rate') {
        const small = [rs.cps, rs.inPps, rs.outPps].map((n) => ' ' + padStart(String(Math.trunc(n)), 8)).join('');
        out += head + small + largeNumber(rs.inBps, exact) + largeNumber(rs.outBps, exact) + '\n';
      } else if (fmt === 'thresholds') {
        const cols = [r.upperThreshold ?? 0, r.lowerThreshold ?? 0, rs.activeConns, rs.inactiveConns].map((n) => padEnd(String(n), 10));
        out += `${head} ${cols.join(' ')}\n`;
      } else if (fmt === 'persistent-conn') {
        const pc = st.persistConns?.get(sid)?.get(realId(r)) ?? 0;
        out += `${head} ${padEnd(String(r.weight), 9)} ${padEnd(String(pc), 11)} ${padEnd(String(rs.activeConns), 10)} ${padEnd(String(rs.inactiveConns), 10)}\n`;
      } else {
        out += `${head} ${padEnd(FWD_NAME[r.forwarding]!, 7)} ${padEnd(String(r.weight), 6)} ${padEnd(String(rs.activeConns), 10)} ${padEnd(String(rs.inactiveConns), 10)}\n`;
      }
    }
  }
  return out;
}

/** `ipvsadm -S [-n]` output: rules that `ipvsadm -R` reads back. Thresholds are not saved (as in ipvsadm). */
export function renderRules(table: IpvsTable, o: { numeric?: boolean; names?: NameResolver; nosort?: boolean } = {}): string {
  const names = o.names ?? numericResolver;
  const numeric = o.numeric ?? false;
  let out = '';
  for (const s of ipvsadmOrder(table, o.nosort)) {
    const name = serviceName(s, true, numeric, names);
    const v6 = serviceFamily(s) === 'inet6';
    let line = `-A ${name} -s ${s.scheduler}`;
    if (s.persistence) {
      line += ` -p ${s.persistence.timeoutS}`;
      const m = s.persistence.netmask;
      if (m !== undefined && m !== '' && m !== (v6 ? '128' : '255.255.255.255')) line += ` -M ${m}`;
    }
    if (s.ops) line += ' -o';
    const flags = flagsText(s);
    if (flags) line += ` -b ${flags}`;
    out += line + '\n';
    for (const r of s.reals) {
      const dname = addrPort(r.address, r.port, protoOf(s), numeric, names);
      out += `-a ${name} -r ${dname} ${FWD_SWITCH[r.forwarding]} -w ${r.weight}${r.forwarding === 'ipip' ? ' --tun-type ipip' : ''}\n`;
    }
  }
  return out;
}
