import { readFileSync } from 'node:fs';
import type { IpvsOp, IpvsTable, ServiceKey, VirtualService } from '@tandem/ipvs';
import { FIXTURES } from '../../../test/fixtures/paths.ts';

/**
 * Reads the recorded runs of the real ldirectord 4.12 (shared/reference/ldirectord-runs): the
 * merged timelines (MARK = harness action, IPVSADM = a command ldirectord ran, FALLBACKCMD, LDLOG)
 * and turns ipvsadm command lines into table operations, so a test can rebuild the table the real
 * daemon had at any moment and compare it with tandem's.
 */
export const RUNS = `${FIXTURES}/reference/ldirectord-runs`;

export interface TimelineEvent {
  t: number;
  kind: string;
  text: string;
}

export function readTimeline(path: string): TimelineEvent[] {
  const out: TimelineEvent[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const m = /^\s*([\d.]+) (\w+) (.*)$/.exec(line);
    if (m) out.push({ t: Number(m[1]), kind: m[2]!, text: m[3]! });
  }
  return out;
}

function key(flag: string, value: string): ServiceKey {
  if (flag === '-f') return { protocol: 'fwm', address: '', port: 0, fwmark: Number(value) };
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(value)!;
  return { protocol: flag === '-u' ? 'udp' : 'tcp', address: m[1]!, port: Number(m[2]) };
}

/** One `ipvsadm ...` command line (as logged) → one operation; undefined for listings. */
export function ipvsadmToOp(cmd: string): IpvsOp | undefined {
  const w = cmd.replace(/^ipvsadm\s+/, '').replace(/\s*\[by harness\].*$/, '').replace(/\s*#.*$/, '').trim().split(/\s+/);
  const action = w[0]!;
  let k: ServiceKey | undefined;
  let real: { address: string; port: number } | undefined;
  let scheduler = 'wlc';
  let persistence: VirtualService['persistence'];
  let forwarding: 'gate' | 'masq' | 'ipip' = 'gate';
  let weight = 1;
  let upper = 0;
  let lower = 0;
  for (let i = 1; i < w.length; i++) {
    const f = w[i]!;
    if (f === '-t' || f === '-u' || f === '-f') k = key(f, w[++i]!);
    else if (f === '-s') scheduler = w[++i]!;
    else if (f === '-p') persistence = { timeoutS: Number(w[++i]) };
    else if (f === '-r') {
      const m = /^\[?([^\]]+?)\]?(?::(\d+))?$/.exec(w[++i]!)!;
      real = { address: m[1]!, port: m[2] ? Number(m[2]) : 0 };
    } else if (f === '-g') forwarding = 'gate';
    else if (f === '-m') forwarding = 'masq';
    else if (f === '-i') forwarding = 'ipip';
    else if (f === '-w') weight = Number(w[++i]);
    else if (f === '-x') upper = Number(w[++i]);
    else if (f === '-y') lower = Number(w[++i]);
  }
  if (!k) return undefined;
  // ipvsadm stores gate/ipip destinations of address services on the service port.
  if (real && k.protocol !== 'fwm' && forwarding !== 'masq') real = { ...real, port: k.port };
  const svc: VirtualService = { ...k, scheduler, persistence, reals: [] };
  const r = real && { ...real, forwarding, weight, upperThreshold: upper, lowerThreshold: lower };
  switch (action) {
    case '-A': return { op: 'add-service', service: svc };
    case '-E': return { op: 'edit-service', service: svc };
    case '-D': return { op: 'delete-service', key: k };
    case '-a': return { op: 'add-real', key: k, real: r! };
    case '-e': return { op: 'edit-real', key: k, real: r! };
    case '-d': return { op: 'delete-real', key: k, address: real!.address, port: real!.port };
    default: return undefined;
  }
}

/** Compact, order-independent text of a table: `tcp 127.0.0.100:80 wrr` / `  127.0.0.11:80 gate w1`. */
export function tableLines(t: IpvsTable): string[] {
  const svc = [...t.services].sort((a, b) => (`${a.protocol}${a.address}${a.port}` < `${b.protocol}${b.address}${b.port}` ? -1 : 1));
  return svc.flatMap((s) => [
    `${s.protocol} ${s.protocol === 'fwm' ? s.fwmark : `${s.address}:${s.port}`} ${s.scheduler}${s.persistence ? ` persistent ${s.persistence.timeoutS}` : ''}`,
    ...[...s.reals].sort((a, b) => (`${a.address}:${a.port}` < `${b.address}:${b.port}` ? -1 : 1)).map((r) => `  ${r.address}:${r.port} ${r.forwarding} w${r.weight}`),
  ]);
}

/** A recorded `ipvsadm -L -n` listing (the *.table files) as tableLines. */
export function listingLines(text: string): string[] {
  const t: IpvsTable = { services: [] };
  let cur: VirtualService | undefined;
  for (const line of text.split('\n')) {
    let m = /^(TCP|UDP|FWM)\s+(\S+)\s+(\w+)(?:\s+persistent (\d+))?/.exec(line);
    if (m) {
      const k = m[1] === 'FWM' ? { protocol: 'fwm' as const, address: '', port: 0, fwmark: Number(m[2]) } : key(m[1] === 'UDP' ? '-u' : '-t', m[2]!);
      cur = { ...k, scheduler: m[3]!, persistence: m[4] ? { timeoutS: Number(m[4]) } : undefined, reals: [] };
      t.services.push(cur);
      continue;
    }
    m = /^\s+-> (\S+):(\d+)\s+(Route|Masq|Tunnel)\s+(\d+)/.exec(line);
    if (m && cur) cur.reals.push({ address: m[1]!, port: Number(m[2]), forwarding: m[3] === 'Route' ? 'gate' : m[3] === 'Masq' ? 'masq' : 'ipip', weight: Number(m[4]) });
  }
  return tableLines(t);
}
