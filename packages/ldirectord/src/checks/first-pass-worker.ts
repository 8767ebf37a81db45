/**
 * The worker side of the first-pass pool (first-pass.ts): runs the checks it is sent with the same
 * runCheck the scheduler uses, and posts the verdicts back in one message per event-loop turn.
 * Imported on the main thread only to fill the compile cache; it does nothing there.
 */
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { runCheck } from './run.ts';
import type { CheckSpec, Verdict } from './types.ts';

/** main → worker: checks to run ([ticket, spec] pairs), or abort everything in flight. */
export type ToWorker = { t: 'run'; items: [number, CheckSpec][] } | { t: 'abort' };
/** worker → main: ready once loaded; verdicts as [ticket, up, reason, durationMs] tuples. */
export type FromWorker = { t: 'ready' } | { t: 'done'; items: [number, boolean, string, number][] };

export const FIRST_PASS_WORKER = 'tandem-ld-first-pass';

function serve(port: NonNullable<typeof parentPort>): void {
  // One controller per check (as the scheduler does): listeners on one shared signal are scanned on every add.
  const inflight = new Set<AbortController>();
  let out: [number, boolean, string, number][] = [];
  let flushing = false;
  const flush = (): void => {
    flushing = false;
    const items = out;
    out = [];
    port.postMessage({ t: 'done', items } satisfies FromWorker);
  };
  const done = (ctl: AbortController, ticket: number, v: Verdict): void => {
    inflight.delete(ctl);
    out.push([ticket, v.up, v.reason, v.durationMs]);
    if (!flushing) {
      flushing = true;
      setImmediate(flush);
    }
  };
  port.on('message', (m: ToWorker) => {
    if (m.t === 'abort') {
      for (const c of inflight) c.abort();
      return;
    }
    for (const [ticket, spec] of m.items) {
      const ctl = new AbortController();
      inflight.add(ctl);
      runCheck(spec, ctl.signal).then(
        (v) => done(ctl, ticket, v),
        (err: unknown) => done(ctl, ticket, { up: false, reason: `check failed: ${(err as Error)?.message ?? String(err)}`, durationMs: 0 }),
      );
    }
  });
  port.postMessage({ t: 'ready' } satisfies FromWorker);
}

if (!isMainThread && parentPort && (workerData as { role?: string } | undefined)?.role === FIRST_PASS_WORKER) serve(parentPort);
