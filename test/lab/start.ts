/**
 * `npm start`: the main job on the embedded default. As root it builds seed 001's cluster in network
 * namespaces (test/lab/lab.ts) and shows a live view: which director is active, each real server's
 * state and weight, requests served per real server, the last events. Keys kill and restore a
 * director or a real server. Everything is torn down on exit (q, Ctrl-C, SIGTERM). Without the
 * rights to make namespaces it says so and runs the single-director part on loopback (loopback.ts).
 *
 *   npm start [-- --seconds N]    (N: leave by itself after N seconds, for scripted runs)
 *   TANDEM_LAB=loopback npm start   (the loopback part even where namespaces can be made)
 */
import { controlRequest } from '@tandem/core';
import { SeedLab, DIRECTORS, REALS, VIP, canMakeNamespaces } from './lab.ts';
import { runLoopbackDemo } from './loopback.ts';

const secondsArg = process.argv.indexOf('--seconds');
const autoExitS = secondsArg > 0 ? Number(process.argv[secondsArg + 1]) : undefined;
const interactive = process.stdin.isTTY && autoExitS === undefined;

if (process.env.TANDEM_LAB === 'loopback' || !(await canMakeNamespaces())) {
  console.log(process.env.TANDEM_LAB === 'loopback'
    ? 'tandem: TANDEM_LAB=loopback: running the single-director part on loopback.'
    : 'tandem: cannot create network namespaces here (needs root and iproute2): running the single-director part on loopback instead.');
  await runLoopbackDemo({ seconds: autoExitS, interactive, port: Number(process.env.TANDEM_LAB_PORT ?? 8080) });
  process.exit(0);
}

const lab = new SeedLab();
let exiting = false;
async function shutdown(code: number): Promise<never> {
  if (!exiting) {
    exiting = true;
    if (process.stdin.isTTY) process.stdin.setRawMode(false);
    process.stdout.write('\ntearing the lab down...\n');
    await lab.close();
    process.stdout.write('lab removed.\n');
  }
  process.exit(code);
}
process.on('SIGINT', () => void shutdown(130));
process.on('SIGTERM', () => void shutdown(143));

console.log(`tandem lab: building seed 001 in network namespaces (logs in ${lab.dir})...`);
try {
  await lab.build();
} catch (err) {
  console.error(`lab failed to start: ${(err as Error).message}`);
  await shutdown(1);
}

const served = new Map<string, number>();
let okCount = 0;
let failCount = 0;
const recent: boolean[] = [];
const probe = lab.probe({ intervalMs: 50 });
let buf = '';
probe.proc.stdout?.setEncoding('utf8');
probe.proc.stdout?.on('data', (c: string) => {
  buf += c;
  let nl: number;
  while ((nl = buf.indexOf('\n')) >= 0) {
    const line = buf.slice(0, nl);
    buf = buf.slice(nl + 1);
    try {
      const r = JSON.parse(line) as { ok: boolean; by?: string };
      if (r.ok) { okCount++; served.set(r.by ?? '?', (served.get(r.by ?? '?') ?? 0) + 1); } else failCount++;
      recent.push(r.ok);
      if (recent.length > 200) recent.shift();
    } catch { /* partial line */ }
  }
});

interface HbStatus { resources?: string; localState?: string; nodes?: { name: string; state: string }[] }
type HbReply = { ok: boolean; status?: HbStatus };
interface IpvsList { table?: { services: { address: string; port: number; reals: { address: string; port: number; weight: number }[] }[] }; stats?: [string, { reals: [string, { activeConns: number; inactiveConns: number; conns: number }][] }][] }

async function snapshot() {
  const directors = [];
  for (const d of DIRECTORS) {
    const hbr = (await controlRequest(lab.hbSocket(d.host), { cmd: 'status' }, 800).catch(() => undefined)) as HbReply | undefined;
    const hb = hbr?.ok ? hbr.status : undefined;
    const ipvs = (await controlRequest(lab.ipvsdSocket(d.host), { cmd: 'list' }, 800).catch(() => undefined)) as (IpvsList & { ok: boolean }) | undefined;
    directors.push({ ...d, hb, ipvs: ipvs?.ok ? ipvs : undefined });
  }
  const holders = await lab.vipHolders();
  return { directors, holders };
}

