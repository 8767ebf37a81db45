/**
 * `npm start`, the main job, as a user runs it: it must bring the cluster up, show traffic flowing
 * through the active director, and remove everything it made when it leaves.
 */
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { join } from 'node:path';
import { ROOT } from './lab/lab.ts';

const NODE = join(ROOT, 'node_modules/.bin/node');

describe('npm start (test/lab/start.ts)', function () {
  this.timeout(120_000);

  it('runs seed 001 in namespaces, shows the active director and traffic per real, and cleans up', async () => {
    const child = execa(NODE, [join(ROOT, 'test/lab/start.ts'), '--seconds', '14'], { reject: false, timeout: 110_000, stdin: 'ignore' });
    const pid = child.pid;
    const r = await child;
    assert.equal(r.exitCode, 0, r.stderr);
    const screens = r.stdout.split('tandem lab — seed 001');
    const last = screens[screens.length - 1]!;
    assert.match(last, /loadbalancer .*holds VIP/);
    for (const rs of ['rs1', 'rs2', 'rs3']) assert.match(last, new RegExp(`${rs} .*weight 1 .*answered client: [1-9]`));
    assert.match(r.stdout, /lab removed\./);
    const left = await execa('ip', ['netns', 'list']);
    assert.doesNotMatch(left.stdout, new RegExp(`tdl${pid}`));
  });

  it('runs the single-director part on loopback when asked (or when namespaces cannot be made)', async () => {
    const port = 20_000 + (process.pid % 20_000);
    const r = await execa(NODE, [join(ROOT, 'test/lab/start.ts'), '--seconds', '8'], { reject: false, timeout: 60_000, stdin: 'ignore', env: { TANDEM_LAB: 'loopback', TANDEM_LAB_PORT: String(port) } });
    assert.equal(r.exitCode, 0, r.stderr);
    const screens = r.stdout.split('tandem on loopback');
    const last = screens[screens.length - 1]!;
    for (const a of ['127.0.0.11', '127.0.0.12', '127.0.0.13']) assert.match(last, new RegExp(`${a.replaceAll('.', '\\.')}:${port} +web up +weight 1 +answered: [1-9]`));
  });
});
