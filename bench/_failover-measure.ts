/**
 * bench/failover measuring side: the client probes' results (JSON lines of test/lab/probe.ts
 * --wall), a poller of who holds the VIP (`ip addr` in both director namespaces), and the pure
 * analysis of one switch (a takeover after a host death, or a failback) from those records.
 */
import { execa } from 'execa';
import type { Spawned } from '../test/lab/netns.ts';

export interface ProbeResult {
  /** Send time, ms since the epoch. */
  w: number;
  ok: boolean;
  /** Who answered (director node name, or real server behind the balancer). */
  by?: string;
  /** Round-trip time, ms (answers only). */
  ms?: number;
  err?: string;
}

/** Collects a probe's JSON lines as they arrive. */
export class ProbeLog {
  readonly results: ProbeResult[] = [];
  readonly label: string;
  #buf = '';

  constructor(label: string, s: Spawned) {
    this.label = label;
    s.proc.stdout?.setEncoding('utf8');
    s.proc.stdout?.on('data', (c: string) => {
      this.#buf += c;
      let nl: number;
      while ((nl = this.#buf.indexOf('\n')) >= 0) {
        const line = this.#buf.slice(0, nl);
        this.#buf = this.#buf.slice(nl + 1);
        try {
          const o = JSON.parse(line) as ProbeResult;
          if (typeof o.w === 'number') this.results.push(o);
        } catch { /* not a result line */ }
      }
    });
    s.proc.stderr?.resume();
  }

  /** Results sent at or after `fromW`. */
  since(fromW: number): ProbeResult[] {
    const out: ProbeResult[] = [];
    for (let i = this.results.length - 1; i >= 0 && this.results[i]!.w >= fromW - 2000; i--) if (this.results[i]!.w >= fromW) out.push(this.results[i]!);
    return out.reverse();
  }
}

export interface HolderSample {
  w: number;
  holders: string[];
}

/**
 * Polls `ip -o -4 addr show dev eth0` in every director namespace, back to back (`ip -n` enters the
 * namespace itself: one fork per look), and keeps who held the VIP at each moment.
 */
export class HolderPoller {
  readonly samples: HolderSample[] = [];
  readonly #dirs: { name: string; ns: string }[];
  readonly #vip: string;
  readonly #everyMs: number;
  #stop = false;
  #loop: Promise<void> | undefined;

  constructor(dirs: { name: string; ns: string }[], vip: string, everyMs = 50) {
    this.#dirs = dirs;
    this.#vip = vip;
    this.#everyMs = everyMs;
  }

  start(): void {
    this.#loop = (async () => {
      while (!this.#stop) {
        const w = Date.now();
        const looks = await Promise.all(this.#dirs.map(async (d) => {
          const r = await execa('ip', ['-n', d.ns, '-o', '-4', 'addr', 'show', 'dev', 'eth0'], { reject: false, timeout: 5000 });
          return String(r.stdout).includes(` ${this.#vip}/`) ? d.name : undefined;
        }));
        this.samples.push({ w, holders: looks.filter((x): x is string => x !== undefined) });
        if (this.samples.length > 200_000) this.samples.splice(0, 100_000);
        const wait = this.#everyMs - (Date.now() - w);
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
    })();
  }

  async stop(): Promise<void> {
    this.#stop = true;
    await this.#loop;
  }

  latest(): HolderSample | undefined {
    return this.samples[this.samples.length - 1];
  }
}

export interface SwitchFigures {
  /** Event (kill or restart) → first answer of the new holder on UDP, ms. */
  firstNewMs: number;
  /** Event → the VIP seen on the new holder by the poller, ms. */
  vipMs: number;
  /**
   * Client-visible outage per protocol, ms: the longest stretch of send times during which a
   * request got no answer (from the first unanswered request to the next answered one). Counted
   * on send times, so a stall of the client itself (a busy machine) is not mistaken for one.
   */
  outageUdpMs: number;
  outageTcpMs: number;
  /** Longest silence between consecutive answers' arrivals (includes client stalls), ms. */
  silenceUdpMs: number;
  silenceTcpMs: number;
  /** Unanswered probes from the event to the end of the observation. */
  lostUdp: number;
  lostTcp: number;
  /** Unanswered probes sent after the new holder's first UDP answer (it had taken over). */
  failedAfterTakeover: number;
  /** Episodes of both directors holding the VIP after the switch settled. */
  dualAfterSettle: number;
  /** The same before it settled (between the event and settle), for information. */
  dualBeforeSettle: number;
}

