import { strict as assert } from 'node:assert';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { controlRequest } from '@tandem/core';
import { EmbeddedBackend, IpvsadmBackend, type IpvsTable, diffTables, reconcile } from '@tandem/ipvs';
import { type ResultPromise, execa } from 'execa';
import { freePort } from '../../../test/lab/ports.ts';
import { EXAMPLES, IPVSADM_TS, IPVSD_TS, NODE_PATH, ROOT, ipvsadmLinkDir } from './helpers.ts';

/** A tandem-ipvsd process on a socket of its own. */
class Ipvsd {
  proc: ResultPromise | undefined;
  exited = true;
  log = '';
  readonly dir: string;
  readonly socket: string;
  readonly state: string;
  constructor(dir: string) {
    this.dir = dir;
    this.socket = join(dir, 'ipvsd.sock');
    this.state = join(dir, 'table.json');
  }

  async start(extra: string[] = ['--dataplane', 'none'], bin = IPVSD_TS, env: Record<string, string> = {}): Promise<void> {
    const p = execa(bin, ['--socket', this.socket, '--state', this.state, ...extra], { env: { PATH: NODE_PATH, ...env }, reject: false, all: true });
    this.proc = p;
    this.exited = false;
    void p.then(() => (this.exited = true));
    p.all?.on('data', (c: Buffer) => (this.log += c.toString()));
    const deadline = Date.now() + 20_000;
    for (;;) {
      const up = await controlRequest(this.socket, { cmd: 'ping' }, 1000).then(() => true, () => false);
      if (up) return;
      if (this.exited || Date.now() > deadline) throw new Error(`tandem-ipvsd did not come up: ${this.log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async stop(): Promise<void> {
    const p = this.proc;
    if (!p || this.exited || !p.pid) return;
    process.kill(p.pid, 'SIGTERM');
    await p;
  }
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function ipvsadm(socket: string, args: string[], input?: string, bin = IPVSADM_TS): Promise<Run> {
  const r = await execa(bin, args, { env: { PATH: NODE_PATH, TANDEM_IPVSD_SOCKET: socket }, reject: false, input: input ?? '', stripFinalNewline: false, timeout: 30_000 });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

describe('tandem-ipvsadm and tandem-ipvsd as processes', function () {
  this.timeout(120_000);
  let dir: string;
  let d: Ipvsd;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ipvsd-'));
    d = new Ipvsd(dir);
  });
  afterEach(async () => {
    await d.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs every command against the daemon with ipvsadm\'s output', async () => {
    await d.start();
    const s = d.socket;
    const ok = async (args: string[], input?: string) => {
      const r = await ipvsadm(s, args, input);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      return r.stdout;
    };
    await ok(['-A', '-t', '172.25.0.10:80', '-s', 'rr']);
    await ok(['-a', '-t', '172.25.0.10:80', '-r', '192.168.122.10:80', '-m', '-w', '5']);
    await ok(['-a', '-t', '172.25.0.10:80', '-r', '192.168.122.20:80', '-m', '-w', '10']);
    await ok(['-E', '-t', '172.25.0.10:80', '-s', 'wrr']);
    assert.equal((await ok(['-L', '-n'])).replace(/ +$/gm, ''), readFileSync(join(EXAMPLES, 'ipvsadm-Ln.txt'), 'utf8').replace('0          2', '0          0'));
    await ok(['-e', '-t', '172.25.0.10:80', '-r', '192.168.122.20:80', '-m', '-w', '0', '-x', '50', '-y', '10']);
    assert.match(await ok(['-Ln', '--thresholds']), /-> 192\.168\.122\.20:80 {12}50 {9}10 {9}0 {10}0 {9}\n/);
    await ok(['-R'], '-A -u 172.25.0.10:53 -s sh -b sh-port\n-a -u 172.25.0.10:53 -r 192.168.122.10 -m\n');
    assert.equal(await ok(['-S', '-n']), '-A -t 172.25.0.10:80 -s wrr\n-a -t 172.25.0.10:80 -r 192.168.122.10:80 -m -w 5\n-a -t 172.25.0.10:80 -r 192.168.122.20:80 -m -w 0\n-A -u 172.25.0.10:53 -s sh -b sh-port\n-a -u 172.25.0.10:53 -r 192.168.122.10:53 -m -w 1\n');
    assert.match(await ok(['-L']), /^UDP  172\.25\.0\.10:domain sh \(sh-port\)$/m);
    assert.match(await ok(['-Ln', '--stats']), /^TCP  172\.25\.0\.10:80 {22}0 {8}0 {8}0 {8}0 {8}0$/m);
    assert.match(await ok(['-Ln', '--rate', '--exact']), /CPS {4}InPPS/);
    await ok(['-Z']);
    await ok(['-Z', '-u', '172.25.0.10:53']);
    await ok(['--set', '900', '60', '0']);
    assert.equal(await ok(['-L', '--timeout']), 'Timeout (tcp tcpfin udp): 900 60 300\n');
    await ok(['-d', '-u', '172.25.0.10:53', '-r', '192.168.122.10']);
    await ok(['-D', '-u', '172.25.0.10:53']);
    assert.match(await ok(['-h']), /--add-service {5}-A/);
    assert.match(await ok(['-v']), /^ipvsadm v1\.31 /);
    await ok(['-C']);
    assert.equal(await ok(['-Ln']), 'IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n');
    assert.equal(statSync(s).mode & 0o777, 0o600);
  });

  it('rejects bad input with ipvsadm\'s messages and exit codes', async () => {
    await d.start();
    const cases: [string[], number, string][] = [
      [['-A', '-t', '10.0.0.1:80', '-s', 'bogus'], 255, 'Scheduler or persistence engine not found\n'],
      [['-a', '-t', '10.0.0.1:80', '-r', '10.0.0.2'], 255, 'Service not defined\n'],
      [['-A', '-t', '10.0.0.1:80', '-p', 'x'], 2, "invalid timeout value `x' specified\n"],
      [['-a', '-t', '10.0.0.1:80', '-r', '10.0.0.2', '-w', 'lots'], 2, 'illegal weight specified\n'],
      [['-D', '-t', '10.0.0.9:80'], 255, 'No such service\n'],
      [['-L', '-t', '10.0.0.9:80'], 1, 'No such service\n'],
      [['--frobnicate'], 255, `Try \`${IPVSADM_TS} -h' or '${IPVSADM_TS} --help' for more information.\n`],
    ];
    for (const [args, code, stderr] of cases) assert.deepEqual(await ipvsadm(d.socket, args), { code, stdout: '', stderr }, args.join(' '));
    await ipvsadm(d.socket, ['-A', '-t', '10.0.0.1:80']);
    assert.deepEqual(await ipvsadm(d.socket, ['-A', '-t', '10.0.0.1:80']), { code: 255, stdout: '', stderr: 'Service already exists\n' });
    // Named after its link, as ipvsadm names itself after argv[0].
    const link = join(ipvsadmLinkDir(), 'ipvsadm');
    assert.match((await ipvsadm(d.socket, ['-X'], undefined, link)).stderr, new RegExp(`^Try \`${link} -h'`));
  });

