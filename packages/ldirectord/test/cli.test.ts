import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';
import { controlRequest, processAlive, readPidFile, runCommand, type RunResult } from '@tandem/core';
import { tableLines } from './replay-support.ts';
import { FIXTURES } from '../../../test/fixtures/paths.ts';
import { COMPILE_CACHE_DIR, DAEMON_MALLOC_ARENA_MAX, DAEMON_NODE_FLAGS } from '../src/node-flags.ts';
import { waitFor } from '../../../test/lab/ports.ts';

const BIN = fileURLToPath(new URL('../bin/ldirectord.ts', import.meta.url));

describe('ldirectord launchers', () => {
  it('the shebang of bin/ldirectord.ts and the sh launcher bin/ldirectord pass exactly DAEMON_NODE_FLAGS and DAEMON_MALLOC_ARENA_MAX (the launcher also the compile cache)', () => {
    const shebang = readFileSync(BIN, 'utf8').split('\n')[0]!;
    assert.equal(shebang, `#!/usr/bin/env -S MALLOC_ARENA_MAX=${DAEMON_MALLOC_ARENA_MAX} node ${DAEMON_NODE_FLAGS.join(' ')}`);
    const sh = readFileSync(fileURLToPath(new URL('../bin/ldirectord', import.meta.url)), 'utf8');
    assert.match(sh, /^: "\$\{NODE_COMPILE_CACHE:=\$here\/\.\.\/\.\.\/\.\.\/node_modules\/\.cache\/tandem-compile\}"$/m);
    assert.match(sh, new RegExp(`^flags="${DAEMON_NODE_FLAGS.join(' ')}"$`, 'm'));
    assert.match(sh, new RegExp(`^: "\\$\\{MALLOC_ARENA_MAX:=${DAEMON_MALLOC_ARENA_MAX}\\}"\nexport MALLOC_ARENA_MAX$`, 'm'));
    assert.match(sh, /^exec "\$node" \$flags "\$here\/ldirectord\.ts" "\$@"$/m);
    assert.match(sh, /^ {4}"\$node" \$flags "\$here\/ldirectord\.ts" --warm-cache /m);
  });

  it('--warm-cache compiles the daemon\'s modules into NODE_COMPILE_CACHE and exits 0; the launcher runs it before a foreground start only', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ld-warm-'));
    try {
      const r = await execa(process.execPath, [...DAEMON_NODE_FLAGS, BIN, '--warm-cache'], { reject: false, env: { NODE_COMPILE_CACHE: dir } });
      assert.equal(r.exitCode, 0, String(r.stderr));
      const sub = readdirSync(dir);
      assert.equal(sub.length, 1, `one cache for these flags: ${sub.join(', ')}`);
      // The daemon, its checks, the backends and the policy among them: dozens of modules.
      assert.ok(readdirSync(join(dir, sub[0]!)).length >= 30, 'the cache holds the daemon\'s modules');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const sh = readFileSync(fileURLToPath(new URL('../bin/ldirectord', import.meta.url)), 'utf8');
    assert.match(sh, /\*" -d "\*" start "\*/);
  });
});

/** The ldirectord command as a real process. */
function ld(args: string[], env: Record<string, string> = {}): Promise<RunResult> {
  return runCommand(process.execPath, [BIN, ...args], { timeoutMs: 90_000, env: { TANDEM_LD_BACKEND: 'memory', ...env } });
}

const until = <T>(what: string, f: () => Promise<T | undefined> | T | undefined, ms = 60_000): Promise<T> => waitFor(what, f, ms, 100, { retryErrors: false });

interface StatusReply {
  status: { pid: number; virtuals: { id: string; reals: { address: string; port: number; up: boolean; lastVerdict?: { reason: string } }[] }[]; lastReload?: { ok: boolean } };
  table: import('@tandem/ipvs').IpvsTable;
}
async function status(sock: string): Promise<StatusReply> {
  const r = await controlRequest(sock, { cmd: 'status' }, 10_000);
  assert.ok(r.ok, JSON.stringify(r));
  return r as unknown as StatusReply;
}

