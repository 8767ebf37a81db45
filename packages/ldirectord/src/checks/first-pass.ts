import { Worker } from 'node:worker_threads';
import type { CheckSpec, Checker, Verdict } from './types.ts';
import { FIRST_PASS_WORKER, type FromWorker, type ToWorker } from './first-pass-worker.ts';

/**
 * A second thread for the first check pass. When thousands of reals are new at once (a start, a
 * reload that adds a farm) every one of them is due now, and a fresh TCP exchange costs about as
 * much kernel time (the loopback or LAN handshake runs in the caller's context) as JavaScript
 * time: one thread checks 10,000 reals in ~1.2 s at best here, while the second core idles. The
 * scheduler hands part of those first checks to this pool; the worker runs the same runCheck and
 * sends verdicts back, which the scheduler settles exactly as its own. Once every real has had
 * its first check the worker is ended: steady-state checks are spread over the interval and one
 * thread carries them easily, so the worker's memory (~15 MB) is only held during the burst.
 *
 * If the worker cannot start or dies, the checks it held are run again on this thread with
 * `fallback`, so a lost worker costs time, never a false verdict.
 */
interface Job {
  spec: CheckSpec;
  /** The scheduler's signal for this check: a check run again here after a lost worker honours it. */
  signal: AbortSignal;
  settle: (v: Verdict) => void;
}

export class FirstPassPool {
  #worker: Worker | undefined;
  #ready = false;
  #closed = false;
  #jobs = new Map<number, Job>();
  #nextTicket = 1;
  #outbox: [number, CheckSpec][] = [];
  #flushQueued = false;
  readonly #fallback: Checker;
  readonly #onReady: () => void;

  /** `workerUrl`: the worker's module (tests give one that dies, to see its checks run here). */
  constructor(opts: { fallback: Checker; onReady: () => void; workerUrl?: URL }) {
    this.#fallback = opts.fallback;
    this.#onReady = opts.onReady;
    let w: Worker;
    try {
      w = new Worker(opts.workerUrl ?? new URL('./first-pass-worker.ts', import.meta.url), { workerData: { role: FIRST_PASS_WORKER }, name: 'ldirectord-first-pass' });
    } catch {
      this.#closed = true;
      return;
    }
    this.#worker = w;
    // The pool never keeps the daemon alive: the scheduler closes it, and an exit takes it along.
    w.unref();
    w.on('message', (m: FromWorker) => this.#onMessage(m));
    w.on('error', () => this.#lost());
    w.on('exit', () => this.#lost());
  }

  /** Whether checks can be submitted now. */
  get ready(): boolean {
    return this.#ready && !this.#closed;
  }

  /** Checks submitted and not yet settled. */
  get inflight(): number {
    return this.#jobs.size;
  }

  /** Runs `spec` in the worker; `settle` is called once with its verdict (on this thread). */
  submit(spec: CheckSpec, signal: AbortSignal, settle: (v: Verdict) => void): void {
    const ticket = this.#nextTicket++;
    this.#jobs.set(ticket, { spec, signal, settle });
    this.#outbox.push([ticket, spec]);
    if (!this.#flushQueued) {
      this.#flushQueued = true;
      // One message for everything submitted in this synchronous run of the scheduler.
      queueMicrotask(() => this.#flush());
    }
  }

  /**
   * Ends the worker. With `abort`, checks still in flight settle as aborted (the scheduler is
   * stopping and drops them); without, there must be none (the first pass is over).
   */
  close(abort = false): void {
    if (this.#closed) return;
    this.#closed = true;
    const jobs = [...this.#jobs.values()];
    this.#jobs.clear();
    this.#outbox = [];
    void this.#worker?.terminate();
    for (const j of jobs) {
      if (abort) j.settle({ up: false, reason: 'check aborted', durationMs: 0 });
      else this.#rerun(j);
    }
  }

  #flush(): void {
    this.#flushQueued = false;
    if (this.#closed || this.#outbox.length === 0) return;
    const items = this.#outbox;
    this.#outbox = [];
    this.#worker!.postMessage({ t: 'run', items } satisfies ToWorker);
  }

  #onMessage(m: FromWorker): void {
    if (m.t === 'ready') {
      if (this.#closed) return;
      this.#ready = true;
      this.#onReady();
      return;
    }
    for (const [ticket, up, reason, durationMs] of m.items) {
      const j = this.#jobs.get(ticket);
      if (!j) continue;
      this.#jobs.delete(ticket);
      j.settle({ up, reason, durationMs });
    }
  }

  #lost(): void {
    if (this.#closed) return;
    this.close(false);
  }

  #rerun(j: Job): void {
    let p: Promise<Verdict>;
    try {
      p = this.#fallback(j.spec, j.signal);
    } catch (err) {
      p = Promise.reject(err);
    }
    p.then(j.settle, (err: unknown) =>
      j.settle({ up: false, reason: `check failed: ${(err as Error)?.message ?? String(err)}`, durationMs: 0 }),
    );
  }
}
