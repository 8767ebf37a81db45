// `npm run bench -- checks [--reals N] [--interval S] [--timeout S] [--runs R] [--window S]
//                          [--mode daemon|scheduler] [--keepalive] [--concurrency C] [--port P]`
// `npm run bench -- checks --clients [--count K]`: CPU per check of each HTTP client path alone.
//
// Health-check throughput and detection latency of tandem's ldirectord. N real servers are served
// by one light HTTP server process (bench/_checks-server.ts) listening on N-1 loopback addresses
// 127.20.x.y:8080; the last real is a separate one-address process (the victim) that the benchmark
// kills (SIGKILL) and hangs (SIGSTOP) to measure detection.
//
// mode daemon (default): tandem's LdDaemon runs in this process on a generated ldirectord.cf with
// one virtual and N reals (service=http, GET /index.html, receive "Test Page", quiescent=no) and
// the in-memory IPVS backend, so every figure includes config, policy, table diff and apply.
// mode scheduler: the CheckScheduler alone with runCheck (no policy, no table) — the checker's own
// cost; --keepalive turns on the httpKeepAlive extension there.
//
// Figures: achieved check period per real (p50/p99, measured by the server from request arrival
// times), checks per second, checker CPU (user+system of this process) per check and as a share of
// one core, RSS, detection latency (victim killed → table changed, victim hung → table changed;
// p50/p99 over --runs runs), and start → fully applied table. Nothing is asserted.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execaNode, type ResultPromise } from 'execa';
import type { IpvsOp } from '@tandem/ipvs';
import { FastMemoryBackend } from './_checks-backend.ts';
import { LdDaemon } from '@tandem/ldirectord/daemon';
import { CheckScheduler, runCheck, type CheckSpec, type Verdict } from '@tandem/ldirectord/checks/index';
import { benchAddress } from './_checks-addr.ts';

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : dflt;
}
const N = Number(arg('reals', '1000'));
const INTERVAL_S = Number(arg('interval', '1'));
const TIMEOUT_S = Number(arg('timeout', '1'));
const RUNS = Number(arg('runs', '20'));
const WINDOW_S = Number(arg('window', String(Math.max(10, 4 * INTERVAL_S))));
const MODE = arg('mode', 'daemon');
const CONCURRENCY = Number(arg('concurrency', '1024'));
const KEEPALIVE = process.argv.includes('--keepalive');
const PORT = Number(arg('port', '8080'));
const VIP = '127.0.0.100';
if (!(N >= 2) || !(INTERVAL_S > 0) || !(TIMEOUT_S > 0) || !['daemon', 'scheduler'].includes(MODE)) {
  console.error('usage: npm run bench -- checks [--reals N>=2] [--interval S] [--timeout S] [--runs R] [--window S] [--mode daemon|scheduler] [--keepalive]');
  process.exit(2);
}
const CLIENTS = process.argv.includes('--clients');
if (KEEPALIVE && MODE !== 'scheduler') {
  console.error('--keepalive needs --mode scheduler (ldirectord.cf has no directive for it)');
  process.exit(2);
}

