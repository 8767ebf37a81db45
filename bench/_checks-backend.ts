// An in-memory IPVS backend for the checks benchmark whose apply costs O(operations): the point of
// the benchmark is ldirectord's checking, policy and diff, not a table implementation. (The ipvs
// package's MemoryBackend re-validates the whole service per operation, which at 10,000 reals is
// seconds per batch; see CHECKS.md.)
import { type IpvsBackend, type IpvsOp, type IpvsTable, type RealServer, type VirtualService, endpoint, serviceId } from '@tandem/ipvs';

export class FastMemoryBackend implements IpvsBackend {
  readonly name = 'bench-memory';
  #services = new Map<string, { service: VirtualService; reals: Map<string, RealServer> }>();

  async read(): Promise<IpvsTable> {
    const services: VirtualService[] = [];
    for (const { service, reals } of this.#services.values()) services.push({ ...service, reals: [...reals.values()].map((r) => ({ ...r })) });
    return { services };
  }

  async apply(ops: readonly IpvsOp[]): Promise<void> {
    for (const op of ops) {
      switch (op.op) {
        case 'add-service':
        case 'edit-service': {
          const have = this.#services.get(serviceId(op.service));
          const reals = have?.reals ?? new Map<string, RealServer>();
          if (op.op === 'add-service') for (const r of op.service.reals) reals.set(endpoint(r.address, r.port), { ...r });
          this.#services.set(serviceId(op.service), { service: { ...op.service, reals: [] }, reals });
          break;
        }
        case 'delete-service':
          this.#services.delete(serviceId(op.key));
          break;
        case 'add-real':
        case 'edit-real': {
          const s = this.#services.get(serviceId(op.key));
          if (!s) throw new Error(`no service ${serviceId(op.key)}`);
          s.reals.set(endpoint(op.real.address, op.real.port), { ...op.real });
          break;
        }
        case 'delete-real': {
          const s = this.#services.get(serviceId(op.key));
          if (!s?.reals.delete(endpoint(op.address, op.port))) throw new Error(`no real ${endpoint(op.address, op.port)} in ${serviceId(op.key)}`);
          break;
        }
      }
    }
  }
}