describe('ldirectord command (real processes)', function () {
  this.timeout(180_000);
  let dir: string;
  let pids: number[] = [];
  let servers: Server[] = [];
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ld-cli-'));
    pids = [];
    servers = [];
  });
  afterEach(async () => {
    for (const pid of pids) {
      if (processAlive(pid)) {
        try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      }
    }
    for (const s of servers) await new Promise((r) => s.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it('configtest: OK with a summary for the seed config, exit 0', async () => {
    const r = await ld([`${FIXTURES}/examples/ha.d/ldirectord.cf`, 'configtest']);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /configuration OK: 1 virtual service\(s\), 5 real server\(s\)/);
  });

  it('configtest: every problem with file, line, directive and code on stderr, exit 2', async () => {
    const f = join(dir, 'bad.cf');
    writeFileSync(f, 'checkinterval=1\nquiscent=yes\nvirtual=127.0.0.100:80\n\treal=127.0.0.11:80 route\n\tchecktype=tcp\nconnecttimeout=3\n');
    const r = await ld([f, 'configtest']);
    assert.equal(r.exitCode, 2);
    const lines = r.stderr.trim().split('\n');
    assert.match(lines[0]!, new RegExp(`^${f}:2: quiscent: unknown directive .*did you mean quiescent.*\\[E_LDCF_UNKNOWN_DIRECTIVE\\]$`));
    assert.match(lines[1]!, new RegExp(`^${f}:4: real: forward method must be gate, masq or ipip.*\\[E_LDCF_FORWARD\\]$`));
    assert.match(lines[2]!, new RegExp(`^${f}:5: checktype: .*\\[E_LDCF_CHECKTYPE\\]$`));
    assert.match(lines[3]!, new RegExp(`^${f}:6: connecttimeout: connecttimeout directive deprecated in favour of negotiatetimeout.*\\[E_LDCF_DEPRECATED\\]$`));
    assert.match(lines.at(-1)!, /4 error\(s\); configuration NOT valid/);
    const st = await ld([f, 'status'], { TANDEM_LD_RUNDIR: dir });
    assert.equal(st.exitCode, 2, 'status of a stopped daemon with a broken file: 2, as `ldirectord -d CFG status`');
  });

  it('usage, version, unknown options and missing files: exit codes as ldirectord 4.12', async () => {
    const none = await ld([]);
    assert.equal(none.exitCode, 255);
    assert.match(none.stdout, /^Usage:/);
    const t = await ld(['-t', join(dir, 'x.cf'), 'start']);
    assert.equal(t.exitCode, 255);
    assert.match(t.stderr, /Unknown option: t/);
    const bogus = await ld([join(dir, 'x.cf'), 'bogus']);
    assert.equal(bogus.exitCode, 255);
    const v = await ld(['-v']);
    assert.equal(v.exitCode, 0);
    assert.match(v.stdout, /^Linux Director v1\.186-ha/);
    const missing = await ld([join(dir, 'nonexistent.cf'), 'start']);
    assert.equal(missing.exitCode, 1);
    assert.match(missing.stderr, /Config file .*nonexistent\.cf not found/);
  });

  it('finds the config in /etc/ha.d, then /etc/ha.d/conf, then as a path; status of a stopped daemon is 3', async () => {
    const ha = join(dir, 'ha.d');
    mkdirSync(join(ha, 'conf'), { recursive: true });
    const cf = 'virtual=127.0.0.100:80\n\treal=127.0.0.11:80 gate\n\tchecktype=on\n';
    writeFileSync(join(ha, 'ldirectord.cf'), cf);
    writeFileSync(join(ha, 'conf', 'inconf.cf'), cf);
    const env = { TANDEM_HA_D: ha, TANDEM_LD_RUNDIR: dir };
    const a = await ld(['status'], env);
    assert.equal(a.exitCode, 3);
    assert.equal(a.stdout, `ldirectord is stopped for ${join(ha, 'ldirectord.cf')}\n`);
    const b = await ld(['inconf.cf', 'status'], env);
    assert.equal(b.stdout, `ldirectord is stopped for ${join(ha, 'conf', 'inconf.cf')}\n`);
  });

  it('start in the background, status, reload (good and broken), restart refused on a broken file, stop', async () => {
    const web = createServer((s) => {
      s.on('error', () => {});
      s.end();
    });
    servers.push(web);
    await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
    const port = (web.address() as { port: number }).port;
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const closedPort = (closed.address() as { port: number }).port;
    await new Promise((r) => closed.close(r));

    const f = join(dir, 'ld.cf');
    const pidFile = join(dir, 'ld.pid');
    const sock = join(dir, 'ld.sock');
    const good = (w: number) => `checkinterval=1
checktimeout=1
logfile="${dir}/ld.log"
virtual=127.0.0.100:80
\treal=127.0.0.1:${port} masq ${w}
\treal=127.0.0.1:${closedPort} masq
\tchecktype=connect
\tquiescent=yes
`;
    writeFileSync(f, good(2));
    const opts = ['--pid-file', pidFile, '--control-socket', sock];
    const started = await ld([...opts, f, 'start']);
    assert.equal(started.exitCode, 0, started.stderr);
    const pid = readPidFile(pidFile)!;
    pids.push(pid);
    assert.ok(processAlive(pid));
    assert.notEqual(pid, process.pid);
    // The detached daemon runs with the daemon's Node flags (memory: CHECKS.md).
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    for (const flag of DAEMON_NODE_FLAGS) assert.ok(cmdline.includes(flag), `${flag} missing from ${cmdline.join(' ')}`);
    // ... and with Node's compile cache (no TypeScript stripper in memory from the second start on).
    const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    assert.ok(environ.includes(`NODE_COMPILE_CACHE=${process.env.NODE_COMPILE_CACHE ?? COMPILE_CACHE_DIR}`), 'NODE_COMPILE_CACHE not passed to the daemon');
    // ... and with one malloc arena (the first-pass worker's memory does not stay behind).
    assert.ok(environ.includes(`MALLOC_ARENA_MAX=${process.env.MALLOC_ARENA_MAX ?? DAEMON_MALLOC_ARENA_MAX}`), 'MALLOC_ARENA_MAX not passed to the daemon');

    const st = await ld([...opts, f, 'status']);
    assert.equal(st.exitCode, 0);
    assert.equal(st.stdout, `ldirectord for ${f} is running with pid: ${pid}\n`);
    const again = await ld([...opts, f, 'start']);
    assert.equal(again.exitCode, 0);
    assert.equal(readPidFile(pidFile), pid, 'a second start leaves the running daemon alone');

    // Real connect checks through the checkers: the listening real is up, the closed port quiesced.
    const expected1 = ['tcp 127.0.0.100:80 wrr', `  127.0.0.1:${closedPort} masq w0`, `  127.0.0.1:${port} masq w2`].sort();
    await until('the checked table', async () => {
      const s = await status(sock);
      return JSON.stringify(tableLines(s.table).sort()) === JSON.stringify(expected1) ? s : undefined;
    });
    const s1 = await status(sock);
    assert.match(s1.status.virtuals[0]!.reals.find((r) => r.port === closedPort)!.lastVerdict!.reason, /refused/);

    writeFileSync(f, good(5));
    const reloaded = await ld([...opts, f, 'reload']);
    assert.equal(reloaded.exitCode, 0, reloaded.stderr);
    await until('the reloaded weight', async () => tableLines((await status(sock)).table).includes(`  127.0.0.1:${port} masq w5`) || undefined);

    // A broken file: reload refuses with every problem, exit 2; daemon and pid file untouched (bug §8-7).
    writeFileSync(f, good(5) + '\tbogusdirective=1\n');
    const broken = await ld([...opts, f, 'reload']);
    assert.equal(broken.exitCode, 2);
    assert.match(broken.stderr, new RegExp(`${f}:9: bogusdirective: unknown directive`));
    assert.equal(readPidFile(pidFile), pid);
    assert.ok(processAlive(pid));
    assert.equal((await ld([...opts, f, 'status'])).exitCode, 0);
    const restart = await ld([...opts, f, 'restart']);
    assert.equal(restart.exitCode, 2, 'restart refuses before stopping anything');
    assert.ok(processAlive(pid));
    // SIGHUP with the broken file on disk: the daemon logs and keeps running its config.
    process.kill(pid, 'SIGHUP');
    await until('the rejected reload', async () => ((await status(sock)).status.lastReload?.ok === false ? true : undefined));
    assert.ok(tableLines((await status(sock)).table).includes(`  127.0.0.1:${port} masq w5`));

    writeFileSync(f, good(5));
    const restarted = await ld([...opts, f, 'restart']);
    assert.equal(restarted.exitCode, 0, restarted.stderr);
    assert.ok(!processAlive(pid), 'the old daemon is gone');
    const pid2 = readPidFile(pidFile)!;
    pids.push(pid2);
    assert.ok(pid2 !== pid && processAlive(pid2));
    const stopped = await ld([...opts, f, 'stop']);
    assert.equal(stopped.exitCode, 0);
    assert.ok(!processAlive(pid2), 'stopped');
    assert.ok(!existsSync(pidFile), 'pid file removed by the daemon');
    assert.ok(!existsSync(sock), 'control socket removed');
    const after = await ld([...opts, f, 'status']);
    assert.equal(after.exitCode, 3);
    // Every decision went to logfile=, in the classic line format.
    const log = readFileSync(join(dir, 'ld.log'), 'utf8');
    assert.match(log, new RegExp(`^ldirectord\\[${pid}\\]: \\d{4}/\\d\\d/\\d\\d_\\d\\d:\\d\\d:\\d\\d info: Starting Linux Director`, 'm'));
    assert.match(log, new RegExp(`Quiescent real server: 127\\.0\\.0\\.1:${closedPort} \\(127\\.0\\.0\\.100:80\\)|Readd Quiescent real server: 127\\.0\\.0\\.1:${closedPort}`));
    assert.match(log, /reload rejected, the running configuration stays in force/);
    assert.match(log, /Purged virtual server \(stop\): 127\.0\.0\.100:80/);
    assert.equal((await ld([...opts, f, 'reload'])).exitCode, 1, 'reload of a stopped daemon: 1');
    assert.equal((await ld([...opts, f, 'try-restart'])).exitCode, 0);
    assert.ok(!existsSync(pidFile), 'try-restart does not start a stopped daemon');
    assert.equal((await ld([...opts, f, 'stop'])).exitCode, 0, 'stop of a stopped daemon: 0');
  });

  it('a stale pid file: status 1 with a note on stderr', async () => {
    const f = join(dir, 'ld.cf');
    writeFileSync(f, 'virtual=127.0.0.100:80\n\treal=127.0.0.11:80 gate\n\tchecktype=on\n');
    const pidFile = join(dir, 'ld.pid');
    const dead = await execa(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
    writeFileSync(pidFile, `${dead.stdout}\n`);
    const r = await ld(['--pid-file', pidFile, f, 'status']);
    assert.equal(r.exitCode, 1);
    assert.match(r.stderr, /stale pid file/);
  });

  it('-d runs in the foreground: SIGHUP reloads, SIGTERM stops with cleanstop, exit 0', async () => {
    const f = join(dir, 'fg.cf');
    const sock = join(dir, 'fg.sock');
    writeFileSync(f, 'checkinterval=1\nvirtual=127.0.0.100:80\n\treal=127.0.0.11:80 gate\n\tchecktype=on\n');
    const child: ResultPromise = execa(process.execPath, [BIN, '-d', '--backend', 'memory', '--control-socket', sock, f, 'start'], { reject: false, all: true });
    pids.push(child.pid!);
    await until('the control socket', async () => (await controlRequest(sock, { cmd: 'ping' }, 1000).then(() => true, () => false)) || undefined);
    assert.deepEqual(tableLines((await status(sock)).table), ['tcp 127.0.0.100:80 wrr', '  127.0.0.11:80 gate w1']);
    writeFileSync(f, 'checkinterval=1\nvirtual=127.0.0.100:80\n\treal=127.0.0.11:80 gate 3\n\tchecktype=on\n');
    child.kill('SIGHUP');
    await until('the reload', async () => tableLines((await status(sock)).table).includes('  127.0.0.11:80 gate w3') || undefined);
    child.kill('SIGTERM');
    const r = await child;
    assert.equal(r.exitCode, 0);
    assert.match(String(r.all), /Reloading Linux Director Daemon config on signal/);
    assert.match(String(r.all), /Purged virtual server \(stop\): 127\.0\.0\.100:80/);
    assert.match(String(r.all), /terminated on signal: TERM/);
  });

  it('supervised=yes runs in the foreground without a pid file; SIGTERM stops it', async () => {
    const f = join(dir, 'sup.cf');
    const sock = join(dir, 'sup.sock');
    writeFileSync(f, 'supervised=yes\ncheckinterval=1\nvirtual=127.0.0.100:80\n\treal=127.0.0.11:80 gate\n\tchecktype=on\n');
    const child: ResultPromise = execa(process.execPath, [BIN, '--backend', 'memory', '--control-socket', sock, f, 'start'], { reject: false, all: true, env: { TANDEM_LD_RUNDIR: dir } });
    pids.push(child.pid!);
    await until('the control socket', async () => (await controlRequest(sock, { cmd: 'ping' }, 1000).then(() => true, () => false)) || undefined);
    assert.ok(!existsSync(join(dir, 'ldirectord.sup.cf.pid')), 'no pid file');
    child.kill('SIGTERM');
    const r = await child;
    assert.equal(r.exitCode, 0);
    assert.match(String(r.all), /Added real server: 127\.0\.0\.11:80/);
  });

  it('heartbeat\'s resource.d/ldirectord drives it through bin/ldirectord (Node 24 whatever PATH says)', async () => {
    const agent = fileURLToPath(new URL('../../../resource.d/ldirectord', import.meta.url));
    const wrapper = fileURLToPath(new URL('../bin/ldirectord', import.meta.url));
    const f = join(dir, 'ha.cf');
    writeFileSync(f, 'checkinterval=1\nvirtual=127.0.0.100:80\n\treal=127.0.0.11:80 gate\n\tchecktype=on\n');
    const env = { TANDEM_LDIRECTORD: wrapper, TANDEM_LD_BACKEND: 'memory', TANDEM_LD_RUNDIR: dir, PATH: '/usr/sbin:/sbin:/usr/bin:/bin' };
    const agentRun = (action: string) => execa(agent, [f, action], { env, extendEnv: false, reject: false });
    assert.equal((await agentRun('status')).stdout, 'stopped');
    const started = await agentRun('start');
    assert.equal(started.exitCode, 0, started.stderr);
    const pid = readPidFile(join(dir, 'ldirectord.ha.cf.pid'))!;
    pids.push(pid);
    const st = await agentRun('status');
    assert.deepEqual([st.exitCode, st.stdout], [0, 'running']);
    assert.equal((await agentRun('stop')).exitCode, 0);
    assert.ok(!processAlive(pid));
    assert.equal((await agentRun('status')).exitCode, 3);
  });

  it('execute= starts and stops another instance together with this one (and a cycle ends)', async () => {
    const main = join(dir, 'main.cf');
    const other = join(dir, 'other.cf');
    writeFileSync(other, `execute=${main}\nvirtual=127.0.0.101:80\n\treal=127.0.0.12:80 gate\n\tchecktype=on\n`);
    writeFileSync(main, `execute=${other}\nvirtual=127.0.0.100:80\n\treal=127.0.0.11:80 gate\n\tchecktype=on\n`);
    const env = { TANDEM_LD_RUNDIR: dir };
    const r = await ld([main, 'start'], env);
    assert.equal(r.exitCode, 0, r.stderr);
    const mainPid = readPidFile(join(dir, 'ldirectord.main.cf.pid'));
    const otherPid = readPidFile(join(dir, 'ldirectord.other.cf.pid'));
    assert.ok(mainPid && otherPid && mainPid !== otherPid);
    pids.push(mainPid!, otherPid!);
    assert.equal((await ld([other, 'status'], env)).exitCode, 0);
    assert.equal((await ld([main, 'stop'], env)).exitCode, 0);
    await until('both stopped', () => (!processAlive(mainPid!) && !processAlive(otherPid!)) || undefined);
  });
});

/**
 * End to end on the embedded balancer: a tandem-ipvsd holds the table; ldirectord drives it through
 * the embedded backend (its socket), and through the ipvsadm backend running the balancer's
 * ipvsadm-compatible command (`ipvsadm -R` per batch, `ipvsadm -L -n` to read).
 */
describe('ldirectord on the embedded balancer (tandem-ipvsd, tandem-ipvsadm)', function () {
  this.timeout(180_000);
  const IPVS_BIN = fileURLToPath(new URL('../../ipvs/bin/', import.meta.url));
  const NODE_PATH = `${fileURLToPath(new URL('../../../node_modules/.bin', import.meta.url))}:${process.env.PATH ?? ''}`;
  let dir: string;
  let ipvsd: ResultPromise | undefined;
  let daemonPid: number | undefined;
  let web: Server | undefined;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ld-e2e-'));
    const sock = join(dir, 'ipvsd.sock');
    ipvsd = execa(join(IPVS_BIN, 'tandem-ipvsd.ts'), ['--socket', sock, '--no-state', '--dataplane', 'none'], { env: { PATH: NODE_PATH }, reject: false, all: true });
    await until('tandem-ipvsd', async () => (await controlRequest(sock, { cmd: 'ping' }, 1000).then(() => true, () => false)) || undefined);
    web = createServer((s) => {
      s.on('error', () => {});
      s.end();
    });
    await new Promise<void>((r) => web!.listen(0, '127.0.0.1', r));
  });
  afterEach(async () => {
    if (daemonPid && processAlive(daemonPid)) process.kill(daemonPid, 'SIGKILL');
    if (ipvsd?.pid && processAlive(ipvsd.pid)) process.kill(ipvsd.pid, 'SIGTERM');
    await ipvsd;
    await new Promise((r) => web?.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  for (const backend of ['embedded', 'ipvsadm'] as const) {
    it(`--backend ${backend}: the checked table lands in the balancer, someone else's service is untouched, cleanstop removes ours`, async () => {
      const sock = join(dir, 'ipvsd.sock');
      const env = { PATH: NODE_PATH, TANDEM_IPVSD_SOCKET: sock, IPVSADM: join(IPVS_BIN, 'ipvsadm'), TANDEM_LD_RUNDIR: dir };
      const ipvsadm = (args: string[]) => execa(join(IPVS_BIN, 'ipvsadm'), args, { env, reject: false });
      await ipvsadm(['-A', '-t', '127.0.0.101:80', '-s', 'wlc']);
      const port = (web!.address() as { port: number }).port;
      const f = join(dir, 'ld.cf');
      writeFileSync(f, `checkinterval=5\nchecktimeout=1\nquiescent=yes\nlogfile="${dir}/ld.log"\nvirtual=127.0.0.100:80\n\treal=127.0.0.1:${port} masq 3\n\treal=127.0.0.2:${port} masq\n\tfallback=127.0.0.200:80\n\tchecktype=connect\n`);
      const r = await ld(['--backend', backend, f, 'start'], env);
      assert.equal(r.exitCode, 0, r.stderr);
      daemonPid = readPidFile(join(dir, 'ldirectord.ld.cf.pid'));
      // 127.0.0.2 has nothing listening on that port: quiesced; 127.0.0.1 is up, so no fallback.
      const want = new RegExp(`TCP  127\\.0\\.0\\.100:80 wrr\\n  -> 127\\.0\\.0\\.1:${port} +Masq +3 .*\\n  -> 127\\.0\\.0\\.2:${port} +Masq +0 `);
      const listing = await until('the table in the balancer', async () => {
        const l = String((await ipvsadm(['-L', '-n'])).stdout);
        return want.test(l) ? l : undefined;
      });
      assert.match(listing, /TCP  127\.0\.0\.101:80 wlc/);
      assert.doesNotMatch(listing, /127\.0\.0\.200/);
      assert.equal((await ld([f, 'stop'], env)).exitCode, 0);
      const after = String((await ipvsadm(['-L', '-n'])).stdout);
      assert.doesNotMatch(after, /127\.0\.0\.100/);
      assert.match(after, /TCP  127\.0\.0\.101:80 wlc/);
    });
  }
});
