import { type IpvsBackend, type IpvsOp, type IpvsTable, type RealServer, type ServiceKey, type VirtualService, realId, serviceId } from './model.ts';
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
  const reals = s.reals.map((r) => {
    try {
      return normalizeReal(svc, r);
    } catch {
      return r;
    }
  });
  return { ...svc, reals };
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
