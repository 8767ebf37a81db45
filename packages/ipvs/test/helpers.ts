import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Dataplane, TableStats } from '@tandem/ipvs';
import { IpvsDaemon, createNameResolver, inProcessClient, runIpvsadm } from '@tandem/ipvs';
import { FIXTURES } from '../../../test/fixtures/paths.ts';

const names = createNameResolver();

export const PKG = dirname(dirname(fileURLToPath(import.meta.url)));
export const ROOT = dirname(dirname(PKG));
export const EXAMPLES = join(FIXTURES, 'examples');
export const IPVSADM_TS = join(PKG, 'bin', 'tandem-ipvsadm.ts');
export const IPVSD_TS = join(PKG, 'bin', 'tandem-ipvsd.ts');
/** PATH with the repository's Node 24 first, for the `#!/usr/bin/env node` bins. */
export const NODE_PATH = `${join(ROOT, 'node_modules', '.bin')}:${process.env.PATH ?? ''}`;

/** A data plane that forwards nothing and reports the stats a test sets. */
export function stubDataplane(): Dataplane & { set(s: TableStats): void; zeroed: unknown[] } {
  let stats: TableStats = { services: new Map() };
  const zeroed: unknown[] = [];
  return {
    zeroed,
    set(s) {
      stats = s;
    },
    async update() {},
    stats: () => stats,
    zero(k) {
      zeroed.push(k ?? 'all');
    },
    async close() {},
  };
}

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs tandem-ipvsadm's logic in this process against `daemon`. */
export async function cli(daemon: IpvsDaemon, argv: string[], stdin = '', prog = '/usr/sbin/ipvsadm'): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const code = await runIpvsadm(
    argv,
    { out: (s) => (stdout += s), err: (s) => (stderr += s), stdin: async () => stdin },
    { prog, client: () => inProcessClient(daemon), names },
  );
  return { code, stdout, stderr };
}

/** Debian's real ipvsadm over a fake kernel (LD_PRELOAD), or undefined when gcc or ipvsadm is missing. */
export interface RealIpvsadm {
  run(argv: string[], stdin?: string): CliRun;
  state: string;
}

export function realIpvsadm(): RealIpvsadm | undefined {
  if (!existsSync('/usr/sbin/ipvsadm')) return undefined;
  const dir = mkdtempSync(join(tmpdir(), 'fake-ipvs-'));
  const so = join(dir, 'fakeipvs.so');
  const cc = spawnSync('gcc', ['-shared', '-fPIC', '-O1', '-o', so, join(PKG, 'test', 'fixtures', 'fake-ipvs-kernel.c'), '-ldl'], { encoding: 'utf8' });
  if (cc.status !== 0) return undefined;
  const state = join(dir, 'state');
  return {
    state,
    run(argv, stdin = '') {
      const r = spawnSync('/usr/sbin/ipvsadm', argv, { input: stdin, encoding: 'utf8', env: { ...process.env, LD_PRELOAD: so, FAKE_IPVS_STATE: state }, timeout: 10_000 });
      return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
    },
  };
}

/** A directory holding an `ipvsadm` link to bin/ipvsadm (put it first on PATH, or pass its path). */
export function ipvsadmLinkDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ipvsadm-link-'));
  symlinkSync(join(PKG, 'bin', 'ipvsadm'), join(dir, 'ipvsadm'));
  return dir;
}
