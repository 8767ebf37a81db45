import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { ManualClock, MemoryLogger, controlRequest, readPidFile, type CommandRunner, type RunResult } from '@tandem/core';
import { MemoryBackend, type IpvsBackend, type IpvsOp, type IpvsTable } from '@tandem/ipvs';
import { LdDaemon, type CheckSpec, type DaemonOptions, type Verdict } from '@tandem/ldirectord';
import { RUNS, ipvsadmToOp, listingLines, readTimeline, tableLines } from './replay-support.ts';

/** Lets promises, fs callbacks and the daemon's reconcile settle (real time, a few ms). */
/** Daemons of the running test: flush() waits for their heal passes and reconciles to finish. */
const active = new Set<LdDaemon>();

/** Lets promises, fs callbacks and the daemons' passes settle (real time, as long as they need). */
async function flush(): Promise<void> {
  await new Promise((r) => setTimeout(r, 1));
  for (const d of active) if (d.state === 'running' || d.state === 'reloading') await d.settled();
  await new Promise((r) => setTimeout(r, 1));
}

/** Advances virtual time in steps, letting the daemon react after each step. */
async function run(clock: ManualClock, ms: number, step = 100): Promise<void> {
  for (let t = 0; t < ms; t += step) {
    clock.advance(Math.min(step, ms - t));
    await flush();
  }
}

interface World {
  down: Set<string>;
  checks: { host: string; port: number; at: number }[];
}

function fakeChecker(world: World, clock: ManualClock) {
  return async (spec: CheckSpec): Promise<Verdict> => {
    world.checks.push({ host: spec.host, port: spec.port, at: clock.now() });
    const up = !world.down.has(spec.host);
    return { up, reason: up ? 'HTTP/1.0 200 OK' : 'connection refused', durationMs: 1 };
  };
}

function recordingRunner(calls: string[]): CommandRunner {
  return async (command, args) => {
    calls.push([command, ...args].join(' '));
    return { command, args, exitCode: 0, signal: undefined, stdout: '', stderr: '', timedOut: false, spawnError: undefined, durationMs: 1, ok: true } satisfies RunResult;
  };
}

