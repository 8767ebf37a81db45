/**
 * The `heartbeat` command as a user runs it: configtest verdicts and exit codes, then the daemon's
 * lifecycle for real (start detaches and writes a pid file, -s / status, reload, a second start,
 * -k stops by pid), with cl_status and hb_standby against it. The daemon runs in this namespace on
 * loopback only (ucast to its own 127.0.0.1, which sends nothing) with a silent peer.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync, chmodSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { readPidFile, processAlive } from '@tandem/core';
import { processGone } from '../src/cli/heartbeat.ts';

const here = dirname(fileURLToPath(import.meta.url));
const BIN = join(here, '../bin');

function configDir(root: string, opts: { hacf?: string[]; authMode?: number; haresources?: string; node?: string } = {}): string {
  const dir = mkdtempSync(join(root, 'ha.d-'));
  const port = 20000 + Math.floor(Math.random() * 20000);
  writeFileSync(join(dir, 'ha.cf'), (opts.hacf ?? [
    'keepalive 200ms', 'deadtime 2', 'initdead 4', `udpport ${port}`, 'ucast lo 127.0.0.1', 'node node1 node2', `logfile ${join(dir, 'ha-log')}`,
  ]).join('\n') + '\n');
  writeFileSync(join(dir, 'authkeys'), 'auth 2\n2 sha1 cli-test-secret\n');
  chmodSync(join(dir, 'authkeys'), opts.authMode ?? 0o600);
  writeFileSync(join(dir, 'nodeinfo'), `${opts.node ?? 'node1'}\n`);
  if (opts.haresources !== undefined) writeFileSync(join(dir, 'haresources'), opts.haresources);
  return dir;
}

const run = (tool: string, args: string[]) => execa(join(BIN, tool), args, { reject: false, timeout: 60_000 });

describe('heartbeat command', function () {
  this.timeout(120_000);
  let root: string;
  const pidFiles: string[] = [];
  before(() => { root = mkdtempSync(join(tmpdir(), 'hb-cli-')); });
  after(() => {
    for (const f of pidFiles) {
      const pid = readPidFile(f);
      if (pid !== undefined && processAlive(pid)) process.kill(pid, 'SIGKILL');
    }
    rmSync(root, { recursive: true, force: true });
  });

  describe('configtest', () => {
    it('a good configuration: exit 0', async () => {
      const r = await run('heartbeat', ['configtest', '--config-dir', configDir(root)]);
      assert.equal(r.exitCode, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /^configuration OK/m);
    });

    it('a group-readable authkeys is an error (exit 6)', async () => {
      const r = await run('heartbeat', ['configtest', '--config-dir', configDir(root, { authMode: 0o640 })]);
      assert.equal(r.exitCode, 6);
      assert.match(r.stdout, /Bad permissions on keyfile .*authkeys.*\[E_AUTHKEYS_MODE\]/);
      assert.match(r.stdout, /configuration has 1 error/);
    });

    it('machine-dependent problems are warnings: this host not a node, a missing interface', async () => {
      const dir = configDir(root, { node: 'elsewhere', hacf: ['keepalive 1', 'deadtime 5', 'ucast nosuch0 10.0.0.2', 'node node1 node2'] });
      const r = await run('heartbeat', ['configtest', '--config-dir', dir]);
      assert.equal(r.exitCode, 0, r.stdout);
      assert.match(r.stdout, /warning: Current node \[elsewhere\] not in configuration/);
      assert.match(r.stdout, /warning: .*interface nosuch0 does not exist.*\[E_HACF_NO_INTERFACE\]/);
      // ...and the same problems stop a start.
      const s = await run('heartbeat', ['start', '--config-dir', dir, '--socket', join(root, 'never.sock'), '--pid-file', join(root, 'never.pid')]);
      assert.equal(s.exitCode, 6);
      assert.match(s.stderr, /Heartbeat not started: configuration error\./);
      assert.equal(existsSync(join(root, 'never.pid')), false);
    });

    it('ha.cf errors name file and line; haresources is checked with them', async () => {
      const dir = configDir(root, { hacf: ['keepalive 1', 'deadtime 5', 'kepalive 2', 'ucast lo 127.0.0.1', 'node node1 node2'] });
      const r = await run('heartbeat', ['configtest', '--config-dir', dir]);
      assert.equal(r.exitCode, 6);
      assert.match(r.stdout, /ha\.cf:3: .*kepalive.*did you mean keepalive/);
      const hares = configDir(root, { haresources: 'node1 IPaddr::10.0.0.8/24/eth0\nnode3 IPaddr::10.0.0.9/24/eth0\n' });
      const h = await run('heartbeat', ['configtest', '--config-dir', hares]);
      assert.equal(h.exitCode, 6);
      assert.match(h.stdout, /haresources:2: .*node3/);
    });

    it('a haresources agent that is not installed is a warning naming file and line', async () => {
      const dir = configDir(root, { haresources: 'node1 IPaddr::10.0.0.8/24/eth0 nosuchagent\n' });
      const r = await run('heartbeat', ['configtest', '--config-dir', dir]);
      assert.equal(r.exitCode, 0, r.stdout);
      assert.match(r.stdout, /haresources:1: warning: .*no executable agent "nosuchagent".*\[E_HARES_AGENT_NOT_FOUND\]/);
      assert.doesNotMatch(r.stdout, /"IPaddr"/);
    });
  });

  describe('daemon lifecycle', () => {
    it('start detaches with a pid file; -s, status, cl_status, reload, hb_standby; a second start; -k stops it', async () => {
      const dir = configDir(root);
      const sock = join(root, 'life.sock');
      const pidFile = join(root, 'life.pid');
      pidFiles.push(pidFile);
      const common = ['--config-dir', dir, '--socket', sock, '--pid-file', pidFile, '--state-dir', join(root, 'state'), '-l', '-M'];
      const start = await run('heartbeat', ['start', ...common]);
      assert.equal(start.exitCode, 0, start.stderr);
      const pid = readPidFile(pidFile);
      assert.ok(pid !== undefined && processAlive(pid), 'pid file names a live process');

      const s = await run('heartbeat', ['-s', ...common]);
      assert.equal(s.exitCode, 0);
      assert.equal(s.stdout, `heartbeat OK [pid ${pid} et al] is running on node1 [node1]...`);
      assert.equal((await run('heartbeat', ['status', ...common])).exitCode, 0);

      const cl = await run('cl_status', ['--socket', sock, 'hbstatus']);
      assert.deepEqual([cl.stdout, cl.exitCode], ['Heartbeat is running on this machine.', 0]);
      // The local node is 'up' until its peer is heard or initdead (4 s here) has passed, then 'active'.
      let state = '';
      for (let i = 0; i < 60 && state !== 'active'; i++) {
        state = (await run('cl_status', ['--socket', sock, 'nodestatus', 'node1'])).stdout;
        if (state !== 'active') {
          assert.equal(state, 'up');
          await new Promise((r) => setTimeout(r, 250));
        }
      }
      assert.equal(state, 'active');

      const again = await run('heartbeat', ['start', ...common]);
      assert.equal(again.exitCode, 0);
      assert.match(again.stderr, new RegExp(`already running \\[pid ${pid}\\]`));

      const reload = await run('heartbeat', ['-r', ...common]);
      assert.equal(reload.exitCode, 0, reload.stderr);
      assert.match(reload.stdout, /reloaded/);

      // -M: no resource manager; hb_standby reaches the daemon, which has nothing to hand over.
      const sb = await execa(join(BIN, 'hb_standby'), ['--socket', sock, 'all'], { reject: false });
      assert.equal(sb.exitCode, 1);
      assert.match(sb.stderr, /no resource manager/);

      const k = await run('heartbeat', ['-k', ...common]);
      assert.equal(k.exitCode, 0, k.stderr);
      assert.ok(processGone(pid!), 'the daemon has exited');
      assert.equal(existsSync(pidFile), false, 'the pid file is removed');
      const after = await run('heartbeat', ['-s', ...common]);
      assert.deepEqual([after.stdout, after.exitCode], ['heartbeat is stopped. No process', 3]);
    });
  });
});