  it('says so when the daemon is not running', async () => {
    const r = await ipvsadm(join(dir, 'nobody.sock'), ['-Ln']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^Can't initialize ipvs: cannot reach tandem-ipvsd on .*nobody\.sock/);
  });

  it('keeps the table across a restart of the daemon, and loads a saved file with --restore', async () => {
    await d.start();
    await ipvsadm(d.socket, ['-R'], readFileSync(join(EXAMPLES, 'sysconfig-ipvsadm'), 'utf8'));
    const before = (await ipvsadm(d.socket, ['-S', '-n'])).stdout;
    assert.equal(before.split('\n').filter(Boolean).length, 6);
    await d.stop();
    await d.start();
    assert.equal((await ipvsadm(d.socket, ['-S', '-n'])).stdout, before);
    await d.stop();
    const saved = join(dir, 'saved.rules');
    writeFileSync(saved, '-A -t 10.1.1.1:80 -s rr\n-a -t 10.1.1.1:80 -r 10.1.1.2:8080 -m -w 3\n');
    await d.start(['--dataplane', 'none', '--restore', saved]);
    assert.equal((await ipvsadm(d.socket, ['-S', '-n'])).stdout, '-A -t 10.1.1.1:80 -s rr\n-a -t 10.1.1.1:80 -r 10.1.1.2:8080 -m -w 3\n');
    await d.stop();
    writeFileSync(saved, '-A -t 10.1.1.1:80 -s rr\n-a -t 10.1.1.1:80 -r 10.1.1.2:8080 -m -w many\n');
    const bad = await execa(IPVSD_TS, ['--socket', d.socket, '--state', d.state, '--dataplane', 'none', '--restore', saved], { env: { PATH: NODE_PATH }, reject: false, timeout: 30_000 });
    assert.equal(bad.exitCode, 1);
    assert.match(String(bad.stderr), /saved\.rules:2: -a: illegal weight specified \[E_IPVS_RULE\]/);
  });

  it('opens the socket to a group with --group (mode 0660)', async () => {
    await d.start(['--dataplane', 'none', '--group', '0']);
    const st = statSync(d.socket);
    assert.equal(st.mode & 0o777, 0o660);
    assert.equal(st.gid, 0);
  });

  it('serves init.d-style scripts: lvs-nat\'s ipvsadm lines and resource.d/ipvsadm, through an ipvsadm link', async () => {
    await d.start();
    const link = ipvsadmLinkDir();
    const env = { PATH: `${link}:${NODE_PATH}`, TANDEM_IPVSD_SOCKET: d.socket };
    // The ipvsadm lines of examples/init.d/lvs-nat (its sysctl writes belong to a director, not to a test).
    const lines = readFileSync(join(EXAMPLES, 'init.d', 'lvs-nat'), 'utf8').split('\n').filter((l) => /^\s*\/sbin\/ipvsadm/.test(l));
    const script = join(dir, 'lvs-nat-ipvsadm');
    writeFileSync(script, '#!/bin/sh\nset -e\n' + lines.slice(0, 5).map((l) => l.trim().replace('/sbin/ipvsadm', 'ipvsadm')).join('\n') + '\n');
    chmodSync(script, 0o755);
    const r = await execa(script, [], { env, reject: false });
    assert.equal(r.exitCode, 0, String(r.stderr));
    // The script ends with a bare `ipvsadm`, which lists with names (/etc/services: 80 is http).
    assert.equal(
      String(r.stdout),
      [
        'IP Virtual Server version 1.2.1 (size=4096)',
        'Prot LocalAddress:Port Scheduler Flags',
        '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn',
        'TCP  172.25.0.10:http rr',
        '  -> 192.168.122.10:http          Masq    5      0          0         ',
        '  -> 192.168.122.20:http          Masq    10     0          0         ',
      ].join('\n'),
    );
    const rules = join(EXAMPLES, 'sysconfig-ipvsadm');
    const agent = join(ROOT, 'resource.d', 'ipvsadm');
    const aenv = { ...env, IPVSADM: join(link, 'ipvsadm') };
    const start = await execa(agent, [rules, 'start'], { env: aenv, reject: false });
    assert.equal(start.exitCode, 0, `${start.stdout}${start.stderr}`);
    assert.match((await ipvsadm(d.socket, ['-Ln'])).stdout, /TCP {2}192\.168\.136\.10:80 rr\n( {2}-> 192\.168\.136\.\d+:80 +Tunnel +1 +0 +0 +\n){5}/);
    assert.equal((await execa(agent, [rules, 'status'], { env: aenv, reject: false })).exitCode, 0);
    assert.equal((await execa(agent, [rules, 'stop'], { env: aenv, reject: false })).exitCode, 0);
    assert.doesNotMatch((await ipvsadm(d.socket, ['-Ln'])).stdout, /192\.168\.136\.10/);
    assert.match((await ipvsadm(d.socket, ['-Ln'])).stdout, /172\.25\.0\.10:80/);
  });

  it('drives the ipvsadm backend end to end through tandem-ipvsadm (one -R per batch)', async () => {
    await d.start();
    const b = new IpvsadmBackend({ path: join(ipvsadmLinkDir(), 'ipvsadm'), env: { PATH: NODE_PATH, TANDEM_IPVSD_SOCKET: d.socket } });
    const V = { protocol: 'tcp' as const, address: '127.0.0.100', port: 80 };
    const real = (n: number, weight: number, port = 80) => ({ address: `127.0.0.${n}`, port, forwarding: 'gate' as const, weight });
    const owns = (k: { address: string }) => k.address === '127.0.0.100';
    await ipvsadm(d.socket, ['-A', '-t', '127.0.0.101:80', '-s', 'wlc']);
    await ipvsadm(d.socket, ['-a', '-t', '127.0.0.101:80', '-r', '127.0.0.98:80', '-m']);
    const steps: IpvsTable[] = [
      { services: [{ ...V, scheduler: 'wrr', reals: [real(11, 1), real(12, 2), real(13, 3, 8080)] }] },
      { services: [{ ...V, scheduler: 'wrr', reals: [real(11, 1), real(12, 0), real(13, 3, 8080)] }] },
      { services: [{ ...V, scheduler: 'rr', persistence: { timeoutS: 300 }, reals: [real(11, 5), { ...real(14, 4), upperThreshold: 100, lowerThreshold: 10 }] }] },
      { services: [] },
    ];
    for (const desired of steps) {
      await reconcile(b, desired, owns);
      const now = await b.read();
      assert.deepEqual(diffTables(now, desired, owns), [], JSON.stringify(desired));
      // Someone else's service is never touched.
      assert.ok(now.services.some((s) => s.address === '127.0.0.101'));
    }
    await assert.rejects(
      b.apply([{ op: 'add-real', key: V, real: real(11, 1) }]),
      (e: Error & { code: string; details: { exitCode: number } }) => e.code === 'E_IPVS_COMMAND' && /Service not defined/.test(e.message) && e.details.exitCode === 255,
    );
    // The embedded backend over the socket sees the same table.
    const emb = new EmbeddedBackend({ socket: d.socket });
    assert.deepEqual(await emb.read(), await b.read());
  });

  it('reports the data plane\'s counters: a real connection through the embedded balancer shows in -L (stats, conns, persistent conns)', async function () {
    const backend: Server = createServer((_req, res) => res.end('hello\n'));
    await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
    const rport = (backend.address() as AddressInfo).port;
    const vport = await freePort('127.0.0.1');
    try {
      await d.start(['--dataplane', 'embedded']);
      await ipvsadm(d.socket, ['-A', '-t', `127.0.0.1:${vport}`, '-s', 'rr', '-p', '300']);
      await ipvsadm(d.socket, ['-a', '-t', `127.0.0.1:${vport}`, '-r', `127.0.0.1:${rport}`, '-m']);
      let body = '';
      const deadline = Date.now() + 20_000;
      while (Date.now() < deadline) {
        body = await fetch(`http://127.0.0.1:${vport}/`, { headers: { connection: 'close' } }).then((r) => r.text(), () => '');
        if (body) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(body, 'hello\n');
      let stats = '';
      while (Date.now() < deadline) {
        stats = (await ipvsadm(d.socket, ['-Ln', '--stats', '--exact'])).stdout;
        if (/-> 127\.0\.0\.1:\d+ +1 /.test(stats)) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.match(stats, new RegExp(`-> 127\\.0\\.0\\.1:${rport} +1 +[1-9]`));
      assert.match((await ipvsadm(d.socket, ['-Ln'])).stdout, new RegExp(`-> 127\\.0\\.0\\.1:${rport} +Masq +1 +0 +1 `));
      // The persistence template of the client shows as one persistent connection.
      assert.match((await ipvsadm(d.socket, ['-Ln', '--persistent-conn'])).stdout, new RegExp(`-> 127\\.0\\.0\\.1:${rport} +1 +1 +0 +1 `));
    } finally {
      await d.stop();
      await new Promise((r) => backend.close(r));
    }
  });

  it('runs through its launcher with --source and --engine at nice -5: the real server sees the source address, status reports engine and memory, bad options are refused', async function () {
    const seen: string[] = [];
    const backend: Server = createServer((req, res) => {
      seen.push(req.socket.remoteAddress ?? '');
      res.end('hello\n');
    });
    await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
    const rport = (backend.address() as AddressInfo).port;
    const vport = await freePort('127.0.0.1');
    const launcher = join(ROOT, 'packages', 'ipvs', 'bin', 'tandem-ipvsd');
    const cache = join(dir, 'compile-cache');
    const bad = await execa(launcher, ['--no-state', '--socket', join(dir, 'x.sock'), '--source', '::1'], { reject: false, env: { NODE_COMPILE_CACHE: cache } });
    assert.equal(bad.exitCode, 2);
    assert.match(String(bad.stderr), /--source ::1 is not an IPv4 address/);
    const badEngine = await execa(launcher, ['--no-state', '--engine', 'turbo'], { reject: false, env: { NODE_COMPILE_CACHE: cache } });
    assert.equal(badEngine.exitCode, 2);
    assert.match(String(badEngine.stderr), /unknown --engine turbo/);
    const badNice = await execa(launcher, ['--no-state', '--nice=-30'], { reject: false, env: { NODE_COMPILE_CACHE: cache } });
    assert.equal(badNice.exitCode, 2);
    assert.match(String(badNice.stderr), /--nice -30 is not a nice value/);
    try {
      await d.start(['--dataplane', 'embedded', '--source', '127.0.0.77', '--engine', 'net'], launcher, { NODE_COMPILE_CACHE: cache });
      assert.match(d.log, /net TCP engine/);
      // The event-loop thread (tid = pid) forwards at the default nice -5 (field 19 of stat).
      const stat = readFileSync(`/proc/${d.proc!.pid}/task/${d.proc!.pid}/stat`, 'utf8');
      const nice = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
      if (process.getuid?.() === 0) assert.equal(nice, -5, d.log);
      else assert.match(d.log, /cannot set nice -5/);
      const status = (await controlRequest(d.socket, { cmd: 'status' }, 5000)) as unknown as { engine: string; memory: { rss: number } };
      assert.equal(status.engine, 'net');
      assert.ok(status.memory.rss > 10 << 20, `rss ${status.memory.rss}`);
      await ipvsadm(d.socket, ['-A', '-t', `127.0.0.1:${vport}`, '-s', 'rr']);
      await ipvsadm(d.socket, ['-a', '-t', `127.0.0.1:${vport}`, '-r', `127.0.0.1:${rport}`, '-m']);
      let body = '';
      const deadline = Date.now() + 20_000;
      while (Date.now() < deadline && !body) {
        body = await fetch(`http://127.0.0.1:${vport}/`, { headers: { connection: 'close' } }).then((r) => r.text(), () => '');
        if (!body) await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(body, 'hello\n');
      assert.deepEqual([...new Set(seen)], ['127.0.0.77']);
    } finally {
      await d.stop();
      await new Promise((r) => backend.close(r));
    }
  });
});
