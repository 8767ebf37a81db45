import { canonicalAddress, compareAddress, familyOf } from './addr.ts';
import { tableError, IpvsError } from './errors.ts';
import { type IpvsOp, type IpvsTable, type RealServer, type ServiceKey, type VirtualService, realId, serviceId } from './model.ts';

/**
 * The virtual-service table with the kernel's rules, as pure functions: what `ip_vs_ctl` accepts and
 * refuses, and the one rewrite ipvsadm makes before the kernel sees a real server (gate and ipip
 * reals of an address:port service take the service's port). Every backend that keeps a table of
 * its own (memory, the embedded daemon) applies batches through `applyOps`, so they refuse exactly
 * what the kernel would, with ipvsadm's words.
 */

/** Schedulers the table accepts (the kernel's, plus those the embedded data plane implements). */
export const KNOWN_SCHEDULERS: readonly string[] = ['rr', 'wrr', 'lc', 'wlc', 'lblc', 'lblcr', 'dh', 'sh', 'sed', 'nq', 'mh', 'fo', 'ovf'];

/** Protocol numbers, the order ipvsadm sorts by. */
const PROTO_NUMBER: Record<string, number> = { tcp: 6, udp: 17, sctp: 132, fwm: 0 };

/** Scheduler flag bits (IP_VS_SVC_F_SCHED1..3) and their names per scheduler, as ipvsadm prints them. */
const FLAG_NAMES: Record<string, readonly string[]> = {
  // ipvsadm shows only the two named flags of sh and mh; a third bit is kept but not printed.
  sh: ['sh-fallback', 'sh-port'],
  mh: ['mh-fallback', 'mh-port'],
};
const GENERIC_FLAGS: readonly string[] = ['flag-1', 'flag-2', 'flag-3'];

/** Flag names → bits 0..2, or undefined for an unknown name. */
export function schedFlagBits(flags: readonly string[]): number | undefined {
  let bits = 0;
  for (const f of flags) {
    const i = ['sh-fallback', 'mh-fallback', 'flag-1'].includes(f) ? 0 : ['sh-port', 'mh-port', 'flag-2'].includes(f) ? 1 : f === 'flag-3' ? 2 : -1;
    if (i < 0) return undefined;
    bits |= 1 << i;
  }
  return bits;
}

/** The flag names ipvsadm shows for `bits` on a service with `scheduler`. */
export function schedFlagNames(scheduler: string, bits: number): string[] {
  const names = FLAG_NAMES[scheduler] ?? GENERIC_FLAGS;
  return names.filter((_, i) => (bits & (1 << i)) !== 0);
}

/** Canonical flag list for storage: the bits in order, named for the scheduler where it names them. */
function canonicalFlags(scheduler: string, bits: number): string[] {
  const named = FLAG_NAMES[scheduler] ?? GENERIC_FLAGS;
  const out: string[] = [];
  for (let i = 0; i < 3; i++) if (bits & (1 << i)) out.push(named[i] ?? GENERIC_FLAGS[i]!);
  return out;
}

/** The key part of a service, with fwm services reduced to mark and family. */
export function keyOf(s: ServiceKey): ServiceKey {
  return s.protocol === 'fwm'
    ? { protocol: 'fwm', address: '', port: 0, fwmark: s.fwmark, family: s.family ?? 'inet' }
    : { protocol: s.protocol, address: s.address, port: s.port };
}

/** True when a persistence netmask selects the whole address (the same as no netmask). */
function isHostMask(netmask: string | undefined, family: 'inet' | 'inet6'): boolean {
  if (netmask === undefined || netmask === '') return true;
  return family === 'inet' ? netmask === '255.255.255.255' : netmask === '128';
}

export function serviceFamily(s: ServiceKey): 'inet' | 'inet6' {
  return s.protocol === 'fwm' ? (s.family ?? 'inet') : familyOf(s.address);
}

/**
 * The service as the kernel stores it: canonical address, default family for fwm, a host netmask
 * dropped, scheduler flags in canonical names and order, no empty optionals. Throws the kernel's
 * error for what it would refuse.
 */
