// `npm run bench -- detect [--keepalive K --deadtime D] [--runs N] [--soak S] [--no-real] [--no-soak]`
//
// Failure detection of tandem's heartbeat, for real: two daemons in two network namespaces joined by
// a bridge, talking ucast. For each setting (default 1/5, 100ms/500ms, 20ms/100ms):
//  1. detection: N times, SIGKILL node2 and measure until node1 declares it dead (node1's daemon
//     answers a `wait` control request with the wall time of the decision); node2 is restarted
//     between runs;
//  2. soak: both daemons up for S seconds while a CPU hog and a GC-heavy Node process keep both
//     cores busy; every "node dead" on either side is a false death.
// The real heartbeat 3.0.6 (Debian's package, when installed) is measured the same way at 1/5 and
// 100ms/500ms; its detection is observed by polling `cl_status nodestatus` every 20 ms (an upper
// bound that includes the poll interval and cl_status's own run time).
// The last line is `RESULT {json}`.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Topology } from '../test/lab/netns.ts';
import { parseDuration } from '@tandem/core';
import { TandemNode, RealNode, Load, ADDR, label, realHeartbeatInstalled, type Setting } from './_detect-nodes.ts';

interface Options {
  settings: Setting[];
  runs: number;
  soakS: number;
  real: boolean;
}

function parseOptions(argv: string[]): Options {
  let ka: number | undefined;
  let dt: number | undefined;
  const o: Options = { settings: [], runs: 20, soakS: 600, real: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    const ms = (v: string) => {
      const n = parseDuration(v, { bareUnitMs: 1000 });
      if (n === undefined || n <= 0) throw new Error(`${a}: not a duration: ${v}`);
      return n;
    };
    if (a === '--keepalive') ka = ms(next());
    else if (a === '--deadtime') dt = ms(next());
    else if (a === '--runs') o.runs = Math.max(1, Number(next()));
    else if (a === '--soak') o.soakS = Math.max(0, Number(next()));
    else if (a === '--no-soak') o.soakS = 0;
    else if (a === '--no-real') o.real = false;
    else throw new Error(`unknown option ${a}`);
  }
  if ((ka === undefined) !== (dt === undefined)) throw new Error('--keepalive and --deadtime go together');
  o.settings = ka !== undefined && dt !== undefined
    ? [{ keepaliveMs: ka, deadtimeMs: dt }]
    : [{ keepaliveMs: 1000, deadtimeMs: 5000 }, { keepaliveMs: 100, deadtimeMs: 500 }, { keepaliveMs: 20, deadtimeMs: 100 }];
  return o;
}

function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  // Nearest rank: with 20 samples p99 is the largest, which is what a target "p99 ≤ X" must hold for.
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (s: string) => process.stdout.write(s + '\n');

interface Figures {
  detect: number[];
  falseDeaths: number;
  lateHeartbeats: number;
  soakS: number;
  loopDelayMaxMs?: number;
}

async function measureTandem(topo: Topology, root: string, s: Setting, o: Options): Promise<Figures> {
  const n1 = new TandemNode(topo, 'n1', 'node1', root, s);
  const n2 = new TandemNode(topo, 'n2', 'node2', root, s);
  const detect: number[] = [];
  try {
    n1.start();
    for (let run = 0; run < o.runs; run++) {
      n2.start();
      await n1.waitPeer('node2', 'active');
      // Kill at a random phase of node2's keepalive cycle.
      await sleep(200 + Math.random() * s.keepaliveMs);
      const dead = n1.waitDead('node2', s.deadtimeMs * 4 + 10_000);
      await sleep(20); // the wait is armed before the kill
      const killedAt = Date.now();
      await n2.kill('SIGKILL');
      const at = await dead;
      detect.push(at - killedAt);
      log(`  tandem ${label(s)} run ${run + 1}/${o.runs}: dead after ${at - killedAt} ms`);
    }
    if (o.soakS <= 0) return { detect, falseDeaths: NaN, lateHeartbeats: NaN, soakS: 0 };
    n2.start();
    await n1.waitPeer('node2', 'active');
    await n2.waitPeer('node1', 'active');
    const deadBefore = (await n1.counter('tandem_heartbeat_membership_events_total', 'type="node-dead"')) + 0;
    const lateBefore = await n1.counter('tandem_heartbeat_membership_events_total', 'type="late-heartbeat"');
    const load = new Load();
    load.start();
    log(`  tandem ${label(s)}: soak ${o.soakS} s with a CPU hog and a GC-heavy Node process`);
    let loopMax = 0;
    try {
      const end = Date.now() + o.soakS * 1000;
      // The daemons report the event-loop delay per 10 s window; the first window of the soak still
      // holds node2's start-up (module loading), so it is not counted.
      let windows = 0;
      while (Date.now() < end) {
        await sleep(Math.min(10_000, end - Date.now()));
        if (windows++ === 0) continue;
        for (const n of [n1, n2]) {
          const st = await n.status();
          const m = (st?.eventLoopDelayMs as { max: number } | undefined)?.max ?? 0;
          loopMax = Math.max(loopMax, m);
        }
      }
    } finally {
      await load.stop();
    }
    let falseDeaths = (await n1.counter('tandem_heartbeat_membership_events_total', 'type="node-dead"')) - deadBefore;
    falseDeaths += await n2.counter('tandem_heartbeat_membership_events_total', 'type="node-dead"');
    let late = (await n1.counter('tandem_heartbeat_membership_events_total', 'type="late-heartbeat"')) - lateBefore;
    late += await n2.counter('tandem_heartbeat_membership_events_total', 'type="late-heartbeat"');
    log(`  tandem ${label(s)}: ${falseDeaths} false death(s), ${late} late heartbeat(s), worst event-loop delay ${loopMax} ms`);
    return { detect, falseDeaths, lateHeartbeats: late, soakS: o.soakS, loopDelayMaxMs: loopMax };
  } finally {
    await n2.kill('SIGTERM');
    await n1.kill('SIGTERM');
  }
}

