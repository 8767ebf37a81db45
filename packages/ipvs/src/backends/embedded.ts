import { IpvsError, type IpvsErrorCode } from '../errors.ts';
import { type IpvsdClient, inProcessClient, socketClient } from '../client.ts';
import type { IpvsDaemon } from '../daemon.ts';
import { socketPath } from '../wire.ts';
import type { IpvsBackend, IpvsOp, IpvsTable } from '../model.ts';
import { opToRuleLine } from '../rules.ts';

/**
 * The backend for the embedded balancer: a batch is one request to tandem-ipvsd (one control-socket
 * call, or a direct call when the daemon runs in this process) and is applied all or nothing.
 */
export interface EmbeddedBackendOptions {
  /** The daemon's control socket (default as tandem-ipvsadm: $TANDEM_IPVSD_SOCKET or /run/tandem/ipvsd.sock). */
  socket?: string | undefined;
  /** A daemon in this process: no socket at all. */
  daemon?: IpvsDaemon | undefined;
  timeoutMs?: number | undefined;
}

export class EmbeddedBackend implements IpvsBackend {
  readonly name = 'embedded';
  readonly #client: IpvsdClient;

  constructor(opts: EmbeddedBackendOptions = {}) {
    this.#client = opts.daemon ? inProcessClient(opts.daemon) : socketClient(socketPath(opts.socket), opts.timeoutMs);
  }

  read(): Promise<IpvsTable> {
    return this.#client.read();
  }

  async apply(ops: readonly IpvsOp[]): Promise<void> {
    if (ops.length === 0) return;
    const r = await this.#client.exec(ops, 'atomic');
    const bad = r.results.findIndex((x) => !x.ok);
    if (bad >= 0) {
      const x = r.results[bad] as { code: string; message: string };
      throw new IpvsError((x.code in KNOWN ? x.code : 'E_IPVS_INVALID') as IpvsErrorCode, x.message, {
        details: { opIndex: bad, rule: opToRuleLine(ops[bad]!) },
        hint: `operation ${bad + 1} of ${ops.length} (${opToRuleLine(ops[bad]!)}); nothing of the batch was applied`,
      });
    }
  }

  async close(): Promise<void> {}
}

const KNOWN: Record<string, true> = {
  E_IPVS_SERVICE_EXISTS: true,
  E_IPVS_NO_SERVICE: true,
  E_IPVS_SERVICE_NOT_DEFINED: true,
  E_IPVS_DEST_EXISTS: true,
  E_IPVS_NO_DEST: true,
  E_IPVS_SCHEDULER: true,
  E_IPVS_INVALID: true,
  E_IPVS_RANGE: true,
  E_IPVS_FAMILY: true,
};