export function normalizeService(s: VirtualService, opIndex?: number): VirtualService {
  const key = normalizeKey(s, opIndex);
  if (!KNOWN_SCHEDULERS.includes(s.scheduler)) throw tableError('E_IPVS_SCHEDULER', `scheduler ${s.scheduler}`, opIndex);
  const family = serviceFamily(key);
  const out: VirtualService = { ...key, scheduler: s.scheduler, reals: [] };
  if (s.persistence) {
    const t = s.persistence.timeoutS;
    if (!Number.isInteger(t) || t < 1 || t > 0x7fffffff) throw tableError('E_IPVS_INVALID', `persistence timeout ${t}`, opIndex);
    const m = s.persistence.netmask;
    if (m !== undefined && m !== '') {
      // The kernel takes any IPv4 mask, contiguous or not (ipvsadm -M 255.0.255.0 is accepted).
      const ok = family === 'inet' ? canonicalAddress(m) !== undefined && familyOf(m) === 'inet' : /^\d+$/.test(m) && Number(m) >= 1 && Number(m) <= 128;
      if (!ok) throw tableError('E_IPVS_INVALID', `persistence netmask ${m}`, opIndex);
    }
    out.persistence = isHostMask(m, family) ? { timeoutS: t } : { timeoutS: t, netmask: family === 'inet6' ? String(Number(m)) : m };
  }
  if (s.schedFlags && s.schedFlags.length > 0) {
    const bits = schedFlagBits(s.schedFlags);
    if (bits === undefined) throw tableError('E_IPVS_INVALID', `scheduler flags ${s.schedFlags.join(',')}`, opIndex);
    if (bits !== 0) out.schedFlags = canonicalFlags(s.scheduler, bits);
  }
  if (s.ops) out.ops = true;
  return out;
}

export function normalizeKey(k: ServiceKey, opIndex?: number): ServiceKey {
  if (k.protocol === 'fwm') {
    const m = k.fwmark;
    if (m === undefined || !Number.isInteger(m) || m < 1 || m > 0xffffffff) throw tableError('E_IPVS_INVALID', `firewall mark ${m}`, opIndex);
    const family = k.family ?? 'inet';
    if (family !== 'inet' && family !== 'inet6') throw tableError('E_IPVS_FAMILY', `family ${String(family)}`, opIndex);
    return { protocol: 'fwm', address: '', port: 0, fwmark: m, family };
  }
  if (!(k.protocol in PROTO_NUMBER)) throw tableError('E_IPVS_INVALID', `protocol ${String(k.protocol)}`, opIndex);
  const address = canonicalAddress(k.address);
  if (address === undefined) throw tableError('E_IPVS_INVALID', `address ${k.address}`, opIndex);
  if (!Number.isInteger(k.port) || k.port < 0 || k.port > 65535) throw tableError('E_IPVS_INVALID', `port ${k.port}`, opIndex);
  return { protocol: k.protocol, address, port: k.port };
}

const FORWARDING: ReadonlySet<string> = new Set(['gate', 'masq', 'ipip']);

/**
 * A real server as the table stores it under `svc`: canonical address, and the port ipvsadm
 * substitutes for gate and ipip (the service port; packets keep their destination port).
 */
export function normalizeReal(svc: ServiceKey, r: RealServer, opIndex?: number): RealServer {
  const address = canonicalAddress(r.address);
  if (address === undefined) throw tableError('E_IPVS_INVALID', `real server address ${r.address}`, opIndex);
  if (!Number.isInteger(r.port) || r.port < 0 || r.port > 65535) throw tableError('E_IPVS_INVALID', `real server port ${r.port}`, opIndex);
  if (!FORWARDING.has(r.forwarding)) throw tableError('E_IPVS_INVALID', `forwarding ${String(r.forwarding)}`, opIndex);
  if (familyOf(address) !== serviceFamily(svc) && r.forwarding !== 'ipip') throw tableError('E_IPVS_FAMILY', `real server ${address} in ${serviceId(svc)}`, opIndex);
  if (!Number.isInteger(r.weight) || r.weight < 0 || r.weight > 0x7fffffff) throw tableError('E_IPVS_RANGE', `weight ${r.weight}`, opIndex);
  const u = r.upperThreshold ?? 0;
  const l = r.lowerThreshold ?? 0;
  for (const t of [u, l]) if (!Number.isInteger(t) || t < 0 || t > 0xffffffff) throw tableError('E_IPVS_RANGE', `threshold ${t}`, opIndex);
  // The kernel compares the two thresholds as they are, so a lower threshold without an upper one is refused.
  if (l > u) throw tableError('E_IPVS_RANGE', `lower threshold ${l} above upper threshold ${u}`, opIndex);
  const port = svc.protocol !== 'fwm' && (r.forwarding === 'gate' || r.forwarding === 'ipip') ? svc.port : r.port;
  const out: RealServer = { address, port, forwarding: r.forwarding, weight: r.weight };
  if (u) out.upperThreshold = u;
  if (l) out.lowerThreshold = l;
  return out;
}

