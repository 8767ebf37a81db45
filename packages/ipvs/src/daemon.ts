import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { type ControlReply, type ControlRequest, type ControlServer, type Logger, TandemError, startControlServer } from '@tandem/core';
import { IpvsError, KERNEL_MESSAGES } from './errors.ts';
import type { Dataplane, IpvsOp, IpvsTable, ServiceKey, TableStats } from './model.ts';
import { serviceId } from './model.ts';
import { type TableCommand, parseRules } from './rules.ts';
import { encodeStats } from './wire.ts';

export { DEFAULT_SOCKET, socketPath, encodeStats, decodeStats } from './wire.ts';
import { applyEach, normalizeKey, normalizeTable } from './table.ts';

/**
 * The embedded balancer's daemon: it holds the virtual-service table as the kernel would, applies
 * batches of commands (atomically, or line by line as `ipvsadm -R` does), keeps the table in a
 * state file so that it survives a restart, drives the data plane with every new table, and
 * answers on a unix control socket. The table logic is `applyOps`; this class adds ordering (one
 * batch at a time), persistence and the data plane.
 */

export const DEFAULT_STATE_FILE = '/var/lib/tandem/ipvs-table.json';

export type ExecMode = 'atomic' | 'sequential';

export type CommandResult = { ok: true } | { ok: false; code: string; message: string };

export interface ExecResult {
  results: CommandResult[];
  /** True when the table changed (or would have, for a batch that only zeroes counters). */
  applied: boolean;
}

export type Timeouts = [number, number, number];

export interface DaemonOptions {
  /** Where the table is kept between runs; undefined keeps it in memory only. */
  stateFile?: string | undefined;
  /** The data plane, or a factory for it; default: the embedded userspace data plane. */
  dataplane?: Dataplane | (() => Promise<Dataplane>) | undefined;
  logger?: Logger | undefined;
  /** Source addresses of the embedded data plane's connections to real servers (tandem-ipvsd --source/--source6). */
  sourceAddress?: string | undefined;
  sourceAddress6?: string | undefined;
  /** The embedded data plane's TCP engine (tandem-ipvsd --engine); default auto (raw when Node offers it). */
  engine?: 'auto' | 'raw' | 'net' | undefined;
}

/** A data plane that forwards nothing (tests of the table, and `--dataplane none`). */
export function nullDataplane(): Dataplane {
  return {
    async update() {},
    stats: () => ({ services: new Map() }),
    zero() {},
    async close() {},
  };
}

/**
 * The embedded userspace data plane, with the saved `--set` timeouts: udp as the idle time of a UDP
 * flow, tcpfin as the time an ended TCP connection still counts as inactive. (They are read at
 * start; a `--set` while running is stored and takes effect at the next start.)
 */
export async function defaultDataplane(logger?: Logger, timeouts?: Timeouts, source: { sourceAddress?: string | undefined; sourceAddress6?: string | undefined; engine?: 'auto' | 'raw' | 'net' | undefined } = {}): Promise<Dataplane> {
  const mod = await import('./dataplane/index.ts');
  return mod.createDataplane({
    ...(logger ? { logger } : {}),
    ...(timeouts ? { udpTimeoutMs: timeouts[2] * 1000, tcpTimeWaitMs: timeouts[1] * 1000 } : {}),
    ...(source.sourceAddress ? { sourceAddress: source.sourceAddress } : {}),
    ...(source.sourceAddress6 ? { sourceAddress6: source.sourceAddress6 } : {}),
    ...(source.engine ? { engine: source.engine } : {}),
  });
}

interface StateFile {
  version: 1;
  table: IpvsTable;
  timeouts: Timeouts;
}

export class IpvsDaemon {
  #table: IpvsTable = { services: [] };
  #timeouts: Timeouts = [900, 120, 300];
  #dataplane: Dataplane;
  readonly #stateFile: string | undefined;
  readonly #logger: Logger | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;

  private constructor(dataplane: Dataplane, opts: DaemonOptions) {
    this.#dataplane = dataplane;
    this.#stateFile = opts.stateFile;
    this.#logger = opts.logger;
  }

