import type { IpvsBackend, IpvsOp, IpvsTable } from '../model.ts';
import { IndexedTable, sortedTable } from '../table.ts';

/**
 * A backend whose table lives in this process, with the kernel's validation: adding a service or
 * real that exists, editing or deleting one that does not, an unknown scheduler... throw an
 * IpvsError with ipvsadm's message, and a failing batch leaves the table as it was. For tests of
 * everything above the backend (ldirectord's policy and loop), and as the reference semantics the
 * other backends are compared with.
 */
export class MemoryBackend implements IpvsBackend {
  readonly name = 'memory';
  /** Indexed by service and real, so that a batch costs O(its operations) at 10,000 reals. */
  #table: IndexedTable;
  /** Every batch applied successfully, in order (tests assert on what was sent). */
  readonly batches: IpvsOp[][] = [];
  /** Every batch that was refused, with the error. */
  readonly refused: { ops: IpvsOp[]; error: unknown }[] = [];
  #closed = false;

  constructor(initial: IpvsTable = { services: [] }) {
    this.#table = new IndexedTable(initial);
  }

  /** The current table (a sorted copy). */
  get table(): IpvsTable {
    return sortedTable(this.#table.table());
  }

  async read(): Promise<IpvsTable> {
    return sortedTable(this.#table.table());
  }

  async apply(ops: readonly IpvsOp[]): Promise<void> {
    const copy = structuredClone([...ops]);
    try {
      this.#table.apply(copy);
    } catch (error) {
      this.refused.push({ ops: copy, error });
      throw error;
    }
    this.batches.push(copy);
  }

  /** Replaces the table as an operator would behind ldirectord's back (`ipvsadm -C`, a restore). */
  set(table: IpvsTable): void {
    this.#table = new IndexedTable(table);
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  get closed(): boolean {
    return this.#closed;
  }
}