/** ipvsadm's service order: address services before marks, then family, protocol, address, port. */
export function compareServices(a: ServiceKey, b: ServiceKey): number {
  const ma = a.protocol === 'fwm' ? (a.fwmark ?? 0) : 0;
  const mb = b.protocol === 'fwm' ? (b.fwmark ?? 0) : 0;
  if (ma !== mb) return ma - mb;
  const fa = serviceFamily(a);
  const fb = serviceFamily(b);
  if (fa !== fb) return fa === 'inet' ? -1 : 1;
  if (a.protocol !== b.protocol) return PROTO_NUMBER[a.protocol]! - PROTO_NUMBER[b.protocol]!;
  if (a.protocol === 'fwm') return 0;
  return compareAddress(a.address, b.address) || a.port - b.port;
}

export function compareReals(a: { address: string; port: number }, b: { address: string; port: number }): number {
  return compareAddress(a.address, b.address) || a.port - b.port;
}

/** A sorted deep copy, the order every listing uses. */
export function sortedTable(t: IpvsTable): IpvsTable {
  return {
    services: [...t.services]
      .sort(compareServices)
      .map((s) => ({ ...s, reals: [...s.reals].sort(compareReals).map((r) => ({ ...r })) })),
  };
}

/** Normalizes a whole table (for a desired table before diffing, or a table loaded from disk). */
export function normalizeTable(t: IpvsTable): IpvsTable {
  return applyOps({ services: [] }, tableToOps(t));
}

/** The operations that build `t` from an empty table. */
export function tableToOps(t: IpvsTable): IpvsOp[] {
  const ops: IpvsOp[] = [];
  for (const s of t.services) {
    ops.push({ op: 'add-service', service: { ...s, reals: [] } });
    const key = keyOf(s);
    for (const r of s.reals) ops.push({ op: 'add-real', key, real: r });
  }
  return ops;
}

/**
 * Applies a batch to a copy of `table` and returns the new table; `table` is never changed. The
 * first operation the kernel would refuse throws an IpvsError (message in ipvsadm's words,
 * `details.opIndex` its index in the batch), so a batch is applied whole or not at all.
 */
export function applyOps(table: IpvsTable, ops: readonly IpvsOp[]): IpvsTable {
  const services = copyServices(table);
  ops.forEach((op, i) => applyOne(services, op, i));
  return toTable(services);
}

/**
 * Applies each operation on its own, as the kernel does for one ipvsadm command after another: a
 * refused operation changes nothing and the next one still runs. Returns the new table and, per
 * operation, the error (undefined when applied).
 */
export function applyEach(table: IpvsTable, ops: readonly IpvsOp[]): { table: IpvsTable; errors: (IpvsError | undefined)[] } {
  const services = copyServices(table);
  const errors = ops.map((op, i) => {
    try {
      applyOne(services, op, i);
      return undefined;
    } catch (err) {
      if (err instanceof IpvsError) return err;
      throw err;
    }
  });
  return { table: toTable(services), errors };
}

/** A service while a batch is applied: its reals by id, so that a batch of N reals costs O(N). */
interface Work {
  svc: VirtualService;
  reals: Map<string, RealServer>;
}

function copyServices(table: IpvsTable): Map<string, Work> {
  const services = new Map<string, Work>();
  for (const s of table.services) services.set(serviceId(s), { svc: s, reals: new Map(s.reals.map((r) => [realId(r), r])) });
  return services;
}

// Insertion order is kept, of services and of reals, an edit keeping its place (the kernel lists
// in its own order and ipvsadm sorts when printing). Entries are replaced, never changed in place,
// so the input table is untouched.
function toTable(services: Map<string, Work>): IpvsTable {
  return { services: [...services.values()].map((w) => ({ ...w.svc, reals: [...w.reals.values()] })) };
}

/** How to take one change back: a batch applied in place is undone from these, newest first. */
type Undo =
  | { kind: 'service'; id: string; prev: Work | undefined }
  | { kind: 'svc'; work: Work; prev: VirtualService }
  | { kind: 'real'; work: Work; rid: string; prev: RealServer | undefined };

