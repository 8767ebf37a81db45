/**
 * Interop with the real heartbeat 3.0.6 (Debian's package): one real node and one tandem node in
 * network namespaces, over ucast, mcast and bcast in turn. Both directions are checked: the real
 * node reports the tandem node `active` (cl_status and its log), and tandem's gate accepts the real
 * node's packets.
 *
 * Safety (reference/heartbeat.md §8): the real node gets an empty haresources, so it never runs a
 * resource stop (a failed stop makes it `pkill -9 heartbeat` machine-wide and reboot). It runs in
 * its own mount + UTS namespace (a `sleep` holder made with unshare) with its own /etc/ha.d,
 * /var/lib/heartbeat and a private tmpfs on /run, and is stopped by PID.
 */
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { execa, type ResultPromise } from 'execa';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { processAlive } from '@tandem/core';
import { Topology, type Spawned } from '../../../test/lab/netns.ts';
import type { MediumConfig } from '../src/hacf.ts';
import { waitFor } from '../../../test/lab/ports.ts';

const HEARTBEAT = '/usr/libexec/heartbeat/heartbeat';
// Absolute: node_modules/.bin on PATH holds tandem's own cl_status.
const CL_STATUS = '/usr/bin/cl_status';
const NODE = fileURLToPath(new URL('../../../node_modules/.bin/node', import.meta.url));
const PEER = new URL('./interop-peer.ts', import.meta.url).pathname;
const TANDEM_HEARTBEAT = new URL('../bin/heartbeat', import.meta.url).pathname;
const TANDEM_CL_STATUS = new URL('../bin/cl_status', import.meta.url).pathname;
const SECRET = 'interop-secret';
const at = { file: 'ha.cf', line: 1 };

const until = (pred: () => boolean | Promise<boolean>, ms: number): Promise<boolean> => waitFor('a condition', pred, ms, 200, { retryErrors: false }).then(() => true, () => pred());

function jsonLines(stream: NodeJS.ReadableStream): Record<string, unknown>[] {
  const lines: Record<string, unknown>[] = [];
  let buf = '';
  stream.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const l = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try { lines.push(JSON.parse(l) as Record<string, unknown>); } catch { lines.push({ text: l }); }
    }
  });
  return lines;
}

interface Case { name: string; hacf: string; tandem: MediumConfig[]; brd: boolean }

const CASES: Case[] = [
  { name: 'ucast', hacf: 'ucast eth0 10.78.0.2\nucast eth0 10.78.0.1', tandem: [{ type: 'ucast', dev: 'eth0', peer: '10.78.0.1', port: 694, at }, { type: 'ucast', dev: 'eth0', peer: '10.78.0.2', port: 694, at }], brd: false },
  { name: 'mcast', hacf: 'mcast eth0 239.192.77.1 694 1 0', tandem: [{ type: 'mcast', dev: 'eth0', group: '239.192.77.1', port: 694, ttl: 1, loop: false, at }], brd: false },
  { name: 'bcast', hacf: 'bcast eth0', tandem: [{ type: 'bcast', dev: 'eth0', port: 694, at }], brd: true },
];


interface RealNode {
  pid: number;
  proc: ResultPromise;
  log: () => string;
  inNs: (cmd: string, args: string[]) => Promise<{ exitCode: number | undefined; stdout: string; stderr: string }>;
}

/**
 * Starts the real heartbeat as node1 in host `hb` of `topo`, in its own mount + UTS namespace with
 * private copies of /etc/ha.d and /var/lib/heartbeat (under `dir`) and a private /run.
 */
