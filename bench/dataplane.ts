// `npm run bench -- dataplane [--duration S] [--rounds N] [--conns C] [--idle N] [--engine raw|net]`
//
// wrk through the embedded balancer (tandem) and through HAProxy (mode tcp), same two nginx
// backends, plus a direct baseline; keep-alive and `Connection: close`; interleaved rounds with a
// rotating order. Each balancer and both nginx run pinned to CPU 1, wrk to CPU 0 (the layout of
// ../shared/reference/dataplane.md). Each balancer has its own source address towards the
// backends (that reference's TIME_WAIT pitfall). Then RSS of the embedded balancer with N idle
// connections open through it. Everything on loopback; every child is started and stopped by PID.
import { execa, type ResultPromise } from 'execa';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { ensureDebianPackages } from './_debian.ts';
import { freePort, waitForControl, waitForPort } from '../test/lab/ports.ts';
import { controlRequest } from '@tandem/core/control';
import { decodeStats, type EncodedStats } from '@tandem/ipvs/wire';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const opt = (name: string, def: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const DURATION = opt('duration', 5);
const ROUNDS = opt('rounds', 3);
const CONNS = opt('conns', 50);
const IDLE = opt('idle', 10_000);
const NODE = process.execPath;
const ei = args.indexOf('--engine');
const ENGINE = ei >= 0 ? args[ei + 1] : 'auto';

const B1 = '127.0.1.1';
const B2 = '127.0.1.2';
const HAP_VIP = '127.0.2.1';
const TDM_VIP = '127.0.2.2';
const HAP_SRC = '127.0.2.11';
const TDM_SRC = '127.0.2.12';
const FLR_VIP = '127.0.2.3';
const FLR_SRC = '127.0.2.13';

const children: ResultPromise[] = [];
const exited = new Set<ResultPromise>();
const dir = mkdtempSync(join(tmpdir(), 'tandem-bench-dp-'));


const waitPort = (host: string, port: number, timeoutMs = 10_000) => waitForPort(host, port, timeoutMs);

function spawn(cmd: string, argv: string[], label: string): ResultPromise {
  const p = execa(cmd, argv, { reject: false, stdin: 'pipe', stdout: 'pipe', stderr: 'pipe', buffer: false });
  p.stderr?.on('data', (d: Buffer) => {
    const s = String(d).trim();
    if (s) console.error(`[${label}] ${s}`);
  });
  children.push(p);
  void p.then(() => exited.add(p));
  return p;
}

async function startNginx(name: string, address: string, port: number): Promise<{ p: ResultPromise }> {
  const d = join(dir, name);
  const conf = join(dir, `${name}.conf`);
  await execa('mkdir', ['-p', d]);
  writeFileSync(
    conf,
    `daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile 20000;
pid ${d}/nginx.pid;
error_log ${d}/error.log warn;
events { worker_connections 19000; }
http {
  access_log off;
  client_body_temp_path ${d}/body; proxy_temp_path ${d}/proxy; fastcgi_temp_path ${d}/fcgi;
  uwsgi_temp_path ${d}/uwsgi; scgi_temp_path ${d}/scgi;
  keepalive_requests 10000000;
  keepalive_timeout 120s;
  client_header_timeout 120s;
  default_type text/plain;
  server { listen ${address}:${port} backlog=4096; location / { return 200 "hello from ${name}\\n"; } }
}
`,
  );
  const p = spawn('taskset', [ '-c', '1', 'nginx', '-c', conf, '-p', d], name);
  await waitPort(address, port);
  // Wrapped: an async function returning the (thenable) child would wait for it to exit.
  return { p };
}

async function startHaproxy(port: number, b1: number, b2: number): Promise<{ p: ResultPromise }> {
  const conf = join(dir, 'haproxy.cfg');
  writeFileSync(
    conf,
    `global
  maxconn 9000
  nbthread 1
defaults
  mode tcp
  timeout connect 5s
  timeout client 120s
  timeout server 120s
listen lb
  bind ${HAP_VIP}:${port}
  balance roundrobin
  server b1 ${B1}:${b1} source ${HAP_SRC}
  server b2 ${B2}:${b2} source ${HAP_SRC}
`,
  );
  const p = spawn('taskset', [ '-c', '1', 'haproxy', '-db', '-f', conf], 'haproxy');
  await waitPort(HAP_VIP, port);
  return { p };
}

interface Lb {
  proc: ResultPromise;
  /** Connections established through it, its memory (from its control socket) and engine. */
  stats(): Promise<{ active: number; rss: number; heapUsed: number; heapTotal: number; external: number; engine: string }>;
}

// The real daemon, started as a user starts it (its launcher, with the compile cache), its table
// given as an ipvsadm-save file; --source gives it its own address towards the backends.
const LAUNCHER = join(here, '..', 'packages', 'ipvs', 'bin', 'tandem-ipvsd');
let tandems = 0;
async function startTandem(port: number, b1: number, b2: number, extra: string[] = []): Promise<Lb> {
  const n = ++tandems;
  const rules = join(dir, `tandem-${n}.rules`);
  const sock = join(dir, `tandem-${n}.sock`);
  const vs = `${TDM_VIP}:${port}`;
  writeFileSync(rules, `-A -t ${vs} -s rr\n-a -t ${vs} -r ${B1}:${b1} -m -w 1\n-a -t ${vs} -r ${B2}:${b2} -m -w 1\n`);
  const proc = spawn('taskset', ['-c', '1', LAUNCHER, '--no-state', '--socket', sock, '--source', TDM_SRC, '--engine', ENGINE, '--restore', rules, '--logfile', join(dir, `tandem-${n}.log`), ...extra], 'tandem');
  await waitForControl(sock, 'tandem-ipvsd', 20_000);
  await waitPort(TDM_VIP, port);
  return {
    proc,
    async stats() {
      const st = (await controlRequest(sock, { cmd: 'status' }, 10_000)) as unknown as { engine?: string; memory: { rss: number; heapUsed: number; heapTotal: number; external: number } };
      const list = (await controlRequest(sock, { cmd: 'list' }, 10_000)) as unknown as { stats: EncodedStats };
      let active = 0;
      for (const s of decodeStats(list.stats).services.values()) for (const r of s.reals.values()) active += r.activeConns;
      return { active, ...st.memory, engine: st.engine ?? '?' };
    },
  };
}

/** The floor proxy (bench/_dataplane-floor.ts): what Node's own bindings allow, no balancer logic. */
async function startFloor(port: number, b1: number, b2: number): Promise<{ proc: ResultPromise }> {
  // At tandem-ipvsd's default nice, so that "tandem / floor" compares code, not priority.
  const proc = spawn('taskset', ['-c', '1', 'nice', '-n', '-5', NODE, join(here, '_dataplane-floor.ts'), FLR_VIP, String(port), FLR_SRC, `${B1}:${b1}`, `${B2}:${b2}`], 'floor');
  const lines = createInterface({ input: proc.stdout! });
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('floor proxy did not start')), 15_000);
    lines.on('line', (l) => {
      if (l === 'READY') {
        clearTimeout(t);
        resolve();
      }
    });
  });
  // Wrapped: an async function returning the (thenable) child would wait for it to exit.
  return { proc };
}

