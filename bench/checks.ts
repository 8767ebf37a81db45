// `npm run bench -- checks [--reals N] [--interval S] [--timeout S] [--runs R] [--window S]
//                          [--starts K] [--mode daemon|scheduler] [--server nginx|node] [--keepalive] [--concurrency C] [--no-offload] [--port P]`
// `npm run bench -- checks --clients [--count K]`: CPU per check of each HTTP client path alone.
// `npm run bench -- checks --floor [--reals N] [--starts K]`: the first pass with no ldirectord (rawExchange alone, 1 and 2 threads).
//
// Health-check throughput and detection latency of tandem's ldirectord. N-1 real servers are one
// nginx process (bench/_checks-nginx.ts; `--server node`: Node processes, bench/_checks-server.ts)
// listening on N-1 loopback addresses 127.20.x.y:8080; the last real is a separate one-address
// Node process (the victim) that the benchmark kills (SIGKILL) and hangs (SIGSTOP) to measure
// detection.
//
// The checker runs in a process of its own (bench/_checks-daemon.ts), started with the Node flags
// of the real `ldirectord` command (DAEMON_NODE_FLAGS), so its CPU and RSS are the daemon's alone.
// mode daemon (default): tandem's LdDaemon on a generated ldirectord.cf with one virtual and N reals
// (service=http, GET /index.html, receive "Test Page", quiescent=no) and an in-memory IPVS backend,
// so every figure includes config, policy, table diff and apply. mode scheduler: the CheckScheduler
// alone with runCheck (no policy, no table); --keepalive turns on the httpKeepAlive extension there.
//
// Figures: achieved check period per real (p50/p99, from the server's request log), checks per
// second, checker CPU (user+system of the checker process) per check and as a share of one core,
// its RSS, the server's CPU per request, detection latency (victim killed → table changed, victim
// hung → table changed; p50/p99 over --runs runs), and start → fully applied table (with the CPU
// the checker spent on it; the median of --starts fresh checker processes). Nothing is asserted.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execaNode, type ResultPromise } from 'execa';
import { runCheck, type CheckSpec, type Verdict } from '@tandem/ldirectord/checks/index';
import { DAEMON_NODE_FLAGS, daemonEnv } from '@tandem/ldirectord/node-flags';
import { benchAddress } from './_checks-addr.ts';
import { startNginx, type NginxServer } from './_checks-nginx.ts';
import { ensureDebianPackages } from './_debian.ts';

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
// --no-offload: the first pass stays on the checker's main thread (no first-pass worker), to compare.
const OFFLOAD = !process.argv.includes('--no-offload');
const PORT = Number(arg('port', '8080'));
const SERVER = arg('server', 'nginx');
// Start → full table is one number per start and varies by ±15 % here: it is measured this many times (fresh checker processes, the last one goes on to the steady state) and reported as the median.
const STARTS = Math.max(1, Number(arg('starts', '5')));
const VIP = '127.0.0.100';
if (!(N >= 2) || !(INTERVAL_S > 0) || !(TIMEOUT_S > 0) || !['daemon', 'scheduler'].includes(MODE) || !['nginx', 'node'].includes(SERVER)) {
  console.error('usage: npm run bench -- checks [--reals N>=2] [--interval S] [--timeout S] [--runs R] [--window S] [--starts K] [--mode daemon|scheduler] [--server nginx|node] [--keepalive] [--concurrency C] [--no-offload]');
  process.exit(2);
}
const CLIENTS = process.argv.includes('--clients');
const FLOOR = process.argv.includes('--floor');
if (KEEPALIVE && MODE !== 'scheduler') {
  console.error('--keepalive needs --mode scheduler (ldirectord.cf has no directive for it)');
  process.exit(2);
}

const here = fileURLToPath(new URL('.', import.meta.url));
const serverFile = join(here, '_checks-server.ts');
const daemonFile = join(here, '_checks-daemon.ts');
const cleanupDirs: string[] = [];
// Extra Node flags for the checker process only, for profiling (BENCH_NODE_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/p").
const EXTRA_FLAGS = (process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean);
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
  for (const d of cleanupDirs) rmSync(d, { recursive: true, force: true });
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

// ---- the checker: tandem's ldirectord (or the scheduler alone) in a process of its own ----
type Msg = { t: string; [k: string]: unknown };
type Stats = { at: number; cpuUs: number; rssMax: number; heapMax: number; rss: number; heapUsed: number; sched?: { completed: number; entries: number; ids: number; running: number; queued: number } };
const abs = (): number => performance.timeOrigin + performance.now();
const victimChanges: { at: number; present: boolean }[] = [];
let victimInTable = false;

class CheckerProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  startedAt = NaN;
  startCpuUs = 0;
  fullAt = NaN;
  fullCpuUs = NaN;
  #waiters: { t: string; resolve: (m: Msg) => void }[] = [];
  #exited = false;

  constructor(args: object) {
    this.child = spawn(process.execPath, [...DAEMON_NODE_FLAGS, ...EXTRA_FLAGS, daemonFile, JSON.stringify(args)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: daemonEnv(process.env) as NodeJS.ProcessEnv });
    this.pid = this.child.pid!;
    children.add(this.pid);
    this.child.on('exit', (code, sig) => {
      this.#exited = true;
      for (const w of this.#waiters.splice(0)) w.resolve({ t: 'exit', code, sig });
    });
    this.child.on('message', (m: Msg) => {
      if (m.t === 'victim') {
        victimInTable = m.present as boolean;
        victimChanges.push({ at: m.at as number, present: m.present as boolean });
      } else if (m.t === 'starting') {
        this.startedAt = m.at as number;
        this.startCpuUs = m.cpuUs as number;
      } else if (m.t === 'full') {
        this.fullAt = m.at as number;
        this.fullCpuUs = m.cpuUs as number;
      } else if (m.t === 'error') {
        console.error(`checker process failed: ${m.text as string}`);
        process.exit(1);
      } else if (m.t === 'log') console.log(`checker: ${m.text as string}`);
      const i = this.#waiters.findIndex((w) => w.t === m.t);
      if (i >= 0) this.#waiters.splice(i, 1)[0]!.resolve(m);
    });
  }

  next(t: string): Promise<Msg> {
    if (this.#exited) return Promise.reject(new Error('checker process has exited'));
    return new Promise((resolve) => this.#waiters.push({ t, resolve }));
  }

  async ask(cmd: object, t: string): Promise<Msg> {
    const p = this.next(t);
    this.child.send(cmd);
    const m = await p;
    if (m.t === 'exit') throw new Error(`checker process exited (${String(m.code ?? m.sig)}) while waiting for ${t}`);
    return m;
  }
  stats(): Promise<Stats> {
    return this.ask({ cmd: 'stats' }, 'stats') as unknown as Promise<Stats>;
  }
}

function specFor(address: string): CheckSpec {
  return {
    checktype: 'negotiate', service: 'http', protocol: 'tcp', host: address, port: PORT, realPort: PORT,
    virtualAddress: VIP, virtualPort: 80, request: '/index.html', receive: 'Test Page', httpMethod: 'GET',
    checkTimeoutMs: TIMEOUT_S * 1000, negotiateTimeoutMs: TIMEOUT_S * 1000, checkCount: 1, httpKeepAlive: KEEPALIVE || undefined,
  };
}

async function main(): Promise<void> {
  console.log(`checks benchmark: ${N} reals, checkinterval=${INTERVAL_S}s, checktimeout=${TIMEOUT_S}s, mode ${MODE}${KEEPALIVE ? ' (keep-alive)' : ''}, server ${SERVER}, ${RUNS} detection runs`);
  const dir = mkdtempSync(join(tmpdir(), 'tandem-bench-checks-'));
  cleanupDirs.push(dir);
  const t0 = performance.now();
  // ---- the servers: N-1 addresses in nginx (or Node processes), the victim in a Node process of its own ----
  const mains: Server[] = [];
  let nginx: NginxServer | undefined;
  const served = Array.from({ length: N - 1 }, (_, i) => benchAddress(i));
  if (SERVER === 'nginx') {
    await ensureDebianPackages(['nginx-light']);
    nginx = await startNginx(dir, served, PORT);
    children.add(nginx.pid);
  } else {
    for (let first = 0; first < N - 1; first += PER_SERVER) mains.push(await startServer([String(PORT), '--range', String(first), String(Math.min(PER_SERVER, N - 1 - first))]));
  }
  let victim = await startServer([String(PORT), victimAddress]);
  const serverPids = nginx ? [nginx.pid] : mains.map((m) => m.pid);
  console.log(`servers: ${N - 1} addresses in ${SERVER === 'nginx' ? 'one nginx process' : `${mains.length} Node process(es)`} (pid ${serverPids.join(', ')}), victim ${victimAddress} in Node pid ${victim.pid} (${Math.round(performance.now() - t0)} ms to listen)`);

  let configFile: string | undefined;
  if (MODE === 'daemon') {
    const lines = [`checkinterval=${INTERVAL_S}`, `checktimeout=${TIMEOUT_S}`, 'quiescent=no', `virtual=${VIP}:80`];
    for (let i = 0; i < N; i++) lines.push(`\treal=${benchAddress(i)}:${PORT} masq`);
    lines.push('\tservice=http', '\trequest="/index.html"', '\treceive="Test Page"', '\tscheduler=wrr', '');
    configFile = join(dir, 'ldirectord.cf');
    writeFileSync(configFile, lines.join('\n'));
  }
  const checkerArgs = { mode: MODE, reals: N, intervalS: INTERVAL_S, timeoutS: TIMEOUT_S, port: PORT, concurrency: CONCURRENCY, offload: OFFLOAD, keepalive: KEEPALIVE, vip: VIP, victimKey, configFile };
  const starts: { ms: number; cpuMs: number; serverCpuMs: number }[] = [];
  let checker!: CheckerProcess;
  let atFull!: Stats;
  for (let k = 0; k < STARTS; k++) {
    checker = new CheckerProcess(checkerArgs);
    await checker.next('ready');
    if (k === 0) console.log(`checker: pid ${checker.pid}, node ${DAEMON_NODE_FLAGS.join(' ') || '(no flags)'}`);
    const serverCpu0 = nginx ? nginx.cpuUs() : 0;
    const full = checker.next('full');
    checker.child.send({ cmd: 'start' });
    await Promise.race([full, sleep(Math.max(120_000, N * 30))]);
    const ms = checker.fullAt - checker.startedAt;
    const cpuMs = (checker.fullCpuUs - checker.startCpuUs) / 1000;
    const serverCpuMs = nginx ? (nginx.cpuUs() - serverCpu0) / 1000 : NaN;
    starts.push({ ms, cpuMs, serverCpuMs });
    atFull = await checker.stats();
    console.log(`start ${k + 1}/${STARTS} → all ${N} reals in the table: ${Math.round(ms)} ms (checker CPU ${Math.round(cpuMs)} ms${nginx ? `, nginx CPU ≈ ${Math.round(serverCpuMs)} ms` : ''}; checker RSS peak so far ${Math.round(atFull.rssMax / 1048576)} MB)`);
    if (k === STARTS - 1) break;
    // Not the last start: this checker goes, and the next one starts on a quiet machine.
    await checker.ask({ cmd: 'stop' }, 'stopped').catch(() => undefined);
    await Promise.race([checker.next('exit').catch(() => undefined), sleep(10_000)]);
    victimChanges.length = 0;
    victimInTable = false;
    await sleep(1000);
  }
  const startMs = starts.map((x) => x.ms);
  const startToTable = q(startMs, 0.5);
  const startCpuMs = q(starts.map((x) => x.cpuMs), 0.5);
  const serverStartCpuMs = q(starts.map((x) => x.serverCpuMs), 0.5);
  if (STARTS > 1) console.log(`start → full table over ${STARTS} starts: median ${Math.round(startToTable)} ms, min ${Math.round(Math.min(...startMs))} ms, max ${Math.round(Math.max(...startMs))} ms`);

  // ---- steady state ----
  await sleep(Math.max(2000, INTERVAL_S * 2000));
  await checker.ask({ cmd: 'reset-max' }, 'ok');
  for (const m of mains) await ask(m, 'record');
  const s0 = await checker.stats();
  const srvCpu0 = nginx ? nginx.cpuUs() : 0;
  await sleep(WINDOW_S * 1000);
  const s1 = await checker.stats();
  const srvCpu1 = nginx ? nginx.cpuUs() : 0;
  const wall = (s1.at - s0.at) / 1000;
  const checks = s1.sched!.completed - s0.sched!.completed;
  const cpuUs = s1.cpuUs - s0.cpuUs;
  let allPeriods: number[];
  let silent = 0;
  let serverCpuUs: number;
  if (nginx) {
    const arrivals = await nginx.arrivals(s0.at, s1.at);
    allPeriods = [];
    for (const a of served) {
      const ts = arrivals.get(a) ?? [];
      if (ts.length < 2) silent++;
      for (let i = 1; i < ts.length; i++) allPeriods.push(ts[i]! - ts[i - 1]!);
    }
    serverCpuUs = srvCpu1 - srvCpu0;
  } else {
    const answers = await Promise.all(mains.map((m) => ask(m, 'periods')));
    allPeriods = answers.flatMap((a) => a.periods as number[]);
    silent = answers.reduce((n, a) => n + (a.silent as number), 0);
    // The Node servers report their whole life's CPU; over the window it is most of it.
    serverCpuUs = answers.reduce((n, a) => n + (a.cpuUs as number), 0);
  }
  allPeriods.sort((a, b) => a - b);
  const srv = { periods: allPeriods.length, p50: q(allPeriods, 0.5), p99: q(allPeriods, 0.99), max: allPeriods.length ? allPeriods[allPeriods.length - 1]! : NaN };
  const checksPerS = checks / wall;
  const cpuShare = cpuUs / 1e6 / wall;
  const usPerCheck = cpuUs / Math.max(1, checks);
  const serverNote = nginx ? `nginx CPU ${r1(serverCpuUs / 1000)} ms = ${Math.round(serverCpuUs / Math.max(1, checks))} µs per request` : `server CPU ${r1(serverCpuUs / 1e6)} s total (their whole life)`;
  console.log(`steady state over ${r1(wall)} s: ${Math.round(checksPerS)} checks/s, checker CPU ${r1(cpuShare * 100)}% of one core = ${Math.round(usPerCheck)} µs per check; ${serverNote}`);
  console.log(`period per real (server-side arrivals): p50 ${(srv.p50 / 1000).toFixed(3)} s, p99 ${(srv.p99 / 1000).toFixed(3)} s, max ${(srv.max / 1000).toFixed(3)} s over ${srv.periods} periods; reals with <2 checks in the window: ${silent}`);
  const st = s1.sched!;
  console.log(`checker RSS ≤ ${Math.round(s1.rssMax / 1048576)} MB in the window (peak at start ${Math.round(atFull.rssMax / 1048576)} MB), V8 heap used ≤ ${Math.round(s1.heapMax / 1048576)} MB; scheduler: ${st.entries} distinct checks for ${st.ids} reals, ${st.running} running, ${st.queued} queued`);
  if (process.env.BENCH_DEBUG) console.log(`checker memory: ${JSON.stringify(await checker.ask({ cmd: 'memory' }, 'memory'))}`);
  if (process.env.BENCH_HEAP_SNAPSHOT) console.log(`heap snapshot: ${(await checker.ask({ cmd: 'snapshot', file: process.env.BENCH_HEAP_SNAPSHOT }, 'snapshot')).file as string}`);

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
    const t = abs();
    process.kill(victim.pid, 'SIGKILL');
    await victim.child;
    const at = await waitVictim(false, t, limit);
    kill.push(at - t);
    victim = await startServer([String(PORT), victimAddress]);
    await waitVictim(true, abs() - 1, limit);
  }
  console.log(`killed → table changed (${kill.length} runs): p50 ${Math.round(q(kill, 0.5))} ms, p99 ${Math.round(q(kill, 0.99))} ms, max ${Math.round(Math.max(...kill))} ms`);
  for (let run = 0; run < RUNS; run++) {
    if (!victimInTable) await waitVictim(true, 0, limit);
    await sleep((0.3 + Math.random() * 1.4) * INTERVAL_S * 1000);
    const t = abs();
    process.kill(victim.pid, 'SIGSTOP');
    const at = await waitVictim(false, t, limit);
    hang.push(at - t);
    process.kill(victim.pid, 'SIGCONT');
    await waitVictim(true, abs() - 1, limit);
  }
  console.log(`hung (SIGSTOP) → table changed (${hang.length} runs): p50 ${Math.round(q(hang, 0.5))} ms, p99 ${Math.round(q(hang, 0.99))} ms, max ${Math.round(Math.max(...hang))} ms`);
  const bound = (INTERVAL_S + TIMEOUT_S) * 1000 + 100;
  console.log(`target: detection ≤ checkinterval + checktimeout + 100 ms = ${bound} ms at p99`);

  const end = await checker.stats();
  await checker.ask({ cmd: 'stop' }, 'stopped').catch(() => undefined);
  // Let it exit by itself (a --cpu-prof profile is written on the way out) before the exit handler kills what is left.
  await Promise.race([checker.next('exit').catch(() => undefined), sleep(10_000)]);
  nginx?.stop();
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
    server: SERVER,
    keepalive: KEEPALIVE,
    checks_per_s: Math.round(checksPerS),
    cpu_share: Math.round(cpuShare * 1000) / 1000,
    cpu_us_per_check: Math.round(usPerCheck),
    rss_mb: Math.round(s1.rssMax / 1048576),
    rss_start_peak_mb: Math.round(atFull.rssMax / 1048576),
    rss_end_mb: Math.round(end.rss / 1048576),
    heap_mb: Math.round(s1.heapMax / 1048576),
    concurrency: CONCURRENCY,
    offload: OFFLOAD,
    period_s_p50: Math.round(srv.p50) / 1000,
    period_s_p99: Math.round(srv.p99) / 1000,
    silent_reals: silent,
    server_us_per_request: Math.round(serverCpuUs / Math.max(1, checks)),
    detect_kill_p50_ms: Math.round(q(kill, 0.5)),
    detect_kill_p99_ms: Math.round(q(kill, 0.99)),
    detect_hang_p50_ms: Math.round(q(hang, 0.5)),
    detect_hang_p99_ms: Math.round(q(hang, 0.99)),
    start_to_table_ms: Math.round(startToTable),
    start_to_table_ms_max: Math.round(Math.max(...startMs)),
    starts: STARTS,
    start_cpu_ms: Math.round(startCpuMs),
    start_server_cpu_ms: Math.round(serverStartCpuMs),
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
  const { setRawHttpEnabled } = await import('@tandem/ldirectord/checks/raw-http');
  // The net.Socket fallback: the engine is chosen when a spec is first planned, so this path has a spec of its own.
  const viaNet = (s: CheckSpec, sig: AbortSignal): Promise<Verdict> => {
    setRawHttpEnabled(false);
    try {
      return runCheck(s, sig);
    } finally {
      setRawHttpEnabled(true);
    }
  };
  const base = specFor(address);
  const paths: [string, (s: CheckSpec, sig: AbortSignal) => Promise<Verdict>, CheckSpec][] = [
    ['got (fresh connection, Connection: close)', checkHttpWithGot, base],
    ['lean client on raw libuv handles, fresh connection (default)', runCheck, base],
    ['lean client on net.Socket, fresh connection (fallback)', viaNet, { ...base }],
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
  const [g, lean, leanNet, ka, conn] = Object.values(figures);
  console.log(`RESULT ${JSON.stringify({ got_us_per_check: g, lean_us_per_check: lean, lean_net_us_per_check: leanNet, keepalive_us_per_check: ka, connect_us_per_check: conn })}`);
  process.exit(0);
}

/**
 * `--floor`: what the first pass costs with no ldirectord at all (bench/_checks-floor.ts): N
 * exchanges on fresh connections against the same nginx, in a fresh process with the daemon's
 * flags, on one thread and on two (the worker's start included), --starts times each; medians.
 * The figure start → full table is compared with: the daemon cannot be faster than this.
 */
async function floor(): Promise<void> {
  await ensureDebianPackages(['nginx-light']);
  const dir = mkdtempSync(join(tmpdir(), 'tandem-bench-floor-'));
  cleanupDirs.push(dir);
  const nginx = await startNginx(dir, Array.from({ length: N }, (_, i) => benchAddress(i)), PORT);
  children.add(nginx.pid);
  console.log(`floor: ${N} plain-http exchanges on fresh connections (rawExchange alone), one per address, concurrency ${CONCURRENCY}, nginx pid ${nginx.pid}; ${STARTS} fresh processes per row`);
  const floorFile = join(here, '_checks-floor.ts');
  const rows: Record<string, number> = {};
  for (const threads of [1, 2]) {
    const runs: { ms: number; cpuMs: number; nginxMs: number }[] = [];
    for (let k = 0; k < STARTS; k++) {
      const n0 = nginx.cpuUs();
      const r = await execaNode(floorFile, [JSON.stringify({ n: N, port: PORT, concurrency: CONCURRENCY, threads })], { nodeOptions: [...DAEMON_NODE_FLAGS], env: daemonEnv(process.env) as NodeJS.ProcessEnv, reject: false });
      if (r.exitCode !== 0) throw new Error(`floor run failed: ${r.stderr || r.stdout}`);
      const m = JSON.parse(r.stdout.trim().split('\n').pop()!) as { ms: number; cpuMs: number };
      runs.push({ ...m, nginxMs: (nginx.cpuUs() - n0) / 1000 });
      await sleep(1000);
    }
    const ms = q(runs.map((x) => x.ms), 0.5);
    console.log(`${threads} thread(s): median ${Math.round(ms)} ms (runs ${runs.map((x) => Math.round(x.ms)).join(', ')}), client CPU ${Math.round(q(runs.map((x) => x.cpuMs), 0.5))} ms, nginx CPU ≈ ${Math.round(q(runs.map((x) => x.nginxMs), 0.5))} ms`);
    rows[`floor_${threads}thread_ms`] = Math.round(ms);
  }
  nginx.stop();
  console.log(`RESULT ${JSON.stringify({ reals: N, concurrency: CONCURRENCY, starts: STARTS, ...rows })}`);
  process.exit(0);
}

(CLIENTS ? clients() : FLOOR ? floor() : main()).catch((err) => {
  console.error(err);
  process.exit(1);
});