async function startRealNode(topo: Topology, dir: string, media: string): Promise<RealNode> {
  const holder = topo.spawn('hb', 'unshare', ['--mount', '--uts', '--propagation', 'private', 'sleep', '600'], { label: 'holder' });
  assert.ok(await until(() => readFileSync(`/proc/${holder.pid}/cmdline`, 'utf8').startsWith('sleep'), 10_000), 'holder started');
  const inNs = async (cmd: string, args: string[]): Promise<{ exitCode: number | undefined; stdout: string; stderr: string }> => {
    const r = await execa('nsenter', ['-t', String(holder.pid), '-m', '-u', '-n', cmd, ...args], { reject: false, timeout: 15_000 });
    return { exitCode: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr) };
  };
  await execa('cp', ['-a', '/etc/ha.d', join(dir, 'ha.d')]);
  await execa('cp', ['-a', '/var/lib/heartbeat', join(dir, 'lib')]);
  writeFileSync(join(dir, 'ha.d', 'ha.cf'), [
    `logfile ${dir}/ha-log`, 'keepalive 500ms', 'deadtime 3', 'warntime 2', 'initdead 20', 'udpport 694',
    media, 'auto_failback on', 'realtime off', 'crm off', 'node node1', 'node node2', '',
  ].join('\n'));
  writeFileSync(join(dir, 'ha.d', 'authkeys'), `auth 1\n1 sha1 ${SECRET}\n`);
  chmodSync(join(dir, 'ha.d', 'authkeys'), 0o600);
  // No resources: the real daemon must never have a resource stop to fail.
  writeFileSync(join(dir, 'ha.d', 'haresources'), '# intentionally empty\n');
  const setup: [string, string[]][] = [
    ['hostname', ['node1']],
    ['mount', ['-t', 'tmpfs', 'tmpfs', '/run']],
    // /run/lock/pts: the serial plugin locks /dev/pts/N as /var/lock/LCK..pts/N.
    ['mkdir', ['-p', '/run/heartbeat/ccm', '/run/heartbeat/crm', '/run/resource-agents', '/run/lock/pts']],
    ['chown', ['hacluster:haclient', '/run/heartbeat/ccm', '/run/heartbeat/crm']],
    ['mount', ['--bind', join(dir, 'ha.d'), '/etc/ha.d']],
    ['mount', ['--bind', join(dir, 'lib'), '/var/lib/heartbeat']],
  ];
  for (const [cmd, args] of setup) {
    const r = await inNs(cmd, args);
    assert.equal(r.exitCode, 0, `${cmd} ${args.join(' ')}: ${r.stderr}`);
  }
  assert.equal((await inNs('uname', ['-n'])).stdout.trim(), 'node1');
  assert.ok(!existsSync('/etc/ha.d/ha.cf') || readFileSync('/etc/ha.d/ha.cf', 'utf8') !== readFileSync(join(dir, 'ha.d', 'ha.cf'), 'utf8'), 'the machine\'s /etc/ha.d is untouched');
  const proc = execa('nsenter', ['-t', String(holder.pid), '-m', '-u', '-n', HEARTBEAT, '-f'], { reject: false, buffer: false, stdin: 'ignore', stdout: 'ignore', stderr: 'ignore' });
  const log = (): string => (existsSync(`${dir}/ha-log`) ? readFileSync(`${dir}/ha-log`, 'utf8') : '');
  assert.ok(await until(() => log().includes('Local status now set to'), 20_000), `real heartbeat started; log:\n${log().slice(-1500)}`);
  assert.equal(readFileSync(`/proc/${proc.pid}/comm`, 'utf8').trim(), 'heartbeat', 'the pid we stop is the master control process');
  return { pid: proc.pid!, proc, log, inNs };
}

/** SIGTERM by pid; within its first 10 s (RQSTDELAY) heartbeat delays a graceful stop, and it holds
 * no resources, so after 2 s the namespace cleanup SIGKILLs what is left, by pid. */
async function stopRealNode(real: RealNode | undefined): Promise<void> {
  if (!real || !processAlive(real.pid)) return;
  process.kill(real.pid, 'SIGTERM');
  await Promise.race([real.proc, new Promise((r) => setTimeout(r, 2_000))]);
}

/** The tandem node → real node direction, as the real node reports it. */
async function realSeesNode2Active(real: RealNode): Promise<void> {
  assert.ok(await until(() => /Status update for node node2: status active/.test(real.log()), 30_000), `real log:\n${real.log().slice(-2000)}`);
  let cl = '';
  assert.ok(await until(async () => {
    const r = await real.inNs(CL_STATUS, ['nodestatus', 'node2']);
    cl = `exit ${r.exitCode}: ${r.stdout}${r.stderr}`;
    return r.stdout.trim() === 'active';
  }, 20_000), `cl_status nodestatus node2: ${cl}`);
  const links = await real.inNs(CL_STATUS, ['hblinkstatus', 'node2', 'eth0']);
  assert.equal(links.stdout.trim(), 'up');
  assert.doesNotMatch(real.log(), /node node2: is dead|Bad packet|authentication/i);
}

const haveHeartbeat = existsSync(HEARTBEAT);