class Rig {
  readonly dir = mkdtempSync(join(tmpdir(), 'ld-daemon-'));
  readonly clock = new ManualClock();
  readonly world: World = { down: new Set(), checks: [] };
  readonly calls: string[] = [];
  readonly logger = new MemoryLogger();
  readonly file = join(this.dir, 'ld.cf');
  backend: IpvsBackend;
  daemon!: LdDaemon;
  constructor(cf: string, backend: IpvsBackend = new MemoryBackend()) {
    this.backend = backend;
    this.write(cf);
  }
  write(cf: string): void {
    writeFileSync(this.file, cf.replaceAll('$DIR', this.dir));
  }
  async start(extra: Partial<DaemonOptions> = {}): Promise<LdDaemon> {
    this.daemon = new LdDaemon({
      configFile: this.file,
      backend: this.backend,
      clock: this.clock,
      checker: fakeChecker(this.world, this.clock),
      runner: recordingRunner(this.calls),
      logger: this.logger,
      parseEnv: { hostname: 'director' },
      ...extra,
    });
    await this.daemon.start();
    active.add(this.daemon);
    await flush();
    await this.daemon.settled();
    return this.daemon;
  }
  async table(): Promise<string[]> {
    return tableLines(await this.backend.read());
  }
  log(): string {
    return this.logger.text();
  }
  async close(): Promise<void> {
    if (this.daemon && this.daemon.state !== 'stopped') await this.daemon.stop('test end');
    active.clear();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

const BASIC = (opts: string) => `checktimeout=1
checkinterval=1
${opts}
fallbackcommand="/bin/fallbackcmd.sh"
maintenancedir=$DIR/maint
logfile="$DIR/ld.log"

virtual=127.0.0.100:80
\treal=127.0.0.11:80 gate
\treal=127.0.0.12:80 gate 2
\treal=127.0.0.13:80 gate 3
\tfallback=127.0.0.200:80 gate
\tservice=http
\trequest="index.html"
\treceive="Test Page"
`;

describe('ldirectord daemon (in-process, virtual time, memory backend)', function () {
  this.timeout(60_000);
  let rig: Rig | undefined;
  afterEach(async () => {
    await rig?.close();
    rig = undefined;
  });

  it('starts, checks, quiesces a failed real and restores it; logs every decision', async () => {
    rig = new Rig(BASIC('quiescent=yes'));
    await rig.start();
    assert.deepEqual(await rig.table(), ['tcp 127.0.0.100:80 wrr', '  127.0.0.11:80 gate w1', '  127.0.0.12:80 gate w2', '  127.0.0.13:80 gate w3']);
    rig.world.down.add('127.0.0.12');
    await run(rig.clock, 1500);
    assert.deepEqual(await rig.table(), ['tcp 127.0.0.100:80 wrr', '  127.0.0.11:80 gate w1', '  127.0.0.12:80 gate w0', '  127.0.0.13:80 gate w3']);
    rig.world.down.delete('127.0.0.12');
    await run(rig.clock, 1500);
    assert.deepEqual(await rig.table(), ['tcp 127.0.0.100:80 wrr', '  127.0.0.11:80 gate w1', '  127.0.0.12:80 gate w2', '  127.0.0.13:80 gate w3']);
    assert.match(rig.log(), /Quiescent real server: 127\.0\.0\.12:80 \(127\.0\.0\.100:80\) \(Weight set to 0\)/);
    assert.match(rig.log(), /Restored real server: 127\.0\.0\.12:80 \(127\.0\.0\.100:80\) \(Weight set to 2\)/);
    assert.deepEqual(rig.calls, ['/bin/sh -c "/bin/fallbackcmd.sh" start 127.0.0.100:80 tcp', '/bin/sh -c "/bin/fallbackcmd.sh" stop 127.0.0.100:80 tcp']);
  });

  it('quiescent=no removes and re-adds; with every real down the fallback comes in and fallbackcommand start runs', async () => {
    rig = new Rig(BASIC('quiescent=no'));
    await rig.start();
    for (const a of ['127.0.0.11', '127.0.0.12', '127.0.0.13']) rig.world.down.add(a);
    await run(rig.clock, 1500);
    assert.deepEqual(await rig.table(), ['tcp 127.0.0.100:80 wrr', '  127.0.0.200:80 gate w1']);
    rig.world.down.delete('127.0.0.13');
    await run(rig.clock, 1500);
    assert.deepEqual(await rig.table(), ['tcp 127.0.0.100:80 wrr', '  127.0.0.13:80 gate w3']);
    assert.deepEqual(rig.calls.slice(-2), ['/bin/sh -c "/bin/fallbackcmd.sh" start 127.0.0.100:80 tcp', '/bin/sh -c "/bin/fallbackcmd.sh" stop 127.0.0.100:80 tcp']);
  });

  it('failurecount=3 takes a real down only after three consecutive failures', async () => {
    rig = new Rig(BASIC('failurecount=3'));
    await rig.start();
    rig.world.down.add('127.0.0.12');
    const failed = () => rig!.world.checks.filter((c) => c.host === '127.0.0.12').length - 1;
    for (let i = 0; i < 100 && failed() < 2; i++) await run(rig.clock, 100);
    assert.ok((await rig.table()).includes('  127.0.0.12:80 gate w2'), 'two failures: still in');
    assert.match(rig.log(), /Soft failure real server: 127\.0\.0\.12:80 \(tcp:127\.0\.0\.100:80\) failure 2\/3/);
    for (let i = 0; i < 100 && failed() < 3; i++) await run(rig.clock, 100);
    await rig.daemon.settled();
    assert.ok(!(await rig.table()).some((l) => l.includes('127.0.0.12')), 'third failure: deleted');
  });

  it('maintenancedir: a file named ip:port or ip forces the real down; removing it brings the real back', async () => {
    rig = new Rig(BASIC('quiescent=yes'));
    mkdirSync(join(rig.dir, 'maint'));
    await rig.start();
    writeFileSync(join(rig.dir, 'maint', '127.0.0.12:80'), '');
    await run(rig.clock, 1200);
    assert.ok((await rig.table()).includes('  127.0.0.12:80 gate w0'));
    unlinkSync(join(rig.dir, 'maint', '127.0.0.12:80'));
    writeFileSync(join(rig.dir, 'maint', '127.0.0.13'), '');
    await run(rig.clock, 2200);
    assert.deepEqual(await rig.table(), ['tcp 127.0.0.100:80 wrr', '  127.0.0.11:80 gate w1', '  127.0.0.12:80 gate w2', '  127.0.0.13:80 gate w0']);
  });

  it('coalesces: 60 reals coming up together are applied in a few batches, and the table is read only at start and on heal passes', async () => {
    const mem = new MemoryBackend();
    let reads = 0;
    const counting: IpvsBackend = {
      name: 'counting',
      read: () => {
        reads++;
        return mem.read();
      },
      apply: (ops: readonly IpvsOp[]) => mem.apply(ops),
    };
    const reals = Array.from({ length: 60 }, (_, i) => `\treal=127.0.1.${i + 1}:80 gate`).join('\n');
    rig = new Rig(`checktimeout=1\ncheckinterval=5\nquiescent=no\nvirtual=127.0.0.100:80\n${reals}\n\tservice=http\n\trequest="index.html"\n\treceive="Test Page"\n`, counting);
    await rig.start();
    const readsAtStart = reads;
    await run(rig.clock, 1000);
    await rig.daemon.settled();
    // Before the first heal pass (5 s): every change came from the confirmed table, no read.
    assert.equal(reads, readsAtStart);
    const table = await rig.table();
    assert.equal(table.length, 61, table.join('\n'));
    assert.match(rig.log(), /Added real server: 127\.0\.1\.60:80/);
    assert.ok(mem.batches.length >= 1 && mem.batches.length <= 15, `${mem.batches.length} batches for 60 verdicts`);
    assert.equal(mem.batches.flat().filter((op) => op.op === 'add-real').length, 60);
    // The heal pass reads the table as it really is and puts right what was changed behind our back.
    await mem.apply([{ op: 'delete-real', key: { protocol: 'tcp', address: '127.0.0.100', port: 80 }, address: '127.0.1.7', port: 80 }]);
    const readsBeforeHeal = reads;
    await run(rig.clock, 5000, 500);
    await rig.daemon.settled();
    assert.ok(reads > readsBeforeHeal, 'the heal pass read the table');
    assert.equal((await rig.table()).length, 61);
  });

  it('heals the table: a real deleted or re-weighted behind its back is put right on the next pass', async () => {
    rig = new Rig(BASIC('quiescent=no'));
    await rig.start();
    const b = rig.backend as MemoryBackend;
    const [svc] = (await b.read()).services;
    await b.apply([{ op: 'delete-real', key: svc!, address: '127.0.0.11', port: 80 }, { op: 'edit-real', key: svc!, real: { address: '127.0.0.12', port: 80, forwarding: 'gate', weight: 9 } }]);
    await run(rig.clock, 1200);
    assert.deepEqual(await rig.table(), ['tcp 127.0.0.100:80 wrr', '  127.0.0.11:80 gate w1', '  127.0.0.12:80 gate w2', '  127.0.0.13:80 gate w3']);
  });

  it('ldirectord bug §8-6 fixed: a failing IPVS batch is logged and retried from the real table on the next pass', async () => {
    const mem = new MemoryBackend();
    let failNext = 0;
    const flaky: IpvsBackend = {
      name: 'flaky',
      read: () => mem.read(),
      apply: async (ops: readonly IpvsOp[]) => {
        if (failNext > 0) {
          failNext--;
          throw new Error('Memory allocation problem');
        }
        await mem.apply(ops);
      },
    };
    rig = new Rig(BASIC('quiescent=no'), flaky);
    await rig.start();
    failNext = 1;
    rig.world.down.add('127.0.0.12');
    for (let i = 0; i < 100 && !rig.daemon.status().lastApplyError; i++) await run(rig.clock, 100);
    assert.match(rig.log(), /applying 1 IPVS change\(s\) failed, will retry on the next pass: Memory allocation problem; batch: delete real tcp 127\.0\.0\.100:80 -> 127\.0\.0\.12:80/);
    assert.equal(rig.daemon.status().lastApplyError, 'Memory allocation problem');
    await run(rig.clock, 1100);
    await rig.daemon.settled();
    assert.ok(!(await rig.table()).some((l) => l.includes('127.0.0.12')), 'the retry removed it');
    assert.equal(rig.daemon.status().lastApplyError, undefined);
  });

  it('ldirectord bug §8-20 fixed: checkinterval is a period, not a sleep after a slow pass', async () => {
    rig = new Rig('checkinterval=1\nvirtual=127.0.0.100:80\n\treal=127.0.0.11:80 gate\n\tservice=http\n\tnegotiatetimeout=2\n');
    const clock = rig.clock;
    const starts: number[] = [];
    // Each check takes 600 ms of virtual time; ldirectord would check every 1.6 s.
    const slow = (_spec: CheckSpec, signal: AbortSignal) => {
      starts.push(clock.now());
      return new Promise<Verdict>((resolve) => {
        const h = clock.setTimeout(() => resolve({ up: true, reason: 'slow', durationMs: 600 }), 600);
        signal.addEventListener('abort', () => {
          clock.clearTimeout(h);
          resolve({ up: false, reason: 'aborted', durationMs: 0 });
        });
      });
    };
    await rig.start({ checker: slow });
    await run(clock, 5000, 50);
    const gaps = starts.slice(1).map((t, i) => t - starts[i]!);
    assert.ok(gaps.length >= 4, `checks: ${starts.join(', ')}`);
    for (const g of gaps.slice(1)) assert.equal(Math.round(g), 1000, `period between checks: ${gaps.join(', ')}`);
  });

  it('reload with a valid file applies all of it in one go (weights, reals, scheduler, virtuals added and dropped)', async () => {
    const A = `checkinterval=1
virtual=127.0.0.100:80
\treal=127.0.0.11:80 gate 1
\treal=127.0.0.12:80 gate 2
\treal=127.0.0.13:80 gate 3
\tchecktype=on
virtual=127.0.0.101:80
\treal=127.0.0.11:80 masq
\tscheduler=wlc
\tchecktype=on
`;
    const B = `checkinterval=1
virtual=127.0.0.100:80
\treal=127.0.0.11:80 gate 5
\treal=127.0.0.12:80 gate 2
\treal=127.0.0.14:80 gate 4
\tchecktype=on
\tscheduler=rr
\tpersistent=300
virtual=127.0.0.102:80
\treal=127.0.0.12:80 gate
\tchecktype=on
`;
    rig = new Rig(A);
    await rig.start();
    rig.write(B);
    const r = await rig.daemon.reload('test');
    assert.equal(r.ok, true);
    await rig.daemon.settled();
    await flush();
    // The table the real ldirectord reached after the same reload (cli_reload/reload.timeline).
    const recorded = readFileSync(`${RUNS}/cli_reload/reload.timeline`, 'utf8').split('table after reload:')[1]!.split('MARK write a BROKEN')[0]!;
    const listing = recorded.split('\n').map((l) => l.replace(/^\s*[\d.]+ MARK \| ?/, '')).map((l) => (l.startsWith('->') ? `  ${l}` : l)).join('\n');
    assert.deepEqual(await rig.table(), listingLines(listing));
    assert.match(rig.log(), /Purged virtual server \(start\): 127\.0\.0\.101:80/);
  });

  it('reload with a broken file keeps the running config in force and logs why (no half-applied globals, bug §8-8)', async () => {
    rig = new Rig(BASIC('quiescent=no'));
    const pidFile = join(rig.dir, 'ld.pid');
    await rig.start({ pidFile });
    assert.equal(readPidFile(pidFile), process.pid);
    // quiescent=yes comes before the error: ldirectord 4.12 applies it anyway.
    rig.write(BASIC('quiescent=yes\nbogusdirective=1'));
    const r = await rig.daemon.reload('signal');
    assert.equal(r.ok, false);
    assert.equal(r.problems.find((p) => p.severity === 'error')?.location?.line, 4);
    assert.match(rig.log(), /reload rejected, the running configuration stays in force \[E_LD_RELOAD_REJECTED\]/);
    assert.match(rig.log(), /ld\.cf:4: bogusdirective: unknown directive/);
    assert.equal(rig.daemon.config!.global.quiescent, false);
    assert.equal(readPidFile(pidFile), process.pid, 'the pid file is kept (ldirectord bug §8-7)');
    rig.world.down.add('127.0.0.12');
    const seen = rig.world.checks.length;
    for (let i = 0; i < 100 && !rig.world.checks.slice(seen).some((c) => c.host === '127.0.0.12'); i++) await run(rig.clock, 100);
    await rig.daemon.settled();
    assert.ok(!(await rig.table()).some((l) => l.includes('127.0.0.12')), 'still quiescent=no: deleted, not weight 0');
    assert.equal(rig.daemon.status().lastReload?.ok, false);
  });

  it('autoreload=yes reloads a changed file on the next pass and runs callback with the config file', async () => {
    rig = new Rig('checkinterval=1\nautoreload=yes\ncallback="/usr/local/bin/cb"\nvirtual=127.0.0.100:80\n\treal=127.0.0.11:80 gate\n\tchecktype=on\n');
    await rig.start();
    await run(rig.clock, 1100);
    assert.deepEqual(rig.calls, [], 'no change, no callback');
    rig.write('checkinterval=1\nautoreload=yes\ncallback="/usr/local/bin/cb"\nvirtual=127.0.0.100:80\n\treal=127.0.0.11:80 gate 7\n\tchecktype=on\n');
    await run(rig.clock, 1100);
    await rig.daemon.settled();
    assert.deepEqual(await rig.table(), ['tcp 127.0.0.100:80 wrr', '  127.0.0.11:80 gate w7']);
    assert.deepEqual(rig.calls, [`/usr/local/bin/cb ${rig.file}`]);
    // A broken rewrite is rejected once, not on every pass.
    rig.write('checkinterval=1\nautoreload=yes\nvirtual=127.0.0.100:80\n\treal=127.0.0.11:80 gat\n');
    await run(rig.clock, 3300);
    assert.equal(rig.log().match(/reload rejected/g)?.length, 1);
    assert.deepEqual(await rig.table(), ['tcp 127.0.0.100:80 wrr', '  127.0.0.11:80 gate w7']);
  });

  it('autoreload=no ignores a changed file (and says so)', async () => {
    rig = new Rig('checkinterval=1\nvirtual=127.0.0.100:80\n\treal=127.0.0.11:80 gate\n\tchecktype=on\n');
    await rig.start();
    rig.write('checkinterval=1\nvirtual=127.0.0.100:80\n\treal=127.0.0.11:80 gate 7\n\tchecktype=on\n');
    await run(rig.clock, 1100);
    assert.match(rig.log(), /ignore new configuration/);
    assert.deepEqual(await rig.table(), ['tcp 127.0.0.100:80 wrr', '  127.0.0.11:80 gate w1']);
  });

  it('stop honours cleanstop per virtual, and leaves services it does not own alone', async () => {
    const backend = new MemoryBackend({ services: [{ protocol: 'tcp', address: '127.0.0.101', port: 80, scheduler: 'wlc', reals: [{ address: '127.0.0.98', port: 80, forwarding: 'masq', weight: 1 }] }] });
    rig = new Rig('virtual=127.0.0.100:80\n\treal=127.0.0.11:80 gate\n\tchecktype=on\nvirtual=127.0.0.100:81\n\treal=127.0.0.11:81 gate\n\tchecktype=on\n\tcleanstop=no\n', backend);
    await rig.start();
    await rig.daemon.stop('test');
    assert.equal(rig.daemon.state, 'stopped');
    assert.deepEqual(await rig.table(), ['tcp 127.0.0.100:81 wrr', '  127.0.0.11:81 gate w1', 'tcp 127.0.0.101:80 wlc', '  127.0.0.98:80 masq w1']);
    await rig.daemon.stop('twice is safe');
  });

  it('emailalert: a real SMTP dialogue per decision, "Inaccessible" repeated every emailalertfreq; none with emailalertstatus=none', async () => {
    const received: string[] = [];
    const smtp = createServer((sock) => {
      sock.on('error', () => {});
      sock.setEncoding('utf8');
      let data = false;
      let msg = '';
      sock.write('220 test ESMTP\r\n');
      let buf = '';
      sock.on('data', (chunk: string) => {
        buf += chunk;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).replace(/\r$/, '');
          buf = buf.slice(nl + 1);
          if (data) {
            if (line === '.') {
              data = false;
              received.push(msg);
              sock.write('250 queued\r\n');
            } else msg += line + '\n';
          } else if (/^EHLO/.test(line)) sock.write('250-test\r\n250 OK\r\n');
          else if (/^DATA/.test(line)) {
            data = true;
            msg = '';
            sock.write('354 go\r\n');
          } else if (/^QUIT/.test(line)) sock.end('221 bye\r\n');
          else sock.write('250 OK\r\n');
        }
      });
    });
    await new Promise<void>((r) => smtp.listen(0, '127.0.0.1', r));
    try {
      const port = (smtp.address() as { port: number }).port;
      rig = new Rig(`checkinterval=1\nquiescent=yes\nemailalert="ops@example.com"\nemailalertfreq=2\nemailalertfrom=ld@example.com\nsmtp=127.0.0.1:${port}\nvirtual=127.0.0.100:80\n\treal=127.0.0.11:80 gate\n\treal=127.0.0.12:80 gate\n\tservice=http\n\tservicename=shop\n`);
      await rig.start();
      await rig.daemon.settled();
      received.length = 0;
      rig.world.down.add('127.0.0.12');
      const deadline = Date.now() + 30_000;
      while (!received.some((m) => /Inaccessible/.test(m)) && Date.now() < deadline) await run(rig.clock, 200);
      await rig.daemon.settled();
      assert.match(received[0]!, /^Subject: Quiescent real server: 127\.0\.0\.12:80 \(127\.0\.0\.100:80\) \(Weight set to 0\)/m);
      assert.match(received[0]!, /^From: ld@example\.com$/m);
      assert.match(received[0]!, /^To: ops@example\.com$/m);
      assert.match(received[0]!, /service: shop/);
      assert.ok(received.some((m) => /^Subject: Inaccessible real server: 127\.0\.0\.12:80 \(127\.0\.0\.100:80\)$/m.test(m)));
    } finally {
      await new Promise((r) => smtp.close(r));
    }
    await rig.close();
    const sent: string[] = [];
    rig = new Rig('checkinterval=1\nemailalert=ops@example.com\nemailalertstatus=none\nvirtual=127.0.0.100:80\n\treal=127.0.0.11:80 gate\n\tservice=http\n');
    await rig.start({ mailer: async (m) => void sent.push(m.subject) });
    rig.world.down.add('127.0.0.11');
    await run(rig.clock, 2500);
    assert.deepEqual(sent, []);
  });

  it('writes monitorfile lines and answers status and metrics on its control socket', async () => {
    rig = new Rig('checkinterval=1\nvirtual=127.0.0.100:80\n\treal=127.0.0.11:80 gate\n\treal=127.0.0.12:80 gate\n\tmonitorfile="$DIR/monitor.log"\n');
    const sock = join(rig.dir, 'ld.sock');
    rig.world.down.add('127.0.0.12');
    await rig.start({ controlSocket: sock, wallClock: () => 'Sun Nov 22 10:00:00 2026' });
    const status = await controlRequest(sock, { cmd: 'status' });
    assert.ok(status.ok);
    const v = (status as unknown as { status: { virtuals: { reals: { address: string; up: boolean; weight: number; lastVerdict?: { reason: string } }[] }[] } }).status.virtuals[0]!;
    assert.deepEqual(v.reals.map((r) => [r.address, r.up, r.weight, r.lastVerdict?.reason]), [['127.0.0.11', true, 1, 'HTTP/1.0 200 OK'], ['127.0.0.12', false, -1, 'connection refused']]);
    const metrics = await controlRequest(sock, { cmd: 'metrics' });
    assert.match(String((metrics as { text?: string }).text), /ldirectord_real_up\{virtual="tcp 127\.0\.0\.100:80",real="127\.0\.0\.11:80"\} 1/);
    await flush();
    const mon = readFileSync(join(rig.dir, 'monitor.log'), 'utf8');
    assert.match(mon, /^\[Sun Nov 22 10:00:00 2026\] \[\d+\] tcp 127\.0\.0\.100 80\/127\.0\.0\.11 80 \[up\] HTTP\/1\.0 200 OK$/m);
    assert.match(mon, /127\.0\.0\.12 80 \[down\] connection refused$/m);
  });
});