/** utime+stime of a process and its threads, in µs. */
function cpuUs(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return ((Number(rest[11]) + Number(rest[12])) * 1e6) / 100;
}

/** Busy jiffies of all CPUs (everything but idle and iowait), in µs. */
function boxBusyUs(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0].split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = line;
  return ((user + nice + system + irq + softirq + steal) * 1e6) / 100;
}

/** Leaf pid of a prlimit→taskset→exec chain: prlimit and taskset exec, so the pid is the program's. */
const pidOf = (p: ResultPromise) => p.pid!;

interface Run {
  variant: string;
  mode: 'keepalive' | 'close';
  rps: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  lbCpuUsPerReq: number | null;
  boxBusyUsPerReq: number;
}

function toMs(s: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(s.trim());
  if (!m) return NaN;
  const v = Number(m[1]);
  return m[2] === 'us' ? v / 1000 : m[2] === 'ms' ? v : m[2] === 's' ? v * 1000 : v * 60_000;
}

async function wrk(url: string, mode: 'keepalive' | 'close', seconds: number, lbPid: number | null, variant: string): Promise<Run> {
  const argv = ['-c', '0', 'timeout', String(seconds + 20), 'wrk', '-t1', `-c${CONNS}`, `-d${seconds}s`, '--timeout', '2s', '--latency'];
  if (mode === 'close') argv.push('-H', 'Connection: close');
  argv.push(url);
  const cpu0 = lbPid ? cpuUs(lbPid) : 0;
  const box0 = boxBusyUs();
  const r = await execa('taskset', argv, { reject: false });
  const box1 = boxBusyUs();
  const cpu1 = lbPid ? cpuUs(lbPid) : 0;
  const out = String(r.stdout);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0);
  const total = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
  const p50 = toMs(/ 50%\s+(\S+)/.exec(out)?.[1] ?? '');
  const p99 = toMs(/ 99%\s+(\S+)/.exec(out)?.[1] ?? '');
  const se = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  // wrk counts a server-side close after `Connection: close` as a read error; only count the rest.
  const errors = (se ? Number(se[1]) + Number(se[3]) + Number(se[4]) : 0) + non2xx;
  return {
    variant,
    mode,
    rps,
    p50Ms: p50,
    p99Ms: p99,
    errors,
    lbCpuUsPerReq: lbPid && total ? (cpu1 - cpu0) / total : null,
    boxBusyUsPerReq: total ? (box1 - box0) / total : 0,
  };
}

