// `npm run bench -- failover [--runs N] [--only tandem|heartbeat|keepalived[,...]] [--interval MS] [--seed-ipfail] [--raw FILE]`
//
// Client-visible failover, for real, in network namespaces: a client sends a request to the VIP
// every 10 ms over UDP and over TCP (a fresh connection each); the active director's host dies
// (its link cut at the switch, its daemons SIGKILLed, its addresses gone as after a reboot); the
// backup takes over. Then the dead host comes back and takes the VIP back (auto_failback /
// preempt). Per switch: the outage the client saw (the longest stretch of send times whose
// requests went unanswered, first unanswered to next answered), the unanswered requests, those that failed once the new holder had answered, and the moments
// both directors held the VIP after the switch had settled (`ip addr` in both namespaces every
// 50 ms). N runs (default 10) for:
//   tandem              keepalive 1/deadtime 5, 100ms/500ms, 20ms/100ms (balancer and ldirectord
//                       hot on both directors, haresources `loadbalancer IPaddr::VIP/24/eth0`)
//   heartbeat 3.0.6     1/5 and 100ms/500ms, haresources `node1 IPaddr::VIP/24/eth0` (Debian)
//   keepalived 2.2.7    VRRPv3 advert_int 1, 0.1, 0.01 (Debian)
// tandem's ha.cf is seed 001's without its ping_group and ipfail lines, as the peers have no ping
// nodes either; --seed-ipfail keeps them.
// Debian's heartbeat and keepalived are installed when missing (bench/debian-packages.txt).
// The last line is `RESULT {json}`.
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureDebianPackages } from './_debian.ts';
import { realHeartbeatInstalled, type Setting } from './_detect-nodes.ts';
import { VIP } from '../test/lab/lab.ts';
import { canMakeNamespaces } from '../test/lab/lab.ts';
import { TandemCluster, HeartbeatCluster, KeepalivedCluster, type Cluster } from './_failover-clusters.ts';
import { ProbeLog, HolderPoller, analyseSwitch, median, range, type SwitchFigures } from './_failover-measure.ts';

type System = 'tandem' | 'heartbeat' | 'keepalived';

const SETTING_KEYS = ['tandem_1s', 'tandem_100ms', 'tandem_fast', 'heartbeat306_1s', 'heartbeat306_100ms', 'keepalived_1', 'keepalived_01', 'keepalived_001'];

interface Options {
  runs: number;
  /** Systems (tandem, heartbeat, keepalived) or single settings (tandem_fast, keepalived_01 ...). */
  only: Set<string>;
  intervalMs: number;
  ipfail: boolean;
  /** A file to append every switch's raw probe results and holder samples to (JSON lines). */
  raw?: string;
}

function parseOptions(argv: string[]): Options {
  const o: Options = { runs: 10, only: new Set(['tandem', 'heartbeat', 'keepalived']), intervalMs: 10, ipfail: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--runs') o.runs = Math.max(1, Math.min(100, Number(next()) || 1));
    else if (a === '--seed-ipfail') o.ipfail = true;
    else if (a === '--raw') o.raw = next();
    else if (a === '--interval') o.intervalMs = Math.max(2, Number(next()) || 10);
    else if (a === '--only') {
      const names = next().split(',');
      for (const n of names) if (!['tandem', 'heartbeat', 'keepalived', ...SETTING_KEYS].includes(n)) throw new Error(`--only: unknown system or setting ${n} (tandem, heartbeat, keepalived, ${SETTING_KEYS.join(', ')})`);
      o.only = new Set(names);
    } else throw new Error(`unknown option ${a}`);
  }
  return o;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (s: string) => process.stdout.write(s + '\n');
/** After the new holder's first answer: how long the client keeps being watched. */
const OBSERVE_MS = 2500;
/**
 * A restarted primary is killed again only after this long: heartbeat 3.0.6 advertises
 * dt = deadtime + 2 s for its first 5 s (reference/heartbeat.md §8.2), so the peer rightly waits
 * longer in that window. The same wait for every system.
 */
const MIN_UPTIME_MS = 6000;
/** A second holder may linger this long after the new holder's first answer before it counts. */
const SETTLE_MS = 500;

interface RunFigures {
  takeover: SwitchFigures;
  failback?: SwitchFigures;
  /** Kill → the new holder's daemon declared the old one dead (where the daemon tells), ms. */
  detectMs: number;
  /** How long killing the host took (link cut, SIGKILLs, address flush), ms. */
  killMs: number;
}

interface ClusterFigures {
  title: string;
  runs: RunFigures[];
  error?: string;
  notes: string[];
  tcpPath?: string;
}

/** The last `n` answers of a probe all came from `who` (and were answers). */
function serving(p: ProbeLog, who: string | undefined, n: number): boolean {
  const rs = p.results.slice(-n);
  return rs.length === n && rs.every((r) => r.ok && (who === undefined || r.by === who));
}

async function waitFor(what: string, pred: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (pred()) return true;
    await sleep(10);
  }
  log(`    (gave up after ${timeoutMs} ms waiting for ${what})`);
  return false;
}