/**
 * Replays the recorded runs of the real ldirectord 4.12 against the daemon: the same config, the
 * same harness actions at the same (virtual) times, and at every moment where both had settled
 * (2 s after the previous action) the table must be the one the real daemon had then. Start-up is
 * where tandem deliberately differs (no flap), so the first comparison is after the first pass.
 */
describe('ldirectord daemon: recorded ldirectord 4.12 scenarios replayed', function () {
  this.timeout(120_000);
  for (const name of ['quiescent_no', 'quiescent_yes', 'failurecount', 'maintenance', 'readdquiescent', 'preexisting', 'cleanstop_no']) {
    it(`${name}: the same table at every settled moment, and the same fallbackcommand runs`, async () => {
      const events = readTimeline(`${RUNS}/sequences/${name}.timeline`);
      const dir = mkdtempSync(join(tmpdir(), `ld-replay-${name}-`));
      try {
        const cf = readFileSync(`${RUNS}/sequences/${name}.cf`, 'utf8')
          .replace(/^fallbackcommand=.*$/m, 'fallbackcommand="/bin/fallbackcmd.sh"')
          .replace(/^maintenancedir=.*$/m, `maintenancedir=${dir}/maint`)
          .replace(/^logfile=.*$/m, `logfile="${dir}/ld.log"`);
        const file = join(dir, 'cfg.cf');
        writeFileSync(file, cf);
        mkdirSync(join(dir, 'maint'));
        const clock = new ManualClock();
        const world: World = { down: new Set(), checks: [] };
        const calls: string[] = [];
        const ours = new MemoryBackend();
        const recorded = new MemoryBackend();
        const recordedCmds: { t: number; text: string }[] = [];
        const logger = new MemoryLogger();
        let daemon: LdDaemon | undefined;
        const t0 = events.find((e) => e.kind === 'LDLOG' && /Starting Linux Director/.test(e.text))!.t;
        let lastAction = -Infinity;
        let compared = 0;
        const at = (t: number) => Math.round((t - t0) * 1000);
        const advanceTo = async (ms: number) => {
          if (ms > clock.now()) await run(clock, ms - clock.now());
        };
        const compare = async (e: { t: number; text: string }) => {
          if (!daemon || e.t - lastAction < 2 || e.t - t0 < 2) return;
          await daemon.settled();
          assert.deepEqual(tableLines(await ours.read()), tableLines(await recorded.read()), `${name} at ${e.t}s before "${e.text}"`);
          compared++;
        };
        for (const e of events) {
          const ms = at(e.t);
          if (e.kind === 'IPVSADM') {
            if (!/rc=0 /.test(e.text)) continue;
            const op = ipvsadmToOp(e.text.replace(/^rc=\d+ /, ''));
            if (!op) continue;
            await recorded.apply([op]).catch(() => {});
            if (/\[by harness\]/.test(e.text)) {
              await advanceTo(ms);
              await ours.apply([op]);
              lastAction = e.t;
            }
            continue;
          }
          if (e.kind === 'FALLBACKCMD') {
            recordedCmds.push({ t: e.t, text: e.text });
            continue;
          }
          if (e.kind === 'LDLOG' && /Starting Linux Director/.test(e.text)) {
            await advanceTo(ms);
            daemon = new LdDaemon({ configFile: file, backend: ours, clock, checker: fakeChecker(world, clock), runner: recordingRunner(calls), logger, parseEnv: { hostname: 'director' } });
            await daemon.start();
            active.add(daemon);
            lastAction = e.t;
            continue;
          }
          if (e.kind !== 'MARK') continue;
          await advanceTo(ms);
          await compare(e);
          const text = e.text;
          let m: RegExpExecArray | null;
          if (/SIGTERM ldirectord/.test(text)) {
            await daemon!.stop('signal: TERM');
            daemon = undefined;
          } else if ((m = /kill http server (\S+):\d+/.exec(text)) || (m = /^kill \.(\d+):/.exec(text))) {
            world.down.add(m[1]!.includes('.') ? m[1]! : `127.0.0.${m[1]}`);
          } else if ((m = /restarted http server (\S+):\d+/.exec(text)) || (m = /^restart \.(\d+):/.exec(text))) {
            world.down.delete(m[1]!.includes('.') ? m[1]! : `127.0.0.${m[1]}`);
          } else if (/maint\//.test(text)) {
            for (const part of text.split(';')) {
              const t = /(touch|rm) maint\/(\S+)/.exec(part);
              if (!t) continue;
              if (t[1] === 'touch') writeFileSync(join(dir, 'maint', t[2]!), '');
              else unlinkSync(join(dir, 'maint', t[2]!));
            }
          } else continue;
          lastAction = e.t;
        }
        if (daemon) await daemon.stop('end');
        const final = readFileSync(`${RUNS}/sequences/${name}.table`, 'utf8');
        assert.deepEqual(tableLines(await ours.read()), listingLines(final), `${name}: the table left after stop`);
        assert.ok(compared >= 1, 'at least one settled moment compared');
        // fallbackcommand: after the first start-up (where ldirectord flaps), the same runs in the same order.
        const firstPhase = t0 + 1.5;
        const theirs = recordedCmds.filter((c) => c.t > firstPhase).map((c) => c.text);
        const mine = calls.map((c) => c.replace('/bin/sh -c "/bin/fallbackcmd.sh" ', ''));
        const firstStartRuns = mine.length - theirs.length;
        assert.ok(firstStartRuns >= 0 && firstStartRuns <= 2, `ours: ${mine.join(' | ')}; theirs after start-up: ${theirs.join(' | ')}`);
        assert.deepEqual(mine.slice(firstStartRuns), theirs);
      } finally {
        active.clear();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  it('portmap: tandem restores the gate real on :8080 of a :80 virtual (ldirectord leaves it at weight 0, bug §8-5)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ld-portmap-'));
    try {
      const file = join(dir, 'cfg.cf');
      writeFileSync(file, readFileSync(`${RUNS}/sequences/portmap.cf`, 'utf8'));
      const clock = new ManualClock();
      const world: World = { down: new Set(), checks: [] };
      const backend = new MemoryBackend();
      const daemon = new LdDaemon({ configFile: file, backend, clock, checker: fakeChecker(world, clock), runner: recordingRunner([]), logger: new MemoryLogger() });
      await daemon.start();
      active.add(daemon);
      await run(clock, 1000);
      world.down.add('127.0.0.11');
      await run(clock, 2000);
      assert.deepEqual(tableLines(await backend.read()), ['tcp 127.0.0.100:80 wrr', '  127.0.0.11:80 gate w0', '  127.0.0.12:8080 masq w1']);
      world.down.delete('127.0.0.11');
      await run(clock, 2000);
      assert.deepEqual(tableLines(await backend.read()), ['tcp 127.0.0.100:80 wrr', '  127.0.0.11:80 gate w1', '  127.0.0.12:8080 masq w1']);
      // What ldirectord 4.12 had at the same point: the gate real stuck at weight 0.
      const recorded = new MemoryBackend();
      for (const e of readTimeline(`${RUNS}/sequences/portmap.timeline`)) {
        if (e.kind !== 'IPVSADM' || !/^rc=0 /.test(e.text) || e.t > 10) continue;
        const op = ipvsadmToOp(e.text.replace(/^rc=0 /, ''));
        if (op) await recorded.apply([op]).catch(() => {});
      }
      assert.ok(tableLines(await recorded.read()).includes('  127.0.0.11:80 gate w0'));
      await daemon.stop();
    } finally {
      active.clear();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});


