import { existsSync } from 'node:fs';
import { TandemError } from '@tandem/core/errors';
import type { IpvsBackend } from '@tandem/ipvs/model';

/**
 * Which IPVS backend the daemon drives. ldirectord only ever runs /sbin/ipvsadm (else
 * /usr/sbin/ipvsadm); tandem defaults to the same when one exists and to the embedded userspace
 * balancer otherwise. The backends other than memory are imported lazily, so a missing or broken
 * one only matters when it is chosen.
 */
export type BackendName = 'ipvsadm' | 'embedded' | 'memory';
export const BACKEND_NAMES: readonly BackendName[] = ['ipvsadm', 'embedded', 'memory'];

export function findIpvsadm(exists: (p: string) => boolean = existsSync): string | undefined {
  return ['/sbin/ipvsadm', '/usr/sbin/ipvsadm'].find((p) => exists(p));
}

export function defaultBackendName(exists: (p: string) => boolean = existsSync): BackendName {
  return findIpvsadm(exists) ? 'ipvsadm' : 'embedded';
}

type Ctor = new (...args: unknown[]) => IpvsBackend;

/** The first export of a module that builds a backend: a `create*Backend` function or a `*Backend` class. */
async function fromModule(specifier: string, args: unknown[]): Promise<IpvsBackend> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import(specifier)) as Record<string, unknown>;
  } catch (err) {
    throw new TandemError('E_LD_BACKEND', `backend module ${specifier} is not available: ${(err as Error).message}`, { cause: err, hint: 'choose another backend with --backend' });
  }
  for (const [name, value] of Object.entries(mod)) {
    if (typeof value === 'function' && /^create\w*Backend$/.test(name)) return await (value as (...a: unknown[]) => IpvsBackend | Promise<IpvsBackend>)(...args);
  }
  for (const [name, value] of Object.entries(mod)) {
    if (typeof value === 'function' && /Backend$/.test(name)) return new (value as Ctor)(...args);
  }
  throw new TandemError('E_LD_BACKEND', `module ${specifier} exports no backend (create...Backend or ...Backend)`);
}

export interface BackendOptions {
  /** ipvsadm path (default: /sbin/ipvsadm, else /usr/sbin/ipvsadm). */
  ipvsadm?: string | undefined;
}

export async function createBackend(name: BackendName, opts: BackendOptions = {}): Promise<IpvsBackend> {
  switch (name) {
    case 'memory': {
      const { MemoryBackend } = await import('@tandem/ipvs/backends/memory');
      return new MemoryBackend();
    }
    case 'ipvsadm': {
      const path = opts.ipvsadm ?? findIpvsadm();
      if (!path) throw new TandemError('E_LD_BACKEND', 'Can not find ipvsadm (looked for /sbin/ipvsadm and /usr/sbin/ipvsadm)', { hint: 'install ipvsadm, or use --backend embedded' });
      return fromModule('@tandem/ipvs/backends/ipvsadm', [{ ipvsadm: path, command: path }]);
    }
    case 'embedded':
      return fromModule('@tandem/ipvs/backends/embedded', [{}]);
  }
}