const median = (xs: number[]) => {
  const s = [...xs].filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function main(): Promise<void> {
  await ensureDebianPackages(['wrk', 'haproxy', 'nginx-light', 'util-linux']);
  const [p1, p2, hp, tp, fp] = [await freePort(B1), await freePort(B2), await freePort(HAP_VIP), await freePort(TDM_VIP), await freePort(FLR_VIP)];
  const tp0 = await freePort(TDM_VIP);
  await startNginx('b1', B1, p1);
  await startNginx('b2', B2, p2);
  const hap = await startHaproxy(hp, p1, p2);
  const tdm = await startTandem(tp, p1, p2);
  const floor = await startFloor(fp, p1, p2);
  // The same daemon at nice 0 (tandem-ipvsd runs its forwarding thread at -5 by default): where
  // the default's gain comes from, in the same run.
  const tdm0 = await startTandem(tp0, p1, p2, ['--nice', '0']);
  const variants = [
    { name: 'direct', url: `http://${B1}:${p1}/`, pid: null as number | null },
    { name: 'haproxy', url: `http://${HAP_VIP}:${hp}/`, pid: pidOf(hap.p) },
    { name: 'tandem', url: `http://${TDM_VIP}:${tp}/`, pid: pidOf(tdm.proc) },
    { name: 'tandem_nice0', url: `http://${TDM_VIP}:${tp0}/`, pid: pidOf(tdm0.proc) },
    { name: 'nodefloor', url: `http://${FLR_VIP}:${fp}/`, pid: pidOf(floor.proc) },
  ];
  const combos = variants.flatMap((v) => (['keepalive', 'close'] as const).map((mode) => ({ ...v, mode })));
  console.log(`load average before: ${readFileSync('/proc/loadavg', 'utf8').trim()}`);
  console.log(`warm-up: 2 s per combination; then ${ROUNDS} rounds x ${combos.length} combinations x ${DURATION} s, order rotating; wrk -t1 -c${CONNS} on CPU 0, balancers and nginx on CPU 1`);
  for (const c of combos) await wrk(c.url, c.mode, 2, c.pid, c.name);
  const runs: Run[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    for (let k = 0; k < combos.length; k++) {
      const c = combos[(k + r) % combos.length];
      const run = await wrk(c.url, c.mode, DURATION, c.pid, c.name);
      runs.push(run);
      console.log(`  round ${r + 1} ${c.name.padEnd(12)} ${c.mode.padEnd(9)} ${run.rps.toFixed(0).padStart(7)} req/s  p99 ${run.p99Ms.toFixed(2)} ms  errors ${run.errors}`);
    }
  }
  const summary: Record<string, { rps: number; p50: number; p99: number; lbCpu: number; box: number; errors: number; perRound: number[] }> = {};
  console.log('\nvariant       mode       req/s    p50 ms  p99 ms  LB CPU µs/req  box busy µs/req  errors  req/s per round');
  for (const c of combos) {
    const rs = runs.filter((x) => x.variant === c.name && x.mode === c.mode);
    const s = {
      rps: median(rs.map((x) => x.rps)),
      p50: median(rs.map((x) => x.p50Ms)),
      p99: median(rs.map((x) => x.p99Ms)),
      lbCpu: median(rs.map((x) => x.lbCpuUsPerReq ?? NaN)),
      box: median(rs.map((x) => x.boxBusyUsPerReq)),
      errors: rs.reduce((a, x) => a + x.errors, 0),
      perRound: rs.map((x) => Math.round(x.rps)),
    };
    summary[`${c.name}_${c.mode}`] = s;
    console.log(
      `${c.name.padEnd(13)} ${c.mode.padEnd(9)} ${s.rps.toFixed(0).padStart(7)}  ${s.p50.toFixed(2).padStart(7)} ${s.p99.toFixed(2).padStart(7)}  ${Number.isFinite(s.lbCpu) ? s.lbCpu.toFixed(1).padStart(13) : '            -'}  ${s.box.toFixed(1).padStart(15)}  ${String(s.errors).padStart(6)}  ${s.perRound.join(', ')}`,
    );
  }
  const ratio = (a: number, b: number) => Math.round((a / b) * 1000) / 1000;
  const kaRatio = ratio(summary.tandem_keepalive.rps, summary.haproxy_keepalive.rps);
  const clRatio = ratio(summary.tandem_close.rps, summary.haproxy_close.rps);
  const p99Close = ratio(summary.tandem_close.p99, summary.haproxy_close.p99);
  const p99Ka = ratio(summary.tandem_keepalive.p99, summary.haproxy_keepalive.p99);
  console.log(`\ntandem / haproxy: keep-alive req/s ${kaRatio}, close req/s ${clRatio}; p99 keep-alive ${p99Ka}, p99 close ${p99Close}`);
  console.log(`haproxy / direct: keep-alive ${ratio(summary.haproxy_keepalive.rps, summary.direct_keepalive.rps)}, close ${ratio(summary.haproxy_close.rps, summary.direct_close.rps)}; tandem / direct: keep-alive ${ratio(summary.tandem_keepalive.rps, summary.direct_keepalive.rps)}, close ${ratio(summary.tandem_close.rps, summary.direct_close.rps)}`);
  const floorKa = ratio(summary.nodefloor_keepalive.rps, summary.haproxy_keepalive.rps);
  const floorCl = ratio(summary.nodefloor_close.rps, summary.haproxy_close.rps);
  const nice0Ka = ratio(summary.tandem_nice0_keepalive.rps, summary.haproxy_keepalive.rps);
  const nice0Cl = ratio(summary.tandem_nice0_close.rps, summary.haproxy_close.rps);
  const nice0P99Cl = ratio(summary.tandem_nice0_close.p99, summary.haproxy_close.p99);
  console.log(`tandem at nice 0 / haproxy: keep-alive req/s ${nice0Ka}, close req/s ${nice0Cl}; p99 close ${nice0P99Cl}`);
  const floorP99Cl = ratio(summary.nodefloor_close.p99, summary.haproxy_close.p99);
  console.log(`node floor (no balancer logic, nice -5) / haproxy: keep-alive ${floorKa}, close ${floorCl}, p99 close ${floorP99Cl}; tandem / node floor: keep-alive ${ratio(summary.tandem_keepalive.rps, summary.nodefloor_keepalive.rps)}, close ${ratio(summary.tandem_close.rps, summary.nodefloor_close.rps)}`);

  // RSS with IDLE idle connections through the embedded balancer.
  // RSS with IDLE idle connections through the embedded balancer, in a fresh balancer process
  // (the one above has just carried the load; its RSS is reported too). A proxied connection holds
  // two descriptors; the hard RLIMIT_NOFILE caps how many fit in one process, and the figure is
  // then scaled to IDLE (reported as such).
  const afterLoad = await tdm.stats();
  process.kill(pidOf(tdm.proc), 'SIGTERM');
  process.kill(pidOf(tdm0.proc), 'SIGTERM');
  await Promise.race([tdm.proc, new Promise((r) => setTimeout(r, 5000))]);
  const tp2 = await freePort(TDM_VIP);
  const fresh = await startTandem(tp2, p1, p2);
  const nofile = Number((await execa('sh', ['-c', 'ulimit -Hn'])).stdout) || 1024;
  const want = Math.min(IDLE, Math.floor((nofile - 100) / 2));
  const before = await fresh.stats();
  const opener = spawn(NODE, [join(here, '_dataplane-conns.ts'), TDM_VIP, String(tp2), String(want), '127.0.3.1', '127.0.3.2'], 'conns');
  const openLine = await new Promise<string>((resolve) => {
    const rl = createInterface({ input: opener.stdout! });
    rl.on('line', (l) => l.startsWith('OPEN') && resolve(l));
    setTimeout(() => resolve('OPEN ? (timeout)'), 70_000);
  });
  const opened = Number(/OPEN (\d+)/.exec(openLine)?.[1] ?? 0);
  let during = await fresh.stats();
  const deadline = Date.now() + 30_000;
  while (during.active < opened && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    during = await fresh.stats();
  }
  const status = readFileSync(`/proc/${pidOf(fresh.proc)}/status`, 'utf8');
  const statusRss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
  // Private memory only (RssAnon); RssFile is the node binary's pages shared with every process.
  const anonMb = Math.round((Number(/RssAnon:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024) * 10) / 10;
  const rssMb = Math.round(statusRss * 10) / 10;
  const beforeMb = before.rss / 2 ** 20;
  const scaledMb = opened > 0 ? Math.round((beforeMb + ((rssMb - beforeMb) * IDLE) / opened) * 10) / 10 : NaN;
  const mb = (x: number) => (x / 2 ** 20).toFixed(1);
  console.log(`\ntandem after the load above: RSS ${mb(afterLoad.rss)} MB (V8 heap ${mb(afterLoad.heapTotal)} MB, external ${mb(afterLoad.external)} MB), ${afterLoad.engine} TCP engine`);
  console.log(`idle connections into a fresh balancer (hard nofile limit ${nofile}): ${openLine}; established through it: ${during.active}; RSS ${beforeMb.toFixed(1)} MB before, ${rssMb} MB with them open (private/anonymous ${anonMb} MB, V8 heap ${mb(during.heapUsed)} MB used); scaled to ${IDLE}: ${scaledMb} MB; ${opened > 0 ? (((rssMb - beforeMb) * 1024) / opened).toFixed(2) : '?'} KB per connection`);
  opener.stdin!.end();

  const result = {
    engine_raw: afterLoad.engine === 'raw' ? 1 : 0,
    duration_s: DURATION,
    rounds: ROUNDS,
    wrk_connections: CONNS,
    direct_keepalive_rps: Math.round(summary.direct_keepalive.rps),
    direct_close_rps: Math.round(summary.direct_close.rps),
    haproxy_keepalive_rps: Math.round(summary.haproxy_keepalive.rps),
    haproxy_close_rps: Math.round(summary.haproxy_close.rps),
    tandem_keepalive_rps: Math.round(summary.tandem_keepalive.rps),
    tandem_close_rps: Math.round(summary.tandem_close.rps),
    tandem_nice0_keepalive_rps: Math.round(summary.tandem_nice0_keepalive.rps),
    tandem_nice0_close_rps: Math.round(summary.tandem_nice0_close.rps),
    ratio_nice0_keepalive_vs_haproxy: nice0Ka,
    ratio_nice0_close_vs_haproxy: nice0Cl,
    p99_ratio_nice0_close_vs_haproxy: nice0P99Cl,
    nodefloor_keepalive_rps: Math.round(summary.nodefloor_keepalive.rps),
    nodefloor_close_rps: Math.round(summary.nodefloor_close.rps),
    ratio_nodefloor_keepalive_vs_haproxy: floorKa,
    ratio_nodefloor_close_vs_haproxy: floorCl,
    p99_ratio_nodefloor_close_vs_haproxy: floorP99Cl,
    ratio_keepalive_vs_haproxy: kaRatio,
    ratio_close_vs_haproxy: clRatio,
    p99_ratio_keepalive_vs_haproxy: p99Ka,
    p99_ratio_close_vs_haproxy: p99Close,
    haproxy_p99_close_ms: summary.haproxy_close.p99,
    tandem_p99_close_ms: summary.tandem_close.p99,
    haproxy_cpu_us_per_req_keepalive: Math.round(summary.haproxy_keepalive.lbCpu * 10) / 10,
    tandem_cpu_us_per_req_keepalive: Math.round(summary.tandem_keepalive.lbCpu * 10) / 10,
    haproxy_cpu_us_per_req_close: Math.round(summary.haproxy_close.lbCpu * 10) / 10,
    tandem_cpu_us_per_req_close: Math.round(summary.tandem_close.lbCpu * 10) / 10,
    errors: Object.values(summary).reduce((a, s) => a + s.errors, 0),
    idle_connections_opened: opened,
    idle_connections_established: during.active,
    rss_mb_measured: rssMb,
    anon_rss_mb_measured: anonMb,
    rss_kb_per_conn: opened > 0 ? Math.round((((rssMb - beforeMb) * 1024) / opened) * 100) / 100 : null,
    rss_mb_after_load: Math.round((afterLoad.rss / 2 ** 20) * 10) / 10,
    rss_mb_before_idle_conns: Math.round(beforeMb * 10) / 10,
    rss_mb_10k_conns: opened >= IDLE ? rssMb : scaledMb,
  };
  console.log(`RESULT ${JSON.stringify(result)}`);
}

async function cleanup(): Promise<void> {
  for (const c of children.reverse()) {
    try {
      c.stdin?.end();
    } catch {
      // already gone
    }
    if (c.pid && !exited.has(c)) process.kill(c.pid, 'SIGTERM');
  }
  await Promise.race([Promise.allSettled(children), new Promise((r) => setTimeout(r, 5000))]);
  for (const c of children) if (c.pid && !exited.has(c)) {
    try {
      process.kill(c.pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  rmSync(dir, { recursive: true, force: true });
}

try {
  await main();
} catch (e) {
  console.error(`bench dataplane failed: ${(e as Error).stack ?? e}`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