function applyOne(services: Map<string, Work>, op: IpvsOp, i: number, undo?: Undo[]): void {
  switch (op.op) {
    case 'add-service': {
      const svc = normalizeService(op.service, i);
      const id = serviceId(svc);
      if (services.has(id)) throw tableError('E_IPVS_SERVICE_EXISTS', id, i);
      // Reals given with the service are validated before anything changes: one op, one outcome.
      const work: Work = { svc, reals: new Map() };
      for (const r of op.service.reals ?? []) addReal(work, r, i);
      services.set(id, work);
      undo?.push({ kind: 'service', id, prev: undefined });
      return;
    }
    case 'edit-service': {
      const svc = normalizeService(op.service, i);
      const id = serviceId(svc);
      const have = services.get(id);
      if (!have) throw tableError('E_IPVS_NO_SERVICE', id, i);
      undo?.push({ kind: 'svc', work: have, prev: have.svc });
      have.svc = svc;
      return;
    }
    case 'delete-service': {
      const id = serviceId(normalizeKey(op.key, i));
      const prev = services.get(id);
      if (!services.delete(id)) throw tableError('E_IPVS_NO_SERVICE', id, i);
      undo?.push({ kind: 'service', id, prev });
      return;
    }
    case 'add-real':
    case 'edit-real':
    case 'delete-real': {
      const id = serviceId(normalizeKey(op.key, i));
      const work = services.get(id);
      if (!work) throw tableError('E_IPVS_SERVICE_NOT_DEFINED', id, i);
      if (op.op === 'add-real') return addReal(work, op.real, i, undo);
      if (op.op === 'edit-real') {
        const r = normalizeReal(work.svc, op.real, i);
        const rid = realId(r);
        const prev = work.reals.get(rid);
        if (!prev) throw tableError('E_IPVS_NO_DEST', `${rid} in ${id}`, i);
        work.reals.set(rid, r);
        undo?.push({ kind: 'real', work, rid, prev });
        return;
      }
      const address = canonicalAddress(op.address);
      const rid = address === undefined ? undefined : realId({ address, port: op.port });
      const prev = rid === undefined ? undefined : work.reals.get(rid);
      if (rid === undefined || !work.reals.delete(rid)) throw tableError('E_IPVS_NO_DEST', `${op.address}:${op.port} in ${id}`, i);
      undo?.push({ kind: 'real', work, rid, prev });
      return;
    }
    default: {
      const bad: never = op;
      throw new IpvsError('E_IPVS_INVALID', `unknown operation ${JSON.stringify(bad)}`);
    }
  }
}

function addReal(work: Work, real: RealServer, i: number, undo?: Undo[]): void {
  const r = normalizeReal(work.svc, real, i);
  const rid = realId(r);
  if (work.reals.has(rid)) throw tableError('E_IPVS_DEST_EXISTS', `${rid} in ${serviceId(work.svc)}`, i);
  work.reals.set(rid, r);
  undo?.push({ kind: 'real', work, rid, prev: undefined });
}

/**
 * A table kept indexed between batches, for a backend that applies many small batches to a large
 * table: a batch costs O(its operations), not O(the table) as `applyOps` (which copies) does. Same
 * rules, same errors, same all-or-nothing: a refused batch is undone before the error is thrown.
 */
export class IndexedTable {
  #services: Map<string, Work>;

  constructor(initial: IpvsTable = { services: [] }) {
    this.#services = copyServices(normalizeTable(initial));
  }

  apply(ops: readonly IpvsOp[]): void {
    const undo: Undo[] = [];
    try {
      for (let i = 0; i < ops.length; i++) applyOne(this.#services, ops[i]!, i, undo);
    } catch (err) {
      for (let j = undo.length - 1; j >= 0; j--) {
        const u = undo[j]!;
        if (u.kind === 'service') {
          if (u.prev) this.#services.set(u.id, u.prev);
          else this.#services.delete(u.id);
        } else if (u.kind === 'svc') {
          u.work.svc = u.prev;
        } else if (u.prev) {
          u.work.reals.set(u.rid, u.prev);
        } else {
          u.work.reals.delete(u.rid);
        }
      }
      throw err;
    }
  }

  /** The table (in insertion order; entries are shared, never changed in place). */
  table(): IpvsTable {
    return toTable(this.#services);
  }
}

/** The table with every service and real removed (ipvsadm -C). */
export function clearOps(t: IpvsTable): IpvsOp[] {
  return t.services.map((s) => ({ op: 'delete-service', key: keyOf(s) }) as IpvsOp);
}