function render(s: Awaited<ReturnType<typeof snapshot>>): string {
  const L: string[] = [];
  const b = (t: string) => `\x1b[1m${t}\x1b[0m`;
  L.push(b(`tandem lab — seed 001, VIP ${VIP}:80`) + `   ${new Date().toLocaleTimeString()}   (${lab.dir})`);
  L.push('');
  L.push(b('Directors'));
  for (const d of s.directors) {
    const alive = lab.directorRunning(d.host);
    const vip = s.holders.includes(d.node) ? '\x1b[32mholds VIP\x1b[0m' : 'no VIP';
    const state = alive ? (d.hb?.localState ?? 'starting') : '\x1b[31mdown\x1b[0m';
    L.push(`  ${d.node.padEnd(13)} ${d.address.padEnd(15)} heartbeat: ${String(state).padEnd(8)} resources: ${String(d.hb?.resources ?? '-').padEnd(10)} ${vip}`);
  }
  const active = s.directors.find((d) => s.holders.includes(d.node));
  L.push('');
  L.push(b(`Real servers`) + (active ? ` (table of ${active.node})` : ' (no active director)'));
  const svc = active?.ipvs?.table?.services.find((x) => x.address === VIP && x.port === 80);
  const stats = new Map(active?.ipvs?.stats?.find(([id]) => id.includes(`${VIP}:80`))?.[1].reals ?? []);
  for (const r of REALS) {
    const real = svc?.reals.find((x) => x.address === r.address);
    const st = stats.get(`${r.address}:80`);
    const web = lab.realRunning(r.host) ? 'web up  ' : '\x1b[31mweb down\x1b[0m';
    const w = real ? `weight ${real.weight}` : 'not in table';
    L.push(`  ${r.name.padEnd(5)} ${`${r.address}:80`.padEnd(20)} ${web}  ${w.padEnd(13)} active ${String(st?.activeConns ?? 0).padEnd(4)} conns ${String(st?.conns ?? 0).padEnd(7)} answered client: ${served.get(r.name) ?? 0}`);
  }
  const fb = svc?.reals.find((x) => x.address === '127.0.0.1');
  if (fb) L.push(`  fallback 127.0.0.1:80 in the table (weight ${fb.weight}); answered client: ${[...served].filter(([k]) => k.startsWith('fallback')).reduce((n, [, v]) => n + v, 0)}`);
  L.push('');
  const okRecent = recent.filter(Boolean).length;
  L.push(b('Client') + ` one request every 50 ms: ${okCount} answered, ${failCount} failed; last ${recent.length}: ${recent.length ? Math.round((100 * okRecent) / recent.length) : 0}% ok`);
  L.push('');
  L.push(b('Last events'));
  for (const e of lab.events.slice(-8)) L.push(`  ${e.at.toLocaleTimeString()} ${e.text}`);
  L.push('');
  L.push('keys: 1/2 kill or restore loadbalancer/backup · a/b/c kill or restore rs1/rs2/rs3 · m cut/restore mcast');
  L.push('      s hb_standby on the active director · q quit');
  return L.join('\n');
}

let busy = false;
async function onKey(k: string) {
  if (busy) return;
  busy = true;
  try {
    if (k === 'q' || k === '\u0003') await shutdown(0);
    const di = ['1', '2'].indexOf(k);
    if (di >= 0) {
      const d = DIRECTORS[di]!;
      if (lab.directorRunning(d.host)) await lab.killDirector(d.host);
      else await lab.restoreDirector(d.host);
    }
    const ri = ['a', 'b', 'c'].indexOf(k);
    if (ri >= 0) {
      const r = REALS[ri]!;
      if (lab.realRunning(r.host)) await lab.killReal(r.host);
      else await lab.startReal(r.host);
    }
    if (k === 'm') {
      mcastCut = !mcastCut;
      await lab.cutMcast('lb1', mcastCut);
    }
    if (k === 's') {
      const holders = await lab.vipHolders();
      const active = DIRECTORS.find((d) => holders.includes(d.node));
      if (active) {
        const r = await lab.tool(active.host, 'hb_standby', []);
        lab.log(`${active.node}: hb_standby → exit ${r.exitCode} ${String(r.stdout).trim()}`);
      }
    }
  } catch (err) {
    lab.log(`error: ${(err as Error).message}`);
  } finally {
    busy = false;
  }
}
let mcastCut = false;

if (interactive) {
  process.stdin.setRawMode(true);
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (k: string) => void onKey(k));
}
const started = Date.now();
for (;;) {
  const s = await snapshot();
  const screen = render(s);
  process.stdout.write(interactive ? `\x1b[2J\x1b[H${screen}\n` : `${screen}\n\n`);
  if (autoExitS !== undefined && Date.now() - started > autoExitS * 1000) await shutdown(0);
  await new Promise((r) => setTimeout(r, interactive ? 500 : 2000));
}
