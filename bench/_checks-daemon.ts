// The checker of `npm run bench -- checks`, in a process of its own so that its RSS and CPU are the
// daemon's alone (no benchmark bookkeeping, no execa, no server). bench/checks.ts starts it with the
// Node flags the real `ldirectord` command runs with (DAEMON_NODE_FLAGS) and talks to it over the
// Node IPC channel (process.send), in compact messages: the moment the table first holds every
// real, the victim's changes, and on request CPU, memory and scheduler counts.
//
// argv[2]: JSON { mode, reals, intervalS, timeoutS, port, concurrency, offload, keepalive, vip, victimKey, configFile? }
// Times sent to the parent are absolute milliseconds (performance.timeOrigin + performance.now()),
// comparable across the two processes.
import { getHeapSpaceStatistics, writeHeapSnapshot } from 'node:v8';
import { readFileSync } from 'node:fs';
import type { IpvsOp } from '@tandem/ipvs';
import { LdDaemon } from '@tandem/ldirectord/daemon';
import { CheckScheduler, runCheck, type CheckSpec, type Verdict } from '@tandem/ldirectord/checks/index';
import { FastMemoryBackend } from './_checks-backend.ts';
import { benchAddress } from './_checks-addr.ts';

interface Opts {
  mode: 'daemon' | 'scheduler';
  reals: number;
  intervalS: number;
  timeoutS: number;
  port: number;
  concurrency: number;
  /** false: every first check on the main thread (the scheduler's offloadMin 0), to compare. */
  offload: boolean;
  keepalive: boolean;
  vip: string;
  victimKey: string;
  configFile?: string;
}
const o = JSON.parse(process.argv[2]!) as Opts;
const send = (m: object): void => {
  process.send!(m);
};
const abs = (): number => performance.timeOrigin + performance.now();

let realsInTable = 0;
let victimInTable = false;
let full = false;
const debug = !!process.env.BENCH_DEBUG;
function observe(ops: readonly IpvsOp[]): void {
  const at = abs();
  if (debug) send({ t: 'log', text: `applied ${ops.length} op(s)` });
  for (const op of ops) {
    if (op.op === 'add-real') {
      realsInTable++;
      if (!victimInTable && `${op.real.address}:${op.real.port}` === o.victimKey) {
        victimInTable = true;
        send({ t: 'victim', at, present: true });
      }
    } else if (op.op === 'delete-real') {
      realsInTable--;
      if (victimInTable && `${op.address}:${op.port}` === o.victimKey) {
        victimInTable = false;
        send({ t: 'victim', at, present: false });
      }
    }
  }
  if (!full && realsInTable >= o.reals) {
    full = true;
    const c = process.cpuUsage();
    send({ t: 'full', at, cpuUs: c.user + c.system });
  }
}

// scheduler mode: the same bookkeeping fed straight from verdicts (no policy, no table).
const upIds = new Set<string>();
const key = { protocol: 'tcp' as const, address: o.vip, port: 80 };
function schedulerVerdict(id: string, v: Verdict): void {
  if (upIds.has(id) === v.up) return;
  if (v.up) upIds.add(id);
  else upIds.delete(id);
  const i = id.lastIndexOf(':');
  const address = id.slice(0, i);
  const port = Number(id.slice(i + 1));
  observe([v.up ? { op: 'add-real', key, real: { address, port, forwarding: 'masq', weight: 1 } } : { op: 'delete-real', key, address, port }]);
}

function specFor(address: string): CheckSpec {
  return {
    checktype: 'negotiate', service: 'http', protocol: 'tcp', host: address, port: o.port, realPort: o.port,
    virtualAddress: o.vip, virtualPort: 80, request: '/index.html', receive: 'Test Page', httpMethod: 'GET',
    checkTimeoutMs: o.timeoutS * 1000, negotiateTimeoutMs: o.timeoutS * 1000, checkCount: 1, httpKeepAlive: o.keepalive || undefined,
  };
}

let scheduler: CheckScheduler | undefined;
let daemon: LdDaemon | undefined;
let rssMax = 0;
let heapMax = 0;
const sample = (): void => {
  const m = process.memoryUsage();
  if (m.rss > rssMax) rssMax = m.rss;
  if (m.heapUsed > heapMax) heapMax = m.heapUsed;
};
const sampler = setInterval(sample, 250);
sampler.unref();

async function start(): Promise<void> {
  const c0 = process.cpuUsage();
  const startedAt = abs();
  send({ t: 'starting', at: startedAt, cpuUs: c0.user + c0.system });
  if (o.mode === 'daemon') {
    const backend = new FastMemoryBackend();
    const apply = backend.apply.bind(backend);
    backend.apply = async (ops) => {
      await apply(ops);
      observe(ops);
    };
    daemon = new LdDaemon({
      configFile: o.configFile!,
      backend,
      checkLoop: ({ onVerdict, check, clock }) => (scheduler = new CheckScheduler({ onVerdict, check, clock, concurrency: o.concurrency, offloadMin: o.offload ? undefined : 0 })),
    });
    await daemon.start();
  } else {
    scheduler = new CheckScheduler({ onVerdict: schedulerVerdict, check: runCheck, concurrency: o.concurrency, offloadMin: o.offload ? undefined : 0 });
    const checks = [];
    for (let i = 0; i < o.reals; i++) {
      const address = benchAddress(i);
      checks.push({ id: `${address}:${o.port}`, spec: specFor(address), intervalMs: o.intervalS * 1000 });
    }
    scheduler.update(checks);
    scheduler.start();
  }
}

process.on('message', (msg: { cmd: string; file?: string }) => {
  switch (msg.cmd) {
    case 'start':
      start().catch((err: Error) => {
        send({ t: 'error', text: err.stack ?? String(err) });
      });
      break;
    case 'stats': {
      sample();
      const c = process.cpuUsage();
      const m = process.memoryUsage();
      send({ t: 'stats', at: abs(), cpuUs: c.user + c.system, rssMax, heapMax, rss: m.rss, heapUsed: m.heapUsed, sched: scheduler?.stats() });
      break;
    }
    case 'reset-max':
      rssMax = 0;
      heapMax = 0;
      sample();
      send({ t: 'ok' });
      break;
    case 'memory': {
      // With BENCH_NODE_FLAGS=--expose-gc the figures are of live objects only.
      (globalThis as { gc?: () => void }).gc?.();
      // Where the RSS is: V8's spaces (committed), Node's external memory, and the kernel's view.
      const spaces = Object.fromEntries(getHeapSpaceStatistics().map((x) => [x.space_name, { committedMb: +(x.physical_space_size / 1048576).toFixed(1), usedMb: +(x.space_used_size / 1048576).toFixed(1) }]));
      const status = readFileSync('/proc/self/status', 'utf8').split('\n').filter((l) => /^(VmRSS|RssAnon|RssFile|VmHWM|Threads)/.test(l)).join('; ');
      send({ t: 'memory', usage: process.memoryUsage(), spaces, status });
      break;
    }
    case 'snapshot':
      send({ t: 'snapshot', file: writeHeapSnapshot(msg.file) });
      break;
    case 'stop':
      void (async () => {
        await daemon?.stop();
        if (o.mode === 'scheduler') await scheduler?.stop();
        send({ t: 'stopped' });
        process.exit(0);
      })();
      break;
  }
});
// The parent went away: nothing left to measure for.
process.on('disconnect', () => process.exit(0));
send({ t: 'ready', pid: process.pid });
