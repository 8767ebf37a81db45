import { IpvsError } from '../errors.ts';
import type { IpvsBackend, IpvsTable } from '../model.ts';
import { EmbeddedBackend, type EmbeddedBackendOptions } from './embedded.ts';
import { IpvsadmBackend, type IpvsadmBackendOptions } from './ipvsadm.ts';
import { MemoryBackend } from './memory.ts';

export type BackendName = 'ipvsadm' | 'embedded' | 'memory';

export interface BackendOptions {
  ipvsadm?: IpvsadmBackendOptions;
  embedded?: EmbeddedBackendOptions;
  memory?: { initial?: IpvsTable };
}

/** A backend by name, as ldirectord's configuration or command line names it. */
export function createBackend(name: string, opts: BackendOptions = {}): IpvsBackend {
  switch (name) {
    case 'ipvsadm':
      return new IpvsadmBackend(opts.ipvsadm);
    case 'embedded':
      return new EmbeddedBackend(opts.embedded);
    case 'memory':
      return new MemoryBackend(opts.memory?.initial);
    default:
      throw new IpvsError('E_IPVS_BACKEND', `unknown IPVS backend ${name}`, { hint: 'one of ipvsadm, embedded, memory' });
  }
}
