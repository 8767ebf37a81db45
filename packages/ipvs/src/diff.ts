import { type IpvsBackend, type IpvsOp, type IpvsTable, type RealServer, type ServiceKey, type VirtualService, endpoint, realId, serviceId } from './model.ts';
import { keyOf, normalizeReal, normalizeService } from './table.ts';

/**
 * The service as the table will store it (canonical address, gate/ipip reals on the service port,
 * host netmask dropped), so that a desired table written the way ldirectord.cf says it (a gate real
 * on :8080 of a :80 virtual) compares equal to what the table reports and the diff converges. An
 * entry the table would refuse is left as given: applying it reports the error.
 */
function asStored(s: VirtualService): VirtualService {
  let svc: VirtualService;
  try {
    svc = normalizeService(s);
  } catch {
    return s;
  }
  return { ...svc, reals: s.reals.map((r) => storedReal(svc, r)) };
}

/** One real as the table will store it (asStored for one entry); an entry the table would refuse is left as given. */
function storedReal(svc: ServiceKey, r: RealServer): RealServer {
  try {
    return normalizeReal(svc, r);
  } catch {
    return r;
  }
}

function serviceAttrsDiffer(a: VirtualService, b: VirtualService): boolean {
  return (
    a.scheduler !== b.scheduler ||
    (a.persistence?.timeoutS ?? 0) !== (b.persistence?.timeoutS ?? 0) ||
    (a.persistence ? a.persistence.netmask ?? '' : '') !== (b.persistence ? b.persistence.netmask ?? '' : '') ||
    (a.schedFlags ?? []).join(',') !== (b.schedFlags ?? []).join(',') ||
    !!a.ops !== !!b.ops
  );
}

function realAttrsDiffer(a: RealServer, b: RealServer): boolean {
  return (
    a.forwarding !== b.forwarding ||
    a.weight !== b.weight ||
    (a.upperThreshold ?? 0) !== (b.upperThreshold ?? 0) ||
    (a.lowerThreshold ?? 0) !== (b.lowerThreshold ?? 0)
  );
}

/**
 * The operations that turn `actual` into `desired` for the services that `owns` accepts. Services
 * the caller does not own (someone else's `ipvsadm -A`) are never touched. Deletions of real
 * servers come before additions inside a service; a forwarding-method change is an edit, which
 * ipvsadm supports.
 */
export function diffTables(actual: IpvsTable, desired: IpvsTable, owns: (k: ServiceKey) => boolean = () => true): IpvsOp[] {
  // One pass over each side, each address canonicalized once (memoized) and each id built once:
  // the daemon diffs 10,000 reals on every table change.
  const ops: IpvsOp[] = [];
  const actualStored = actual.services.map(asStored);
  const actualById = new Map<string, VirtualService>();
  for (const s of actualStored) actualById.set(serviceId(s), s);
  const desiredIds = new Set<string>();
  for (const given of desired.services) {
    const want = asStored(given);
    const id = serviceId(want);
    desiredIds.add(id);
    const have = actualById.get(id);
    const key = keyOf(want);
    if (!have) {
      ops.push({ op: 'add-service', service: { ...want, reals: [] } });
      for (const r of want.reals) ops.push({ op: 'add-real', key, real: r });
      continue;
    }
    if (serviceAttrsDiffer(have, want)) ops.push({ op: 'edit-service', service: { ...want, reals: [] } });
    const haveReals = new Map<string, RealServer>();
    const haveIds = new Array<string>(have.reals.length);
    for (let i = 0; i < have.reals.length; i++) {
      const r = have.reals[i]!;
      const rid = realId(r);
      haveIds[i] = rid;
      haveReals.set(rid, r);
    }
    const wantIds = new Array<string>(want.reals.length);
    const wantSet = new Set<string>();
    for (let i = 0; i < want.reals.length; i++) {
      const rid = realId(want.reals[i]!);
      wantIds[i] = rid;
      wantSet.add(rid);
    }
    for (let i = 0; i < have.reals.length; i++) {
      if (wantSet.has(haveIds[i]!)) continue;
      const r = have.reals[i]!;
      ops.push({ op: 'delete-real', key, address: r.address, port: r.port });
    }
    for (let i = 0; i < want.reals.length; i++) {
      const r = want.reals[i]!;
      const h = haveReals.get(wantIds[i]!);
      if (!h) ops.push({ op: 'add-real', key, real: r });
      else if (realAttrsDiffer(h, r)) ops.push({ op: 'edit-real', key, real: r });
    }
  }
  for (const have of actualStored) {
    const id = serviceId(have);
    if (!desiredIds.has(id) && owns(have)) ops.push({ op: 'delete-service', key: keyOf(have) });
  }
  return ops;
}

/**
 * Brings a backend's table to `desired` for the owned services: read, diff, apply as one batch.
 * Returns the operations applied (empty when the table was already right).
 */
export async function reconcile(backend: IpvsBackend, desired: IpvsTable, owns: (k: ServiceKey) => boolean): Promise<IpvsOp[]> {
  const actual = await backend.read();
  const ops = diffTables(actual, desired, owns);
  if (ops.length > 0) await backend.apply(ops);
  return ops;
}