const firstFrom = (p: ProbeLog, fromW: number, who: string) => () => p.since(fromW).some((r) => r.ok && r.by === who);

let current: Cluster | undefined;
let stopping = false;

async function measure(c: Cluster, o: Options): Promise<ClusterFigures> {
  const fig: ClusterFigures = { title: c.title, runs: [], notes: [] };
  current = c;
  let poller: HolderPoller | undefined;
  try {
    const t0 = Date.now();
    await c.start();
    const p = c.probes(o.intervalMs);
    fig.tcpPath = p.tcpPath;
    const udp = new ProbeLog('udp', p.udp);
    const tcp = new ProbeLog('tcp', p.tcp);
    poller = new HolderPoller(c.directors(), VIP);
    poller.start();
    log(`  ${c.title}: up in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const steady = () => serving(udp, c.primaryName, 50) && serving(tcp, undefined, 50);
    let restoredW = 0;
    for (let run = 1; run <= o.runs && !stopping; run++) {
      if (!(await waitFor(`${c.primaryName} to serve steadily`, steady, 60_000))) {
        fig.error = `run ${run}: the primary did not serve steadily`;
        break;
      }
      await sleep(Math.max(0, restoredW + MIN_UPTIME_MS - Date.now()));
      // A random phase against the keepalive / advert timers.
      await sleep(Math.random() * 1000);
      const detect = c.armDetect?.(c.takeoverDeadlineMs).catch(() => NaN);
      // The wait must be registered with the daemon before the kill.
      if (detect) await sleep(100);
      const killW = Date.now();
      await c.killPrimary();
      const killedW = Date.now();
      await waitFor(`${c.backupName} to answer`, firstFrom(udp, killW, c.backupName), c.takeoverDeadlineMs);
      await sleep(OBSERVE_MS);
      const tIn = { udp: udp.since(killW - 2000), tcp: tcp.since(killW - 2000), holders: poller.samples.filter((s) => s.w >= killW - 2000), eventW: killW, newHolder: c.backupName, endW: Date.now(), settleMs: SETTLE_MS, ignoreHolder: c.primaryName };
      const takeover = analyseSwitch(tIn);
      if (o.raw) appendFileSync(o.raw, JSON.stringify({ cluster: c.title, run, kind: 'takeover', ...tIn, figures: takeover }) + '\n');
      const restoreW = Date.now();
      await c.restorePrimary();
      restoredW = Date.now();
      const back = await waitFor(`${c.primaryName} to take the VIP back`, firstFrom(udp, restoreW, c.primaryName), c.failbackDeadlineMs);
      await sleep(OBSERVE_MS);
      const bIn = { udp: udp.since(restoreW - 2000), tcp: tcp.since(restoreW - 2000), holders: poller.samples.filter((s) => s.w >= restoreW - 2000), eventW: restoreW, newHolder: c.primaryName, endW: Date.now(), settleMs: SETTLE_MS };
      const failback = analyseSwitch(bIn);
      if (o.raw) appendFileSync(o.raw, JSON.stringify({ cluster: c.title, run, kind: 'failback', ...bIn, figures: failback }) + '\n');
      const detectW = detect ? await Promise.race([detect, sleep(1000).then(() => NaN)]) : NaN;
      fig.runs.push({ takeover, failback, detectMs: detectW - killW, killMs: killedW - killW });
      const f = (x: number) => (Number.isFinite(x) ? String(Math.round(x)) : '–');
      log(`    run ${run}: takeover outage udp ${f(takeover.outageUdpMs)} tcp ${f(takeover.outageTcpMs)} ms (silence ${f(takeover.silenceUdpMs)}/${f(takeover.silenceTcpMs)},${Number.isFinite(detectW) ? ` declared dead ${f(detectW - killW)},` : ''} first answer ${f(takeover.firstNewMs)}, vip ${f(takeover.vipMs)}), lost ${takeover.lostUdp}/${takeover.lostTcp}, failed after takeover ${takeover.failedAfterTakeover}, dual ${takeover.dualAfterSettle}` +
        ` | failback outage udp ${f(failback.outageUdpMs)} tcp ${f(failback.outageTcpMs)} ms (silence ${f(failback.silenceUdpMs)}/${f(failback.silenceTcpMs)}, restart→answer ${f(failback.firstNewMs)}), lost ${failback.lostUdp}/${failback.lostTcp}, failed after ${failback.failedAfterTakeover}, dual ${failback.dualAfterSettle}${failback.dualBeforeSettle ? ` (+${failback.dualBeforeSettle} while settling)` : ''}`);
      if (!back) {
        fig.error = `run ${run}: the primary did not take the VIP back`;
        break;
      }
    }
  } catch (e) {
    fig.error = (e as Error).message;
    log(`  ${c.title}: ERROR ${fig.error}`);
  } finally {
    await poller?.stop();
    fig.notes = c.notes();
    await c.close().catch((e: Error) => log(`  cleanup of ${c.title}: ${e.message}`));
    current = undefined;
  }
  return fig;
}

const outage = (s: SwitchFigures) => Math.max(s.outageUdpMs, s.outageTcpMs);

function summarise(f: ClusterFigures) {
  const t = f.runs.map((r) => r.takeover);
  const b = f.runs.map((r) => r.failback).filter((x): x is SwitchFigures => !!x);
  const sum = (xs: number[]) => xs.reduce((a, x) => a + x, 0);
  return {
    n: t.length,
    outage: median(t.map(outage)),
    outageRange: range(t.map(outage)),
    udp: median(t.map((s) => s.outageUdpMs)),
    tcp: median(t.map((s) => s.outageTcpMs)),
    firstNew: median(t.map((s) => s.firstNewMs)),
    vip: median(t.map((s) => s.vipMs)),
    detect: median(f.runs.map((x) => x.detectMs)),
    lost: median(t.map((s) => s.lostUdp + s.lostTcp)),
    failedAfter: sum(t.map((s) => s.failedAfterTakeover)),
    dual: sum(t.map((s) => s.dualAfterSettle)) + sum(b.map((s) => s.dualAfterSettle)),
    dualSettling: sum(t.map((s) => s.dualBeforeSettle)) + sum(b.map((s) => s.dualBeforeSettle)),
    backOutage: median(b.map(outage)),
    backRange: range(b.map(outage)),
    backFailedAfter: sum(b.map((s) => s.failedAfterTakeover)),
  };
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  if (!(await canMakeNamespaces())) throw new Error('bench failover needs root and network namespaces');
  const want = (system: System, key: string) => o.only.has(system) || o.only.has(key);
  const wantAny = (system: System) => o.only.has(system) || [...o.only].some((k) => k.startsWith(system));
  const wanted: string[] = ['iproute2', 'socat'];
  if (wantAny('heartbeat')) wanted.push('heartbeat');
  if (wantAny('keepalived')) wanted.push('keepalived');
  await ensureDebianPackages(wanted);
  const root = mkdtempSync(join(tmpdir(), 'tandem-bench-failover-'));
  const clusters: (() => Cluster)[] = [];
  const tandemSettings: [string, Setting][] = [['1s', { keepaliveMs: 1000, deadtimeMs: 5000 }], ['100ms', { keepaliveMs: 100, deadtimeMs: 500 }], ['fast', { keepaliveMs: 20, deadtimeMs: 100 }]];
  const hbSettings: [string, Setting][] = [['1s', { keepaliveMs: 1000, deadtimeMs: 5000 }], ['100ms', { keepaliveMs: 100, deadtimeMs: 500 }]];
  const kaSettings: [string, number][] = [['1', 1], ['01', 0.1], ['001', 0.01]];
  const keys: string[] = [];
  for (const [k, s] of tandemSettings) if (want('tandem', `tandem_${k}`)) { keys.push(`tandem_${k}`); clusters.push(() => new TandemCluster(s, o.ipfail)); }
  if (wantAny('heartbeat') && !realHeartbeatInstalled()) log('heartbeat 3.0.6 is not installed: skipped');
  else for (const [k, s] of hbSettings) if (want('heartbeat', `heartbeat306_${k}`)) { keys.push(`heartbeat306_${k}`); clusters.push(() => new HeartbeatCluster(s, join(root, `hb-${k}`))); }
  for (const [k, a] of kaSettings) if (want('keepalived', `keepalived_${k}`)) { keys.push(`keepalived_${k}`); clusters.push(() => new KeepalivedCluster(a, join(root, `ka-${k}`))); }

  log(`bench failover: ${o.runs} runs per setting, a request every ${o.intervalMs} ms over UDP and TCP, VIP ${VIP}; ${keys.length} settings`);
  const results = new Map<string, ReturnType<typeof summarise> & { error?: string; title: string }>();
  for (let i = 0; i < clusters.length && !stopping; i++) {
    const c = clusters[i]!();
    log(`\n${c.title}`);
    const f = await measure(c, o);
    for (const n of f.notes) log(`  ${n}`);
    if (f.tcpPath) log(`  TCP probe: ${f.tcpPath}`);
    results.set(keys[i]!, { ...summarise(f), error: f.error, title: f.title });
  }

  const r = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? null : Math.round(x * 10) / 10);
  log('\nsummary (takeover after a host death; medians over the runs; outage = longest stretch of unanswered requests, the worse of UDP and TCP):');
  log(`  ${'setting'.padEnd(32)} ${'runs'.padStart(4)} ${'outage'.padStart(7)} ${'range'.padStart(11)} ${'udp'.padStart(6)} ${'tcp'.padStart(6)} ${'lost'.padStart(5)} ${'failed after'.padStart(12)} ${'dual'.padStart(4)} ${'failback outage'.padStart(15)}`);
  for (const [, s] of results) {
    log(`  ${s.title.padEnd(32)} ${String(s.n).padStart(4)} ${String(r(s.outage)).padStart(7)} ${s.outageRange.padStart(11)} ${String(r(s.udp)).padStart(6)} ${String(r(s.tcp)).padStart(6)} ${String(r(s.lost)).padStart(5)} ${String(s.failedAfter).padStart(12)} ${String(s.dual).padStart(4)} ${`${r(s.backOutage)} (${s.backRange})`.padStart(15)}${s.error ? `  [${s.error}]` : ''}`);
  }
  log('\nwhere a takeover\'s time goes (medians from the kill: peer declared dead where the daemon tells, VIP seen on the backup by `ip addr`, first answer):');
  for (const [, s] of results) log(`  ${s.title.padEnd(32)} dead ${String(r(s.detect)).padStart(7)}  vip ${String(r(s.vip)).padStart(7)}  first answer ${String(r(s.firstNew)).padStart(7)}`);
  const g = (k: string) => results.get(k);
  const ratio = (a?: number, b?: number) => (a !== undefined && b !== undefined && Number.isFinite(a) && Number.isFinite(b) && b > 0 ? Math.round((a / b) * 1000) / 1000 : null);
  const fast = g('tandem_fast')?.outage;
  const rHb = ratio(fast, g('heartbeat306_100ms')?.outage);
  const rKa = ratio(fast, g('keepalived_01')?.outage);
  log('');
  if (fast !== undefined) {
    log(`tandem 20ms/100ms: median outage ${r(fast)} ms (target ≤ 150 ms) = ${rHb ?? '?'}× heartbeat 3.0.6 at 100ms/500ms (target ≤ 0.2), ${rKa ?? '?'}× keepalived at advert_int 0.1 (target ≤ 0.5)`);
    const tandem = [...results].filter(([k]) => k.startsWith('tandem_')).map(([, s]) => s);
    log(`tandem: ${tandem.reduce((a, s) => a + s.failedAfter, 0)} requests failed once the backup had taken over (target 0); ${tandem.reduce((a, s) => a + s.dual, 0)} dual holders after settling (target 0)`);
  }
  const sumOf = (prefix: string, f: (s: ReturnType<typeof summarise>) => number) => {
    const xs = [...results].filter(([k]) => k.startsWith(prefix)).map(([, s]) => f(s));
    return xs.length ? xs.reduce((a, x) => a + x, 0) : null;
  };
  const result: Record<string, number | null> = {
    runs: o.runs,
    probe_interval_ms: o.intervalMs,
    tandem_fast_outage_median_ms: r(g('tandem_fast')?.outage),
    tandem_fast_outage_udp_median_ms: r(g('tandem_fast')?.udp),
    tandem_fast_outage_tcp_median_ms: r(g('tandem_fast')?.tcp),
    tandem_fast_detect_median_ms: r(g('tandem_fast')?.detect),
    tandem_fast_vip_median_ms: r(g('tandem_fast')?.vip),
    tandem_fast_first_answer_median_ms: r(g('tandem_fast')?.firstNew),
    tandem_100ms_outage_median_ms: r(g('tandem_100ms')?.outage),
    tandem_1s_outage_median_ms: r(g('tandem_1s')?.outage),
    tandem_failed_after_takeover: sumOf('tandem_', (s) => s.failedAfter),
    tandem_failed_after_failback: sumOf('tandem_', (s) => s.backFailedAfter),
    tandem_fast_failback_outage_median_ms: r(g('tandem_fast')?.backOutage),
    heartbeat306_outage_median_ms: r(g('heartbeat306_100ms')?.outage),
    heartbeat306_1s_outage_median_ms: r(g('heartbeat306_1s')?.outage),
    keepalived_1_outage_median_ms: r(g('keepalived_1')?.outage),
    keepalived_01_outage_median_ms: r(g('keepalived_01')?.outage),
    keepalived_001_outage_median_ms: r(g('keepalived_001')?.outage),
    tandem_fast_vs_heartbeat306_ratio: rHb,
    tandem_fast_vs_keepalived_01_ratio: rKa,
    dual_holder_events: sumOf('tandem_', (s) => s.dual),
    dual_holder_events_heartbeat306: sumOf('heartbeat306_', (s) => s.dual),
    dual_holder_events_keepalived: sumOf('keepalived_', (s) => s.dual),
    errors: [...results.values()].filter((s) => s.error).length,
  };
  if (!process.env.TANDEM_LAB_KEEP) rmSync(root, { recursive: true, force: true });
  log(`RESULT ${JSON.stringify(result)}`);
}

// process.on, not once: execa's signal-exit handler re-raises the signal (and so kills this
// process before its namespaces are deleted) as soon as no other listener is left for it.
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (stopping) return;
    log(`\n${sig}: cleaning up`);
    stopping = true;
    void (current?.close() ?? Promise.resolve()).finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  });
}

try {
  await main();
} catch (e) {
  console.error(`bench failover: ${(e as Error).message}`);
  await current?.close().catch(() => undefined);
  process.exit(1);
}
