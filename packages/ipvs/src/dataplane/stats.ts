/**
 * Counters and the rate estimator. The estimator works as the kernel's (ip_vs_est.c): every two
 * seconds the rate over those two seconds is folded into an average with weight 1/4
 * (avg += (rate - avg) / 4), for connections, packets and bytes in both directions.
 */
import type { Counters } from '../model.ts';

export class CounterSet {
  conns = 0;
  inPkts = 0;
  outPkts = 0;
  inBytes = 0;
  outBytes = 0;
  // Estimator state: values at the last tick and the smoothed rates.
  #last = [0, 0, 0, 0, 0];
  #rate = [0, 0, 0, 0, 0];

  /** One estimator tick; `intervalS` is the time since the previous tick (2 s nominal). */
  estimate(intervalS: number): void {
    const cur = [this.conns, this.inPkts, this.outPkts, this.inBytes, this.outBytes];
    for (let i = 0; i < 5; i++) {
      const rate = (cur[i] - this.#last[i]) / intervalS;
      this.#last[i] = cur[i];
      this.#rate[i] += (rate - this.#rate[i]) / 4;
    }
  }

  zero(): void {
    this.conns = this.inPkts = this.outPkts = this.inBytes = this.outBytes = 0;
    this.#last = [0, 0, 0, 0, 0];
    this.#rate = [0, 0, 0, 0, 0];
  }

  snapshot(): Counters {
    const r = this.#rate.map((x) => Math.round(x));
    return {
      conns: this.conns,
      inPkts: this.inPkts,
      outPkts: this.outPkts,
      inBytes: this.inBytes,
      outBytes: this.outBytes,
      cps: r[0],
      inPps: r[1],
      outPps: r[2],
      inBps: r[3],
      outBps: r[4],
    };
  }
}

/**
 * Connections that ended but, in the kernel, would still sit in the connection table in
 * TIME_WAIT/CLOSE states and count as InActConn: one bucket per second over the hold time, so the
 * hot path only increments and the housekeeping tick expires whole seconds.
 */
export class InactiveRing {
  readonly #buckets: Uint32Array;
  #sec = 0;
  total = 0;

  constructor(holdS: number) {
    this.#buckets = new Uint32Array(Math.max(1, Math.ceil(holdS)));
  }

  add(nowS: number): void {
    this.advance(nowS);
    this.#buckets[this.#sec % this.#buckets.length]++;
    this.total++;
  }

  /** Expires buckets older than the hold time; returns how many connections left. */
  advance(nowS: number): number {
    const s = Math.floor(nowS);
    if (s <= this.#sec) return 0;
    const n = this.#buckets.length;
    let gone = 0;
    const steps = Math.min(s - this.#sec, n);
    for (let k = 1; k <= steps; k++) {
      const i = (this.#sec + k) % n;
      gone += this.#buckets[i];
      this.#buckets[i] = 0;
    }
    this.#sec = s;
    this.total -= gone;
    return gone;
  }
}
