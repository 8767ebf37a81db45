import { existsSync, readFileSync } from 'node:fs';
import { TandemError } from '@tandem/core/errors';
import type { IpvsBackend } from '@tandem/ipvs/model';

/**
 * Which IPVS backend the daemon drives. ldirectord only ever runs /sbin/ipvsadm (else
 * /usr/sbin/ipvsadm); tandem defaults to the same when one exists and the kernel has IPVS, and to
 * the embedded userspace balancer otherwise. The backends are built by the ipvs package's factory, imported lazily so
 * that `configtest` and `status` do not load them.
 */
export type BackendName = 'ipvsadm' | 'embedded' | 'memory';
export const BACKEND_NAMES: readonly BackendName[] = ['ipvsadm', 'embedded', 'memory'];

export function findIpvsadm(exists: (p: string) => boolean = existsSync): string | undefined {
  return ['/sbin/ipvsadm', '/usr/sbin/ipvsadm'].find((p) => exists(p));
}

/**
 * Kernel IPVS is there when it is loaded (/proc/net/ip_vs, /sys/module/ip_vs) or loadable (ipvsadm
 * loads ip_vs itself when the kernel has it as a module).
 */
export function kernelHasIpvs(exists: (p: string) => boolean = existsSync, release = uname()): boolean {
  if (exists('/proc/net/ip_vs') || exists('/sys/module/ip_vs')) return true;
  try {
    return readFileSync(`/lib/modules/${release}/modules.dep`, 'utf8').includes('/ip_vs.ko');
  } catch {
    return false;
  }
}

function uname(): string {
  try {
    return readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  } catch {
    return '';
  }
}

/** ipvsadm when the command and kernel IPVS are both there (as ldirectord would use), else the embedded balancer. */
export function defaultBackendName(exists: (p: string) => boolean = existsSync, kernel: () => boolean = () => kernelHasIpvs(exists)): BackendName {
  return findIpvsadm(exists) && kernel() ? 'ipvsadm' : 'embedded';
}

export interface BackendOptions {
  /** ipvsadm path (default: /sbin/ipvsadm, else /usr/sbin/ipvsadm). */
  ipvsadm?: string | undefined;
  /** The embedded balancer's control socket (default: $TANDEM_IPVSD_SOCKET or /run/tandem/ipvsd.sock). */
  ipvsdSocket?: string | undefined;
}

export async function createBackend(name: BackendName, opts: BackendOptions = {}): Promise<IpvsBackend> {
  let factory: typeof import('@tandem/ipvs/backends/index');
  try {
    factory = await import('@tandem/ipvs/backends/index');
  } catch (err) {
    throw new TandemError('E_LD_BACKEND', `the IPVS backends cannot be loaded: ${(err as Error).message}`, { cause: err });
  }
  try {
    return factory.createBackend(name, { ipvsadm: { path: opts.ipvsadm }, embedded: { socket: opts.ipvsdSocket } });
  } catch (err) {
    const e = err as TandemError;
    throw new TandemError('E_LD_BACKEND', `IPVS backend ${name}: ${e.message}`, { cause: err, hint: e.hint ?? 'choose another backend with --backend' });
  }
}