const here = fileURLToPath(new URL('.', import.meta.url));
const serverFile = join(here, '_checks-server.ts');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const q = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(p * s.length))]! : NaN;
};
process.on('exit', () => {
  // Never leave a server behind, whatever happened (they are our own children, by PID).
  for (const pid of children) {
    try {
      process.kill(pid, 'SIGCONT');
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
});
const children = new Set<number>();
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(130));
const r1 = (x: number) => Math.round(x * 10) / 10;

type Server = { child: ResultPromise<{ ipc: true }>; pid: number };
async function startServer(args: string[]): Promise<Server> {
  const child = execaNode(serverFile, args, { ipc: true, reject: false, stdin: 'ignore', stdout: 'inherit', stderr: 'inherit' }) as unknown as ResultPromise<{ ipc: true }>;
  const msg = (await child.getOneMessage()) as { ready?: boolean; pid: number };
  if (!msg.ready) throw new Error('server did not start');
  children.add(child.pid!);
  return { child, pid: child.pid! };
}
async function ask(s: Server, cmd: string): Promise<Record<string, unknown>> {
  await s.child.sendMessage({ cmd });
  return (await s.child.getOneMessage()) as Record<string, unknown>;
}
// A process holds at most ~20,000 descriptors here: one listening socket per address plus one per
// open connection, so the reals are spread over processes of at most 5,000 addresses each.
const PER_SERVER = 5000;

const victimAddress = benchAddress(N - 1);
const victimKey = `${victimAddress}:${PORT}`;

// ---- the table, as the backend sees it: count of reals and victim presence, with timestamps ----
let realsInTable = 0;
let victimInTable = false;
let allInTableAt = 0;
let startedAt = 0;
const victimChanges: { at: number; present: boolean }[] = [];
function observe(ops: readonly IpvsOp[]): void {
  const at = performance.now();
  if (process.env.BENCH_DEBUG) console.log(`${Math.round(at - startedAt)} ms applied ${ops.length} op(s): ${ops.map((o) => o.op).join(',')}`);
  for (const op of ops) {
    if (op.op === 'add-real') {
      realsInTable++;
      if (`${op.real.address}:${op.real.port}` === victimKey) {
        victimInTable = true;
        victimChanges.push({ at, present: true });
      }
    } else if (op.op === 'delete-real') {
      realsInTable--;
      if (`${op.address}:${op.port}` === victimKey) {
        victimInTable = false;
        victimChanges.push({ at, present: false });
      }
    }
  }
  if (!allInTableAt && realsInTable >= N) allInTableAt = at;
}

// ---- scheduler mode: the same bookkeeping fed straight from verdicts ----
const up = new Map<string, boolean>();
function schedulerVerdict(id: string, v: Verdict): void {
  const was = up.get(id) ?? false;
  if (was === v.up) return;
  up.set(id, v.up);
  const ops: IpvsOp[] = [];
  const [address, port] = [id.slice(0, id.lastIndexOf(':')), Number(id.slice(id.lastIndexOf(':') + 1))];
  const key = { protocol: 'tcp' as const, address: VIP, port: 80 };
  ops.push(v.up ? { op: 'add-real', key, real: { address, port, forwarding: 'masq', weight: 1 } } : { op: 'delete-real', key, address, port });
  observe(ops);
}

function specFor(address: string): CheckSpec {
  return {
    checktype: 'negotiate', service: 'http', protocol: 'tcp', host: address, port: PORT, realPort: PORT,
    virtualAddress: VIP, virtualPort: 80, request: '/index.html', receive: 'Test Page', httpMethod: 'GET',
    checkTimeoutMs: TIMEOUT_S * 1000, negotiateTimeoutMs: TIMEOUT_S * 1000, checkCount: 1, httpKeepAlive: KEEPALIVE || undefined,
  };
}

async function main(): Promise<void> {
  console.log(`checks benchmark: ${N} reals, checkinterval=${INTERVAL_S}s, checktimeout=${TIMEOUT_S}s, mode ${MODE}${KEEPALIVE ? ' (keep-alive)' : ''}, ${RUNS} detection runs`);
  const dir = mkdtempSync(join(tmpdir(), 'tandem-bench-checks-'));
  const t0 = performance.now();
  const mains: Server[] = [];
  for (let first = 0; first < N - 1; first += PER_SERVER) mains.push(await startServer([String(PORT), '--range', String(first), String(Math.min(PER_SERVER, N - 1 - first))]));
  let victim = await startServer([String(PORT), victimAddress]);
  console.log(`servers: ${N - 1} addresses in ${mains.length} process(es) (pid ${mains.map((m) => m.pid).join(', ')}), victim ${victimAddress} in pid ${victim.pid} (${Math.round(performance.now() - t0)} ms to listen)`);

  let scheduler: CheckScheduler | undefined;
  let daemon: LdDaemon | undefined;
  const backend = new FastMemoryBackend();
  const apply = backend.apply.bind(backend);
  backend.apply = async (ops) => {
    await apply(ops);
    observe(ops);
  };

  const cpu0 = process.cpuUsage();
  startedAt = performance.now();
  if (MODE === 'daemon') {
    const lines = [`checkinterval=${INTERVAL_S}`, `checktimeout=${TIMEOUT_S}`, 'quiescent=no', `virtual=${VIP}:80`];
    for (let i = 0; i < N; i++) lines.push(`\treal=${benchAddress(i)}:${PORT} masq`);
    lines.push('\tservice=http', '\trequest="/index.html"', '\treceive="Test Page"', '\tscheduler=wrr', '');
    const cf = join(dir, 'ldirectord.cf');
    writeFileSync(cf, lines.join('\n'));
    startedAt = performance.now();
    daemon = new LdDaemon({
      configFile: cf,
      backend,
      checkLoop: ({ onVerdict, check, clock }) => (scheduler = new CheckScheduler({ onVerdict, check, clock, concurrency: CONCURRENCY })),
      ...(process.env.BENCH_DEBUG ? { onDecision: (d: { kind: string; message: string }) => console.log(`${Math.round(performance.now() - startedAt)} ms decision ${d.kind}: ${d.message}`) } : {}),
    });
    await daemon.start();
  } else {
    scheduler = new CheckScheduler({ onVerdict: schedulerVerdict, check: runCheck, concurrency: CONCURRENCY });
    const checks = [];
    for (let i = 0; i < N; i++) {
      const address = benchAddress(i);
      checks.push({ id: `${address}:${PORT}`, spec: specFor(address), intervalMs: INTERVAL_S * 1000 });
    }
    scheduler.update(checks);
    scheduler.start();
  }
  const startDeadline = performance.now() + Math.max(120_000, N * 30);
  while (!allInTableAt && performance.now() < startDeadline) await sleep(5);
  const startToTable = allInTableAt ? allInTableAt - startedAt : NaN;
  const startCpu = process.cpuUsage(cpu0);
  console.log(`start → all ${N} reals in the table: ${Math.round(startToTable)} ms (CPU ${Math.round((startCpu.user + startCpu.system) / 1000)} ms)`);

  // ---- steady state ----
  await sleep(Math.max(2000, INTERVAL_S * 2000));
  let rssMax = 0;
  let heapMax = 0;
  const rssTimer = setInterval(() => {
    const m = process.memoryUsage();
    rssMax = Math.max(rssMax, m.rss);
    heapMax = Math.max(heapMax, m.heapUsed);
  }, 250);
  for (const m of mains) await ask(m, 'record');
  const c0 = process.cpuUsage();
  const s0 = scheduler!.stats().completed;
  const w0 = performance.now();
  await sleep(WINDOW_S * 1000);
  const c1 = process.cpuUsage(c0);
  const checks = scheduler!.stats().completed - s0;
  const wall = (performance.now() - w0) / 1000;
  const answers = await Promise.all(mains.map((m) => ask(m, 'periods')));
  const allPeriods = answers.flatMap((a) => a.periods as number[]).sort((a, b) => a - b);
  const srv = {
    periods: allPeriods.length,
    p50: q(allPeriods, 0.5),
    p99: q(allPeriods, 0.99),
    max: allPeriods.length ? allPeriods[allPeriods.length - 1]! : NaN,
    silent: answers.reduce((n, a) => n + (a.silent as number), 0),
    cpuUs: answers.reduce((n, a) => n + (a.cpuUs as number), 0),
  };
  rssMax = Math.max(rssMax, process.memoryUsage().rss);
  const cpuUs = c1.user + c1.system;
  const checksPerS = checks / wall;
  const cpuShare = cpuUs / 1e6 / wall;
  const usPerCheck = cpuUs / Math.max(1, checks);
  console.log(`steady state over ${r1(wall)} s: ${Math.round(checksPerS)} checks/s, checker CPU ${r1(cpuShare * 100)}% of one core = ${Math.round(usPerCheck)} µs per check, server CPU ${r1(srv.cpuUs! / 1e6)} s total`);
  console.log(`period per real (server-side arrivals): p50 ${(srv.p50! / 1000).toFixed(3)} s, p99 ${(srv.p99! / 1000).toFixed(3)} s, max ${(srv.max! / 1000).toFixed(3)} s over ${srv.periods} periods; reals with <2 checks in the window: ${srv.silent}`);
  const st = scheduler!.stats();
  console.log(`RSS ${Math.round(rssMax / 1048576)} MB (V8 heap used ≤ ${Math.round(heapMax / 1048576)} MB); scheduler: ${st.entries} distinct checks for ${st.ids} reals, ${st.running} running, ${st.queued} queued`);
  clearInterval(rssTimer);

  // ---- detection: victim killed, victim hung ----
  const waitVictim = async (present: boolean, since: number, limitMs: number): Promise<number> => {
    const until = performance.now() + limitMs;
    while (performance.now() < until) {
      const c = victimChanges.findLast((x) => x.at >= since);
      if (c && c.present === present && victimInTable === present) return c.at;
      await sleep(2);
    }
    return NaN;
  };
  const limit = 4 * (INTERVAL_S + TIMEOUT_S) * 1000 + 5000;
  const kill: number[] = [];
  const hang: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    if (!victimInTable) await waitVictim(true, 0, limit);
    await sleep((0.3 + Math.random() * 1.4) * INTERVAL_S * 1000);
    const t = performance.now();
    process.kill(victim.pid, 'SIGKILL');
    await victim.child;
    const at = await waitVictim(false, t, limit);
    kill.push(at - t);
    victim = await startServer([String(PORT), victimAddress]);
    await waitVictim(true, performance.now() - 1, limit);
  }
  console.log(`killed → table changed (${kill.length} runs): p50 ${Math.round(q(kill, 0.5))} ms, p99 ${Math.round(q(kill, 0.99))} ms, max ${Math.round(Math.max(...kill))} ms`);
  for (let run = 0; run < RUNS; run++) {
    if (!victimInTable) await waitVictim(true, 0, limit);
    await sleep((0.3 + Math.random() * 1.4) * INTERVAL_S * 1000);
    const t = performance.now();
    process.kill(victim.pid, 'SIGSTOP');
    const at = await waitVictim(false, t, limit);
    hang.push(at - t);
    process.kill(victim.pid, 'SIGCONT');
    await waitVictim(true, performance.now() - 1, limit);
  }
  console.log(`hung (SIGSTOP) → table changed (${hang.length} runs): p50 ${Math.round(q(hang, 0.5))} ms, p99 ${Math.round(q(hang, 0.99))} ms, max ${Math.round(Math.max(...hang))} ms`);
  const bound = (INTERVAL_S + TIMEOUT_S) * 1000 + 100;
  console.log(`target: detection ≤ checkinterval + checktimeout + 100 ms = ${bound} ms at p99`);

  await daemon?.stop();
  if (MODE === 'scheduler') await scheduler?.stop();
  for (const s of [...mains, victim]) {
    try {
      process.kill(s.pid, 'SIGCONT');
      process.kill(s.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  rmSync(dir, { recursive: true, force: true });

  const result = {
    reals: N,
    interval_s: INTERVAL_S,
    timeout_s: TIMEOUT_S,
    mode: MODE,
    keepalive: KEEPALIVE,
    checks_per_s: Math.round(checksPerS),
    cpu_share: Math.round(cpuShare * 1000) / 1000,
    cpu_us_per_check: Math.round(usPerCheck),
    rss_mb: Math.round(rssMax / 1048576),
    heap_mb: Math.round(heapMax / 1048576),
    concurrency: CONCURRENCY,
    period_s_p50: Math.round(srv.p50!) / 1000,
    period_s_p99: Math.round(srv.p99!) / 1000,
    detect_kill_p50_ms: Math.round(q(kill, 0.5)),
    detect_kill_p99_ms: Math.round(q(kill, 0.99)),
    detect_hang_p50_ms: Math.round(q(hang, 0.5)),
    detect_hang_p99_ms: Math.round(q(hang, 0.99)),
    start_to_table_ms: Math.round(startToTable),
  };
  console.log(`RESULT ${JSON.stringify(result)}`);
  process.exit(0);
}

/**
 * The client comparison behind the choice of a lean client for plain http: K checks of one real
 * (4 in flight) through each path, CPU (user+system of this process) per check, the server in its
 * own process.
 */
async function clients(): Promise<void> {
  const K = Number(arg('count', '5000'));
  const address = benchAddress(0);
  const srv = await startServer([String(PORT), address]);
  const { checkHttpWithGot } = await import('@tandem/ldirectord/checks/http');
  const base = specFor(address);
  const paths: [string, (s: CheckSpec, sig: AbortSignal) => Promise<Verdict>, CheckSpec][] = [
    ['got (fresh connection, Connection: close)', checkHttpWithGot, base],
    ['lean net client, fresh connection (default)', runCheck, base],
    ['lean net client, kept-alive connection (httpKeepAlive)', runCheck, { ...base, httpKeepAlive: true }],
    ['checktype=connect (TCP handshake only)', runCheck, { ...base, checktype: 'connect' }],
  ];
  const figures: Record<string, number> = {};
  for (const [name, fn, spec] of paths) {
    const signal = new AbortController().signal;
    for (let i = 0; i < 300; i++) await fn(spec, signal);
    let done = 0;
    let ups = 0;
    const c0 = process.cpuUsage();
    await Promise.all(Array.from({ length: 4 }, async () => {
      while (done < K) {
        done++;
        if ((await fn(spec, signal)).up) ups++;
      }
    }));
    const c = process.cpuUsage(c0);
    const us = Math.round((c.user + c.system) / K);
    figures[name] = us;
    console.log(`${name}: ${us} µs CPU per check (${ups}/${K} up)`);
  }
  process.kill(srv.pid, 'SIGKILL');
  const [g, lean, ka, conn] = Object.values(figures);
  console.log(`RESULT ${JSON.stringify({ got_us_per_check: g, lean_us_per_check: lean, keepalive_us_per_check: ka, connect_us_per_check: conn })}`);
  process.exit(0);
}

(CLIENTS ? clients() : main()).catch((err) => {
  console.error(err);
  process.exit(1);
});