  /** Loads the saved table (if any), starts the data plane with it. */
  static async create(opts: DaemonOptions = {}): Promise<IpvsDaemon> {
    const d = new IpvsDaemon(nullDataplane(), opts);
    if (opts.stateFile) d.#load(opts.stateFile);
    const dp = opts.dataplane === undefined ? await defaultDataplane(opts.logger, d.#timeouts, opts) : typeof opts.dataplane === 'function' ? await opts.dataplane() : opts.dataplane;
    d.#dataplane = dp;
    await dp.update(d.#table);
    return d;
  }

  #load(file: string): void {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw new IpvsError('E_IPVS_STATE', `cannot read the saved table ${file}: ${(err as Error).message}`, { cause: err });
    }
    try {
      const st = JSON.parse(text) as StateFile;
      this.#table = normalizeTable(st.table);
      if (Array.isArray(st.timeouts) && st.timeouts.length === 3) this.#timeouts = st.timeouts;
    } catch (err) {
      throw new IpvsError('E_IPVS_STATE', `the saved table ${file} is not valid: ${(err as Error).message}`, {
        cause: err,
        hint: 'remove it to start empty, or fix it',
      });
    }
    this.#logger?.info(`loaded ${this.#table.services.length} virtual service(s) from ${file}`);
  }