async function measureReal(topo: Topology, root: string, s: Setting, o: Options): Promise<Figures> {
  const n1 = new RealNode(topo, 'r1', 'node1', root, s);
  const n2 = new RealNode(topo, 'r2', 'node2', root, s);
  realNodes.add(n1);
  realNodes.add(n2);
  const detect: number[] = [];
  try {
    await n1.setup();
    await n2.setup();
    await n1.start();
    for (let run = 0; run < o.runs; run++) {
      await n2.start();
      await n1.waitPeer('node2', 'active');
      // heartbeat advertises dt = deadtime + 2 s for its first 5 s (reference §5.2): kill after that,
      // as the reference measured, or the peer rightly waits the longer dead time.
      await sleep(5500 + Math.random() * s.keepaliveMs);
      const killedAt = Date.now();
      await n2.killAll('SIGKILL');
      let at = 0;
      const end = killedAt + s.deadtimeMs * 4 + 15_000;
      while (Date.now() < end) {
        if ((await n1.nodestatus('node2')) === 'dead') {
          at = Date.now();
          break;
        }
        await sleep(20);
      }
      if (!at) throw new Error('heartbeat 3.0.6 never declared node2 dead');
      detect.push(at - killedAt);
      log(`  heartbeat 3.0.6 ${label(s)} run ${run + 1}/${o.runs}: dead after ${at - killedAt} ms (polled)`);
      await sleep(300);
    }
    if (o.soakS <= 0) return { detect, falseDeaths: NaN, lateHeartbeats: NaN, soakS: 0 };
    await n2.start();
    await n1.waitPeer('node2', 'active');
    await n2.waitPeer('node1', 'active');
    const deadRe = /node node[12]: is dead/;
    const lateRe = /Late heartbeat/;
    const dead0 = n1.countInLog(deadRe) + n2.countInLog(deadRe);
    const late0 = n1.countInLog(lateRe) + n2.countInLog(lateRe);
    const load = new Load();
    load.start();
    log(`  heartbeat 3.0.6 ${label(s)}: soak ${o.soakS} s under the same load`);
    try {
      await sleep(o.soakS * 1000);
    } finally {
      await load.stop();
    }
    await sleep(1000);
    const falseDeaths = n1.countInLog(deadRe) + n2.countInLog(deadRe) - dead0;
    const late = n1.countInLog(lateRe) + n2.countInLog(lateRe) - late0;
    log(`  heartbeat 3.0.6 ${label(s)}: ${falseDeaths} false death(s), ${late} late heartbeat(s)`);
    return { detect, falseDeaths, lateHeartbeats: late, soakS: o.soakS };
  } finally {
    await n2.close();
    await n1.close();
    realNodes.delete(n1);
    realNodes.delete(n2);
  }
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  const root = mkdtempSync(join(tmpdir(), 'bench-detect-'));
  const topo = new Topology(`d${Math.floor(Math.random() * 1000)}`);
  // One cleanup, awaited by every way out (normal end, error, signal): the real heartbeat's processes
  // and holders, every namespace, the temporary directory.
  let cleaning: Promise<void> | undefined;
  cleanup = () => (cleaning ??= (async () => {
    for (const n of realNodes) await n.close().catch(() => undefined);
    await topo.close();
    rmSync(root, { recursive: true, force: true });
  })());
  const onSignal = () => void cleanup().finally(() => process.exit(130));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const result: Record<string, number | string> = {};
  const real = o.real && realHeartbeatInstalled();
  try {
    await topo.build([
      { name: 'n1', addresses: [`${ADDR.node1}/24`] }, { name: 'n2', addresses: [`${ADDR.node2}/24`] },
      { name: 'r1', addresses: [`${ADDR.node1}/24`] }, { name: 'r2', addresses: [`${ADDR.node2}/24`] },
    ]);
    // The real pair reuses the tandem pair's addresses on the same bridge: never both at once.
    await topo.setLink('r1', false);
    await topo.setLink('r2', false);
    log(`bench detect: ${o.settings.map(label).join(', ')}; ${o.runs} kills each; soak ${o.soakS} s; heartbeat 3.0.6 ${real ? 'included' : o.real ? 'not installed' : 'skipped'}`);
    let fastest: { s: Setting; f: Figures } | undefined;
    for (const s of o.settings) {
      log(`tandem ${label(s)} (keepalive ${s.keepaliveMs} ms, deadtime ${s.deadtimeMs} ms):`);
      const f = await measureTandem(topo, root, s, o);
      const k = `tandem_${label(s)}`;
      result[`${k}_detect_p50_ms`] = percentile(f.detect, 50);
      result[`${k}_detect_p99_ms`] = percentile(f.detect, 99);
      result[`${k}_detect_max_ms`] = Math.max(...f.detect);
      result[`${k}_detect_target_ms`] = s.deadtimeMs + s.keepaliveMs;
      result[`${k}_false_deaths`] = f.falseDeaths;
      result[`${k}_late_heartbeats`] = f.lateHeartbeats;
      if (f.loopDelayMaxMs !== undefined) result[`${k}_event_loop_delay_max_ms`] = f.loopDelayMaxMs;
      log(`  => p50 ${result[`${k}_detect_p50_ms`]} ms, p99 ${result[`${k}_detect_p99_ms`]} ms (target ≤ ${s.deadtimeMs + s.keepaliveMs} ms), false deaths ${f.falseDeaths}`);
      if (!fastest || s.deadtimeMs < fastest.s.deadtimeMs) fastest = { s, f };
    }
    if (real) {
      await topo.setLink('n1', false);
      await topo.setLink('n2', false);
      await topo.setLink('r1', true);
      await topo.setLink('r2', true);
      // heartbeat 3.0.6 is not stable below 100ms/500ms here (reference §7c): measure it where it survives.
      const realSettings = o.settings.filter((s) => s.deadtimeMs >= 500);
      let realFastest: { s: Setting; f: Figures } | undefined;
      for (const s of realSettings) {
        log(`heartbeat 3.0.6 ${label(s)}:`);
        const f = await measureReal(topo, root, s, o);
        const k = `heartbeat306_${label(s)}`;
        result[`${k}_detect_p50_ms`] = percentile(f.detect, 50);
        result[`${k}_detect_p99_ms`] = percentile(f.detect, 99);
        result[`${k}_false_deaths`] = f.falseDeaths;
        result[`${k}_late_heartbeats`] = f.lateHeartbeats;
        log(`  => p50 ${result[`${k}_detect_p50_ms`]} ms, p99 ${result[`${k}_detect_p99_ms`]} ms, false deaths ${f.falseDeaths}`);
        if (!realFastest || s.deadtimeMs < realFastest.s.deadtimeMs) realFastest = { s, f };
      }
      if (realFastest) {
        result.heartbeat306_setting = label(realFastest.s);
        result.heartbeat306_detect_p50_ms = percentile(realFastest.f.detect, 50);
        result.heartbeat306_detect_p99_ms = percentile(realFastest.f.detect, 99);
        result.heartbeat306_false_deaths = realFastest.f.falseDeaths;
      }
    }
    if (fastest) {
      result.setting = label(fastest.s);
      result.detect_p50_ms = percentile(fastest.f.detect, 50);
      result.detect_p99_ms = percentile(fastest.f.detect, 99);
      result.false_deaths = fastest.f.falseDeaths;
    }
    result.runs = o.runs;
    result.soak_s = o.soakS;
  } finally {
    await cleanup();
  }
  // JSON has no NaN: a figure that was not measured (no soak) is left out.
  const clean = Object.fromEntries(Object.entries(result).filter(([, v]) => typeof v === 'string' || Number.isFinite(v)));
  log(`RESULT ${JSON.stringify(clean)}`);
}

let cleanup: () => Promise<void> = async () => {};
/** Real heartbeat nodes alive now, for the cleanup. */
const realNodes = new Set<RealNode>();

main().catch(async (err) => {
  process.stderr.write(`bench detect: ${(err as Error).stack ?? err}\n`);
  await cleanup();
  process.exit(1);
});