/** How one entry of a desired table should be, for StoredTable.diffEntries. */
export interface EntryChange {
  /** The virtual service the entry belongs to, as the desired table gives it (its reals are ignored). */
  service: VirtualService;
  /** The entry as the desired table would hold it (for 'remove', only its address, port and forwarding count). */
  real: RealServer;
  /** 'place': in the table as `real`; 'remove': not in the table; 'keep-if-present': as `real` if it is in the table already, else not. */
  mode: 'place' | 'remove' | 'keep-if-present';
}

interface StoredEntry {
  real: RealServer;
  /** Insertion order, which is the order table() lists the entry in (a Map keeps it; an edit keeps it too). */
  seq: number;
}

interface StoredService {
  service: VirtualService;
  reals: Map<string, StoredEntry>;
}

/** Stored forms of desired services, by object: a desired table hands out the same few service objects many times. */
const storedServices = new WeakMap<VirtualService, VirtualService>();

function storedService(s: VirtualService): VirtualService {
  let out = storedServices.get(s);
  if (!out) {
    try {
      out = { ...normalizeService(s), reals: [] };
    } catch {
      out = { ...s, reals: [] };
    }
    storedServices.set(s, out);
  }
  return out;
}

/**
 * A table the caller keeps between batches (what the backend confirmed), indexed on first use and
 * then changed in place by the batches applied to it: a change to a few of 10,000 reals costs
 * O(those reals), where diffTables costs O(the table). diffEntries gives the same operations, in
 * the same order, that diffTables(this.table(), desired) gives for a desired table that differs
 * from this one only in the entries named (the caller knows which changed since its last batch).
 */
export class StoredTable {
  #base: IpvsTable | undefined;
  #services: Map<string, StoredService> | undefined;
  #seq = 0;
  /** table() as last built; dropped by every change. */
  #table: IpvsTable | undefined;

  constructor(table: IpvsTable) {
    this.#base = table;
    this.#table = table;
  }

  #indexed(): Map<string, StoredService> {
    if (!this.#services) {
      this.#services = new Map();
      for (const s of this.#base!.services) {
        const svc = asStored(s);
        const reals = new Map<string, StoredEntry>();
        for (const r of svc.reals) reals.set(realId(r), { real: r, seq: this.#seq++ });
        this.#services.set(serviceId(svc), { service: { ...svc, reals: [] }, reals });
      }
      this.#base = undefined;
    }
    return this.#services;
  }

  /** The table as it now is: the one given, or (after apply) its stored form with the batches applied, in insertion order. */
  table(): IpvsTable {
    if (!this.#table) {
      const services: VirtualService[] = [];
      for (const s of this.#services!.values()) {
        const reals: RealServer[] = [];
        for (const e of s.reals.values()) reals.push(e.real);
        services.push({ ...s.service, reals });
      }
      this.#table = { services };
    }
    return this.#table;
  }

  /**
   * The operations for the entries named, in the order diffTables would give them: services in
   * the order of `changes` (which must be the desired table's order, entries of a service in its
   * order and together), deletions first within a service. Undefined when a service is missing or
   * differs in its own attributes: then only a whole diff can say what to do.
   */
  diffEntries(changes: readonly EntryChange[]): IpvsOp[] | undefined {
    const services = this.#indexed();
    const ops: IpvsOp[] = [];
    for (let i = 0; i < changes.length; ) {
      const given = changes[i]!.service;
      const want = storedService(given);
      const have = services.get(serviceId(want));
      if (!have || serviceAttrsDiffer(have.service, want)) return undefined;
      const key = keyOf(want);
      let j = i;
      while (j < changes.length && changes[j]!.service === given) j++;
      const deletes: StoredEntry[] = [];
      const rest: IpvsOp[] = [];
      for (let k = i; k < j; k++) {
        const c = changes[k]!;
        const r = storedReal(want, c.real);
        const h = have.reals.get(realId(r));
        if (c.mode === 'remove') {
          if (h) deletes.push(h);
        } else if (!h) {
          if (c.mode === 'place') rest.push({ op: 'add-real', key, real: r });
        } else if (realAttrsDiffer(h.real, r)) {
          rest.push({ op: 'edit-real', key, real: r });
        }
      }
      deletes.sort((a, b) => a.seq - b.seq);
      for (const h of deletes) ops.push({ op: 'delete-real', key, address: h.real.address, port: h.real.port });
      for (const op of rest) ops.push(op);
      i = j;
    }
    return ops;
  }

  /** Records a batch the backend accepted (operations as diffTables or diffEntries build them). */
  apply(ops: readonly IpvsOp[]): void {
    if (ops.length === 0) return;
    const services = this.#indexed();
    this.#table = undefined;
    for (const op of ops) {
      switch (op.op) {
        case 'add-service':
        case 'edit-service': {
          const svc = storedService(op.service);
          const have = services.get(serviceId(svc));
          if (have) have.service = svc;
          else services.set(serviceId(svc), { service: svc, reals: new Map() });
          break;
        }
        case 'delete-service':
          services.delete(serviceId(op.key));
          break;
        case 'add-real':
        case 'edit-real': {
          const s = services.get(serviceId(op.key));
          if (!s) break;
          const r = storedReal(s.service, op.real);
          const id = realId(r);
          const h = s.reals.get(id);
          if (h) h.real = r;
          else s.reals.set(id, { real: r, seq: this.#seq++ });
          break;
        }
        case 'delete-real':
          services.get(serviceId(op.key))?.reals.delete(endpoint(op.address, op.port));
          break;
      }
    }
  }
}