  #save(): void {
    if (!this.#stateFile) return;
    const st: StateFile = { version: 1, table: this.#table, timeouts: this.#timeouts };
    mkdirSync(dirname(this.#stateFile), { recursive: true });
    // Write then rename, so a crash never leaves half a table behind.
    const tmp = `${this.#stateFile}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(st) + '\n', { mode: 0o600 });
    renameSync(tmp, this.#stateFile);
  }

  get table(): IpvsTable {
    return structuredClone(this.#table);
  }

  get timeouts(): Timeouts {
    return [...this.#timeouts];
  }

  /** The data plane's forwarding engine ('raw' or 'net' for the embedded one; undefined for none). */
  get engine(): string | undefined {
    return this.#dataplane.engine;
  }

  stats(): TableStats {
    return this.#dataplane.stats();
  }

  /** Persistent connections (templates) per real, when the data plane tells (ipvsadm --persistent-conn). */
  persistConns(): Map<string, Map<string, number>> {
    const out = new Map<string, Map<string, number>>();
    const dp = this.#dataplane as Dataplane & { dump?: (k: ServiceKey) => { reals?: { id: string; persistent?: number }[] } | undefined };
    if (typeof dp.dump !== 'function') return out;
    for (const s of this.#table.services) {
      const d = dp.dump(s);
      if (d?.reals) out.set(serviceId(s), new Map(d.reals.map((r) => [r.id, r.persistent ?? 0])));
    }
    return out;
  }

  /** Runs `fn` after every earlier batch, so batches never interleave. */
  #serialize<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Applies commands. `atomic`: all or nothing; the first refusal is reported at its index and the
   * table stays as it was. `sequential`: each command is applied on its own and a refused one is
   * reported and skipped, which is what `ipvsadm -R` does line by line. Either way the data plane
   * and the state file see one new table per call.
   */
  exec(cmds: readonly TableCommand[], mode: ExecMode = 'atomic'): Promise<ExecResult> {
    return this.#serialize(async () => {
      if (this.#closed) throw new IpvsError('E_IPVS_DAEMON', 'the balancer daemon is shutting down');
      const results: CommandResult[] = [];
      let table = this.#table;
      let timeouts = this.#timeouts;
      const zeroes: (ServiceKey | undefined)[] = [];
      let failed = false;
      for (let i = 0; i < cmds.length; i++) {
        const c = cmds[i]!;
        if (failed) {
          results.push({ ok: false, code: 'E_IPVS_SKIPPED', message: 'not applied: an earlier command of the batch was refused' });
          continue;
        }
        if (c.op !== 'clear' && c.op !== 'set-timeouts' && c.op !== 'zero') {
          // A run of table operations is applied in one pass over one copy of the table.
          let j = i;
          while (j < cmds.length && !['clear', 'set-timeouts', 'zero'].includes(cmds[j]!.op)) j++;
          const run = cmds.slice(i, j) as IpvsOp[];
          const r = applyEach(table, run);
          for (const e of r.errors) {
            if (failed) results.push({ ok: false, code: 'E_IPVS_SKIPPED', message: 'not applied: an earlier command of the batch was refused' });
            else if (e) {
              results.push({ ok: false, code: e.code, message: e.message });
              if (mode === 'atomic') failed = true;
            } else results.push({ ok: true });
          }
          if (r.errors.some((e) => e) || run.length > 0) table = r.table;
          i = j - 1;
          continue;
        }
        try {
          if (c.op === 'clear') table = { services: [] };
          else if (c.op === 'set-timeouts') timeouts = c.timeouts.map((v, i) => (v === 0 ? timeouts[i]! : v)) as Timeouts;
          else if (c.op === 'zero') {
            if (c.key) {
              const id = serviceId(normalizeKey(c.key));
              if (!table.services.some((s) => serviceId(s) === id)) throw new IpvsError('E_IPVS_NO_SERVICE', KERNEL_MESSAGES.E_IPVS_NO_SERVICE!);
            }
            zeroes.push(c.key);
          }
          results.push({ ok: true });
        } catch (err) {
          const e = err as TandemError;
          results.push({ ok: false, code: e.code ?? 'E_IPVS_INVALID', message: e.message });
          if (mode === 'atomic') failed = true;
        }
      }
      if (failed) return { results, applied: false };
      const changed = table !== this.#table || timeouts !== this.#timeouts;
      this.#table = table;
      this.#timeouts = timeouts;
      if (changed) {
        this.#save();
        await this.#dataplane.update(table);
      }
      for (const k of zeroes) this.#dataplane.zero(k);
      return { results, applied: changed };
    });
  }

  /** Replaces the table with the rules of an ipvsadm-save file (ipvsadm -C, then the rules), atomically. */
  async restoreFile(file: string): Promise<ExecResult> {
    const { ops } = parseRules(readFileSync(file, 'utf8'), file);
    const r = await this.exec([{ op: 'clear' }, ...ops], 'atomic');
    const bad = r.results.findIndex((x) => !x.ok);
    if (bad >= 0) {
      const x = r.results[bad] as { message: string; code: string };
      throw new IpvsError('E_IPVS_RULE', `${file}: rule ${bad} refused: ${x.message}`, { details: { code: x.code } });
    }
    return r;
  }

  /** The control-socket handler (JSON requests; see README). */
  async handle(req: ControlRequest): Promise<ControlReply> {
    switch (req.cmd) {
      case 'exec': {
        const mode = req.mode === 'sequential' ? 'sequential' : 'atomic';
        if (!Array.isArray(req.ops)) return { ok: false, error: 'exec needs an "ops" array', code: 'E_CONTROL_PROTOCOL' };
        const r = await this.exec(req.ops as TableCommand[], mode);
        return { ok: true, ...r };
      }
      case 'read':
        return { ok: true, table: this.table };
      case 'list':
        return { ok: true, table: this.table, stats: encodeStats(this.stats()), timeouts: this.timeouts, persistConns: [...this.persistConns()].map(([k, v]) => [k, [...v]]) };
      case 'status':
        return { ok: true, pid: process.pid, services: this.#table.services.length, reals: this.#table.services.reduce((n, s) => n + s.reals.length, 0), ...(this.engine ? { engine: this.engine } : {}), memory: process.memoryUsage() };
      default:
        return { ok: false, error: `unknown command ${req.cmd}`, code: 'E_CONTROL_PROTOCOL' };
    }
  }

  /** Answers on a unix socket (mode 0600, or 0660 for `group`). */
  listen(path: string, group?: number): Promise<ControlServer> {
    // A batch of tens of thousands of operations (an ldirectord start, a large -R) is one request.
    return startControlServer(path, (req) => this.handle(req), { maxRequestBytes: 256 << 20, ...(group === undefined ? {} : { group }) });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#queue;
    await this.#dataplane.close();
  }
}

/** A group name (from /etc/group) or a number, as a gid. */
export function resolveGroup(g: string): number {
  if (/^\d+$/.test(g)) return Number(g);
  let text = '';
  try {
    text = readFileSync('/etc/group', 'utf8');
  } catch {
    /* no group file */
  }
  for (const line of text.split('\n')) {
    const [name, , gid] = line.split(':');
    if (name === g && gid !== undefined) return Number(gid);
  }
  throw new TandemError('E_IPVS_DAEMON', `unknown group ${g}`, { hint: 'give a group name from /etc/group or a numeric gid' });
}
