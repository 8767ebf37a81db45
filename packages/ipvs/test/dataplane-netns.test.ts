import assert from 'node:assert/strict';
import { execa } from 'execa';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '../../..');

/**
 * Non-local bind, as a director that does not hold the VIP yet: only inside a namespace this test
 * creates (the sysctl is per namespace; the machine's own is never touched).
 */
describe('dataplane: listening on a virtual address that is not local yet (netns)', function () {
  this.timeout(90_000);
  const ns = `tdp${process.pid}-${Math.random().toString(36).slice(2, 7)}`;
  let made = false;

  before(async function () {
    // Namespaces of an earlier run that was killed before its after hook (its pid is gone).
    let names: string[] = [];
    try {
      names = readdirSync('/run/netns');
    } catch {
      // no namespaces yet
    }
    for (const n of names) {
      const m = /^tdp(\d+)-[a-z0-9]+$/.exec(n);
      if (!m) continue;
      try {
        process.kill(Number(m[1]), 0);
      } catch {
        await execa('ip', ['netns', 'del', n], { reject: false });
      }
    }
    const r = await execa('ip', ['netns', 'add', ns], { reject: false });
    if (r.exitCode !== 0) throw new Error(`ip netns add failed: ${r.stderr}`);
    made = true;
    await execa('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up']);
  });

  after(async () => {
    if (made) await execa('ip', ['netns', 'del', ns], { reject: false });
  });

  async function child(vip: string): Promise<Record<string, unknown>> {
    const r = await execa('ip', ['netns', 'exec', ns, join(root, 'node_modules/.bin/node'), join(here, 'dataplane-netns-child.ts'), vip], { reject: false, timeout: 40_000, cwd: root });
    // The child must end by itself: a handle left open by dp.close() would keep it alive.
    assert.equal(r.timedOut, false, 'child process ended on its own after dp.close()');
    const line = String(r.stdout).trim().split('\n').pop() ?? '';
    try {
      return JSON.parse(line);
    } catch {
      throw new Error(`child failed (exit ${r.exitCode}): ${r.stdout}\n${r.stderr}`);
    }
  }

  it('with net.ipv4.ip_nonlocal_bind=1 it listens at once and serves when the address arrives', async () => {
    await execa('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv4.ip_nonlocal_bind=1']);
    const r = await child('10.77.0.1');
    assert.equal(r.error, undefined);
    assert.equal(r.listeningAtOnce, true);
    assert.equal(r.retryWarnings, 0);
    assert.equal(r.addedAddress, true);
    assert.equal(r.body, 'inside');
  });

  it('without it the bind fails with EADDRNOTAVAIL, is retried, and succeeds once the address is added', async () => {
    await execa('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv4.ip_nonlocal_bind=0']);
    const r = await child('10.77.0.2');
    assert.equal(r.error, undefined);
    assert.equal(r.listeningAtOnce, false);
    assert.equal(r.retryWarnings, 1);
    assert.equal(r.listeningAfterAdd, true);
    assert.equal(r.body, 'inside');
  });
});
