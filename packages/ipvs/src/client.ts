import { type ControlReply, controlRequest } from '@tandem/core/control';
import { IpvsError } from './errors.ts';
import type { IpvsTable, TableStats } from './model.ts';
import type { ExecMode, ExecResult, IpvsDaemon, Timeouts } from './daemon.ts';
import { decodeStats, encodeStats } from './wire.ts';
import type { TableCommand } from './rules.ts';

/**
 * How the ipvsadm-compatible command and the embedded backend talk to tandem-ipvsd: over its unix
 * control socket (one JSON request per call), or directly to a daemon object in the same process.
 */
export interface IpvsdClient {
  exec(ops: readonly TableCommand[], mode: ExecMode): Promise<ExecResult>;
  read(): Promise<IpvsTable>;
  list(): Promise<{ table: IpvsTable; stats: TableStats; timeouts: Timeouts; persistConns?: Map<string, Map<string, number>> }>;
}

function unwrap(path: string, r: ControlReply): Record<string, unknown> {
  if (!r.ok) throw new IpvsError('E_IPVS_DAEMON', `tandem-ipvsd on ${path} refused the request: ${r.error}`, { details: { code: r.code } });
  return r;
}

export function socketClient(path: string, timeoutMs = 30_000): IpvsdClient {
  const call = async (req: { cmd: string; [k: string]: unknown }) => {
    let reply: ControlReply;
    try {
      reply = await controlRequest(path, req, timeoutMs);
    } catch (err) {
      throw new IpvsError('E_IPVS_DAEMON', `cannot reach tandem-ipvsd on ${path}: ${(err as Error).message}`, {
        cause: err,
        hint: 'start it with tandem-ipvsd, or point TANDEM_IPVSD_SOCKET / --socket at its socket',
      });
    }
    return unwrap(path, reply);
  };
  return {
    async exec(ops, mode) {
      const r = await call({ cmd: 'exec', mode, ops });
      return { results: r.results as ExecResult['results'], applied: r.applied as boolean };
    },
    async read() {
      return (await call({ cmd: 'read' })).table as IpvsTable;
    },
    async list() {
      const r = await call({ cmd: 'list' });
      const pc = (r.persistConns as [string, [string, number][]][] | undefined) ?? [];
      return {
        table: r.table as IpvsTable,
        stats: decodeStats(r.stats as Parameters<typeof decodeStats>[0]),
        timeouts: r.timeouts as Timeouts,
        persistConns: new Map(pc.map(([k, v]) => [k, new Map(v)])),
      };
    },
  };
}

export function inProcessClient(d: IpvsDaemon): IpvsdClient {
  return {
    exec: (ops, mode) => d.exec(ops, mode),
    read: async () => d.table,
    // Through the same encoding as the socket, so both paths return the same shapes.
    list: async () => ({ table: d.table, stats: decodeStats(encodeStats(d.stats())), timeouts: d.timeouts, persistConns: d.persistConns() }),
  };
}