function longestSilence(rs: ProbeResult[], fromArrival: number, toArrival: number): number {
  const arrivals = rs.filter((r) => r.ok && r.ms !== undefined).map((r) => r.w + r.ms!).filter((a) => a >= fromArrival && a <= toArrival).sort((a, b) => a - b);
  if (arrivals.length < 2) return toArrival - fromArrival;
  let gap = 0;
  for (let i = 1; i < arrivals.length; i++) gap = Math.max(gap, arrivals[i]! - arrivals[i - 1]!);
  return gap;
}

function longestFailRun(rs: ProbeResult[], from: number, to: number): number {
  const sent = rs.filter((r) => r.w >= from && r.w <= to).sort((a, b) => a.w - b.w);
  let worst = 0;
  let runStart: number | undefined;
  for (const r of sent) {
    if (!r.ok) runStart ??= r.w;
    else if (runStart !== undefined) {
      worst = Math.max(worst, r.w - runStart);
      runStart = undefined;
    }
  }
  if (runStart !== undefined) worst = Math.max(worst, to - runStart);
  return worst;
}

function episodes(samples: HolderSample[], from: number, to: number): number {
  let n = 0;
  let inDual = false;
  for (const s of samples) {
    if (s.w < from || s.w > to) continue;
    const dual = s.holders.length > 1;
    if (dual && !inDual) n++;
    inDual = dual;
  }
  return n;
}

/**
 * The figures of one switch. `eventW`: wall time of the kill or restart; `newHolder`: the node
 * name the new holder answers with; `endW`: end of the observation; `settleMs`: after the first
 * answer of the new holder, how long a second holder may still linger before it counts.
 */
export function analyseSwitch(o: {
  udp: ProbeResult[];
  tcp: ProbeResult[];
  holders: HolderSample[];
  eventW: number;
  newHolder: string;
  endW: number;
  settleMs: number;
  /** A director left out of the dual-holder count: the dead host, whose link is cut. */
  ignoreHolder?: string;
}): SwitchFigures {
  const first = o.udp.find((r) => r.w >= o.eventW && r.ok && r.by === o.newHolder);
  const takeoverW = first ? first.w : Infinity;
  const takeoverArrival = first ? first.w + (first.ms ?? 0) : o.endW;
  const vip = o.holders.find((s) => s.w >= o.eventW && s.holders.includes(o.newHolder));
  // The silence is looked for from a second before the event (the client was being served then)
  // to a second after the new holder's first answer (a late protocol, TCP, shows up there).
  const from = o.eventW - 1000;
  const to = Math.min(o.endW, takeoverArrival + 1000);
  const lost = (rs: ProbeResult[]) => rs.filter((r) => r.w >= o.eventW && r.w <= o.endW && !r.ok).length;
  const settleW = takeoverArrival + o.settleMs;
  const holders = o.ignoreHolder === undefined ? o.holders : o.holders.map((s) => ({ w: s.w, holders: s.holders.filter((h) => h !== o.ignoreHolder) }));
  return {
    firstNewMs: first ? takeoverArrival - o.eventW : NaN,
    vipMs: vip ? vip.w - o.eventW : NaN,
    outageUdpMs: longestFailRun(o.udp, from, to),
    outageTcpMs: longestFailRun(o.tcp, from, to),
    silenceUdpMs: longestSilence(o.udp, from, to),
    silenceTcpMs: longestSilence(o.tcp, from, to),
    lostUdp: lost(o.udp),
    lostTcp: lost(o.tcp),
    failedAfterTakeover: [...o.udp, ...o.tcp].filter((r) => r.w >= takeoverW && r.w <= o.endW && !r.ok).length,
    dualAfterSettle: episodes(holders, settleW, o.endW),
    dualBeforeSettle: episodes(holders, o.eventW, settleW),
  };
}

export function median(xs: number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function range(xs: number[]): string {
  const s = xs.filter((x) => Number.isFinite(x));
  if (s.length === 0) return '–';
  return `${Math.round(Math.min(...s))}..${Math.round(Math.max(...s))}`;
}