describe('interop with the real heartbeat 3.0.6', function () {
  this.timeout(120_000);
  before(function () {
    // Debian's heartbeat is in test/debian-packages.txt; npm test installs it first.
    if (!haveHeartbeat) throw new Error(`${HEARTBEAT} is missing: run bash test/install-deps.sh`);
  });

  for (const c of CASES) {
    it(`over ${c.name}: the real node sees the tandem node active, and tandem accepts the real node's packets`, async () => {
      const topo = new Topology(`i${Math.floor(Math.random() * 1e4)}`);
      const dir = mkdtempSync(join(tmpdir(), 'tandem-interop-'));
      let real: RealNode | undefined;
      let peer: Spawned | undefined;
      try {
        await topo.build([{ name: 'hb', addresses: [] }, { name: 'tn', addresses: [] }]);
        const brd = c.brd ? ['brd', '+'] : [];
        await topo.exec(topo.ns('hb'), 'ip', ['addr', 'add', '10.78.0.1/24', ...brd, 'dev', 'eth0']);
        await topo.exec(topo.ns('tn'), 'ip', ['addr', 'add', '10.78.0.2/24', ...brd, 'dev', 'eth0']);

        real = await startRealNode(topo, dir, c.hacf);
        peer = topo.spawn('tn', NODE, [PEER, JSON.stringify({
          node: 'node2', nodes: ['node1', 'node2'], media: c.tandem, key: { num: 1, method: 'sha1', secret: SECRET },
          keepaliveMs: 500, deadtimeMs: 3000, durationMs: 90_000,
        })], { label: 'tandem' });
        const heard = jsonLines(peer.proc.stdout!);

        // Real → tandem: status packets from node1 pass tandem's gate.
        const fromReal = (): Record<string, unknown>[] => heard.filter((l) => l.ok === true && l.src === 'node1' && l.dup === false);
        assert.ok(await until(() => fromReal().filter((l) => l.t === 'status').length >= 4, 30_000),
          `tandem accepted no status from the real node: ${JSON.stringify(heard.slice(0, 5))}`);
        assert.deepEqual(heard.filter((l) => l.ok === false), [], 'tandem dropped none of the real node\'s packets');
        assert.ok(await until(() => fromReal().some((l) => l.t === 'status' && l.st === 'active'), 30_000), `the real node reached active; real log:\n${real.log().slice(-2000)}`);
        assert.ok(fromReal().every((l) => l.on === c.name));

        // Tandem → real: the real node reports node2 active.
        await realSeesNode2Active(real);
        // The real node also talks to node2 beyond status (reqnodes, NS_ackmsg ...) and all of it verifies.
        assert.ok(fromReal().some((l) => l.t !== 'status'), 'non-status messages from the real node verify too');
      } finally {
        if (peer) await topo.kill(peer);
        await stopRealNode(real);
        // Kills what is left in the namespaces (holder, heartbeat children) by pid, then deletes them.
        await topo.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  it('tandem\'s heartbeat command and the real node see each other active over ucast (a mixed pair)', async () => {
    const topo = new Topology(`i${Math.floor(Math.random() * 1e4)}`);
    const dir = mkdtempSync(join(tmpdir(), 'tandem-interop-'));
    let real: RealNode | undefined;
    let tandem: Spawned | undefined;
    try {
      await topo.build([{ name: 'hb', addresses: ['10.78.0.1/24'] }, { name: 'tn', addresses: ['10.78.0.2/24'] }]);
      const media = 'ucast eth0 10.78.0.2\nucast eth0 10.78.0.1';
      real = await startRealNode(topo, dir, media);
      // tandem's node2: the same ha.cf as the real node's, its name from nodeinfo, everything under dir.
      const cfg = join(dir, 'tandem');
      await execa('mkdir', ['-p', join(cfg, 'state')]);
      writeFileSync(join(cfg, 'ha.cf'), [
        `logfile ${cfg}/ha-log`, 'keepalive 500ms', 'deadtime 3', 'warntime 2', 'initdead 20', 'udpport 694',
        media, 'auto_failback on', 'realtime off', 'node node1', 'node node2', '',
      ].join('\n'));
      writeFileSync(join(cfg, 'authkeys'), `auth 1\n1 sha1 ${SECRET}\n`);
      chmodSync(join(cfg, 'authkeys'), 0o600);
      writeFileSync(join(cfg, 'haresources'), '# intentionally empty\n');
      writeFileSync(join(cfg, 'nodeinfo'), 'node2\n');
      const sock = join(cfg, 'hb.sock');
      tandem = topo.spawn('tn', TANDEM_HEARTBEAT, ['-f', '--config-dir', cfg, '--socket', sock, '--pid-file', join(cfg, 'hb.pid'), '--state-dir', join(cfg, 'state')], { label: 'tandem heartbeat' });
      let err = '';
      tandem.proc.stderr!.on('data', (d: Buffer) => { err += d.toString(); });

      // Real → tandem, as tandem's own cl_status reports it.
      let st = '';
      assert.ok(await until(async () => {
        const r = await execa(TANDEM_CL_STATUS, ['--socket', sock, 'nodestatus', 'node1'], { reject: false });
        st = `exit ${r.exitCode}: ${r.stdout}${r.stderr}`;
        return r.stdout.trim() === 'active';
      }, 30_000), `tandem cl_status nodestatus node1: ${st}; stderr: ${err.slice(-1500)}`);
      // Tandem → real.
      await realSeesNode2Active(real);
      assert.match(real.log(), /Link node2:eth0 up/);
    } finally {
      if (tandem) await topo.kill(tandem);
      await stopRealNode(real);
      await topo.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('over serial (a socat PTY pair): the real node sees the tandem node active, and tandem accepts the real node\'s classic frames', async () => {
    const topo = new Topology(`i${Math.floor(Math.random() * 1e4)}`);
    const dir = mkdtempSync(join(tmpdir(), 'tandem-interop-'));
    let real: RealNode | undefined;
    let peer: Spawned | undefined;
    const socat = execa('socat', ['-d', '-d', 'pty,raw,echo=0', 'pty,raw,echo=0'], { reject: false, buffer: false, stdin: 'ignore', stdout: 'ignore', stderr: 'pipe' });
    try {
      const ptys: string[] = [];
      socat.stderr!.on('data', (d: Buffer) => { for (const m of d.toString().matchAll(/PTY is (\S+)/g)) ptys.push(m[1]!); });
      assert.ok(await until(() => ptys.length === 2, 10_000), 'socat made a PTY pair');
      await topo.build([{ name: 'hb', addresses: [] }, { name: 'tn', addresses: [] }]);
      real = await startRealNode(topo, dir, `baud 115200\nserial ${ptys[0]}`);
      peer = topo.spawn('tn', NODE, [PEER, JSON.stringify({
        node: 'node2', nodes: ['node1', 'node2'], media: [{ type: 'serial', device: ptys[1], baud: 115200, at }], key: { num: 1, method: 'sha1', secret: SECRET },
        keepaliveMs: 500, deadtimeMs: 3000, durationMs: 90_000,
      })], { label: 'tandem' });
      const heard = jsonLines(peer.proc.stdout!);
      const fromReal = (): Record<string, unknown>[] => heard.filter((l) => l.ok === true && l.src === 'node1' && l.dup === false);
      assert.ok(await until(() => fromReal().some((l) => l.t === 'status' && l.st === 'active'), 30_000),
        `tandem heard: ${JSON.stringify(heard.slice(0, 5))}; real log:\n${real.log().slice(-1500)}`);
      assert.deepEqual(heard.filter((l) => l.ok === false), [], 'tandem dropped none of the real node\'s frames');
      assert.ok(await until(() => /Status update for node node2: status active/.test(real!.log()), 30_000), `real log:\n${real.log().slice(-2000)}`);
      const r = await real.inNs(CL_STATUS, ['nodestatus', 'node2']);
      assert.equal(r.stdout.trim(), 'active');
      assert.doesNotMatch(real.log(), /node node2: is dead|Bad packet|authentication/i);
    } finally {
      if (peer) await topo.kill(peer);
      await stopRealNode(real);
      await topo.close();
      if (socat.pid && processAlive(socat.pid)) process.kill(socat.pid, 'SIGTERM');
      await Promise.race([socat, new Promise((r) => setTimeout(r, 3000))]);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('with a different key each side drops the other\'s packets (bad_auth), and the real node never sees node2', async () => {
    const topo = new Topology(`i${Math.floor(Math.random() * 1e4)}`);
    const dir = mkdtempSync(join(tmpdir(), 'tandem-interop-'));
    let real: RealNode | undefined;
    let peer: Spawned | undefined;
    try {
      await topo.build([{ name: 'hb', addresses: ['10.78.0.1/24'] }, { name: 'tn', addresses: ['10.78.0.2/24'] }]);
      real = await startRealNode(topo, dir, 'ucast eth0 10.78.0.2');
      peer = topo.spawn('tn', NODE, [PEER, JSON.stringify({
        node: 'node2', nodes: ['node1', 'node2'], media: [{ type: 'ucast', dev: 'eth0', peer: '10.78.0.1', port: 694, at }],
        key: { num: 1, method: 'sha1', secret: 'not-the-secret' }, keepaliveMs: 500, deadtimeMs: 3000, durationMs: 90_000,
      })], { label: 'tandem' });
      const heard = jsonLines(peer.proc.stdout!);
      assert.ok(await until(() => heard.filter((l) => l.reason === 'bad_auth').length >= 6, 30_000), `tandem heard: ${JSON.stringify(heard.slice(0, 5))}`);
      assert.deepEqual(heard.filter((l) => l.ok === true), [], 'nothing from the real node passes with the wrong key');
      const r = await real.inNs(CL_STATUS, ['nodestatus', 'node2']);
      assert.notEqual(r.stdout.trim(), 'active');
      assert.doesNotMatch(real.log(), /Status update for node node2|Link node2:eth0 up/);
    } finally {
      if (peer) await topo.kill(peer);
      await stopRealNode(real);
      await topo.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
