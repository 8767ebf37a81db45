/**
 * Debian packages the benchmarks need, listed in bench/debian-packages.txt and installed when
 * missing, the way test/install-deps.sh does it: apt serialized by /tmp/tandem-apt.lock, and a
 * policy-rc.d so that a freshly installed daemon (keepalived, nginx, haproxy) does not start itself.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

const LIST = join(dirname(fileURLToPath(import.meta.url)), 'debian-packages.txt');

/** Every package named in bench/debian-packages.txt (`#` starts a comment). */
export function benchPackages(): string[] {
  return readFileSync(LIST, 'utf8').split('\n').map((l) => l.replace(/#.*/, '').trim()).filter(Boolean);
}

export async function missingPackages(names: string[]): Promise<string[]> {
  const missing: string[] = [];
  for (const p of names) {
    const r = await execa('dpkg-query', ['-W', '-f=${Status}', p], { reject: false });
    if (!String(r.stdout).includes('install ok installed')) missing.push(p);
  }
  return missing;
}

/**
 * Installs those of `names` (default: the whole list) that are missing. A benchmark passes the
 * subset it uses; each must be in the list, so the list stays the one place that says what the
 * benchmarks pull in.
 */
export async function ensureDebianPackages(names: string[] = benchPackages()): Promise<void> {
  const listed = new Set(benchPackages());
  const unlisted = names.filter((n) => !listed.has(n));
  if (unlisted.length) throw new Error(`${unlisted.join(', ')}: not in bench/debian-packages.txt`);
  const missing = await missingPackages(names);
  if (missing.length === 0) return;
  console.log(`installing ${missing.join(' ')} (bench/debian-packages.txt)`);
  const script = `set -e; made=0; if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; made=1; fi; trap '[ $made -eq 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT; export DEBIAN_FRONTEND=noninteractive; apt-get update -q; apt-get install -y -q --no-install-recommends ${missing.join(' ')}`;
  const r = await execa('flock', ['/tmp/tandem-apt.lock', 'sh', '-c', script], { reject: false, stdio: 'inherit' });
  if (r.exitCode !== 0) throw new Error(`could not install ${missing.join(' ')}`);
}
