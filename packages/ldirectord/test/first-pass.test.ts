// The first-pass worker thread (checks/first-pass.ts): many new reals at once share their first
// checks with a worker, whose verdicts are the same as the main thread's; the worker is ended after
// the first pass; a stop during the pass drops what is in flight; a worker that dies loses nothing.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { CheckScheduler, runCheck, type ScheduledCheck, type Verdict } from '../src/checks/index.ts';
import { FirstPassPool } from '../src/checks/first-pass.ts';
import { waitFor } from '../../../test/lab/ports.ts';
import { spec } from './checks-support.ts';

describe('checks: first pass shared with a worker thread', function () {
  this.timeout(30_000);
  let server: http.Server;
  let port: number;
  before(async () => {
    // /ok/N answers the test page, /bad/N another one (a wrong receive).
    server = http.createServer((req, res) => {
      res.setHeader('connection', 'close');
      res.end(req.url?.startsWith('/ok/') ? 'Test Page' : 'Something else');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  // Distinct requests make distinct check identities: one real each.
  const checks = (n: number, bad: (i: number) => boolean): ScheduledCheck[] =>
    Array.from({ length: n }, (_, i) => ({
      id: `r${i}`,
      spec: spec({ service: 'http', port, request: `/${bad(i) ? 'bad' : 'ok'}/${i}`, receive: 'Test Page', negotiateTimeoutMs: 5000 }),
      intervalMs: 60_000,
    }));

  it('runs part of the first pass in the worker with the same verdicts, then ends the worker', async () => {
    const verdicts = new Map<string, Verdict>();
    const s = new CheckScheduler({ onVerdict: (id, v) => verdicts.set(id, v), concurrency: 16, offloadMin: 50 });
    const n = 300;
    s.update(checks(n, (i) => i % 10 === 0));
    assert.equal(s.stats().firstPassWorker, 'booting');
    // Let the worker come up before the pass, so that it takes a share whatever the machine's speed.
    await waitFor('the first-pass worker', () => s.stats().firstPassWorker === 'ready', 20_000, 10);
    s.start();
    await waitFor('every first verdict', () => verdicts.size === n, 20_000, 10);
    const st = s.stats();
    assert.ok(st.offloaded > 0 && st.offloaded < n, `offloaded ${st.offloaded} of ${n}`);
    for (let i = 0; i < n; i++) {
      const v = verdicts.get(`r${i}`)!;
      if (i % 10 === 0) {
        assert.equal(v.up, false, `r${i}`);
        assert.match(v.reason, /receive/, `r${i}: ${v.reason}`);
      } else assert.deepEqual([v.up, v.reason], [true, 'HTTP 200 OK, receive matched'], `r${i}`);
    }
    assert.equal(st.firstPassWorker, 'none', 'the worker ends after the first pass');
    await s.stop();
  });

  it('keeps every check on this thread below offloadMin or with a custom checker', async () => {
    const few = new CheckScheduler({ onVerdict: () => {}, offloadMin: 50 });
    few.update(checks(49, () => false));
    assert.equal(few.stats().firstPassWorker, 'none');
    const custom = new CheckScheduler({ onVerdict: () => {}, offloadMin: 50, check: (sp, sig) => runCheck(sp, sig) });
    custom.update(checks(100, () => false));
    assert.equal(custom.stats().firstPassWorker, 'none');
  });

  it('a stop during the first pass drops the worker and its checks; no verdict comes after it', async () => {
    let after = 0;
    let stopped = false;
    const s = new CheckScheduler({
      onVerdict: () => {
        if (stopped) after++;
      },
      concurrency: 8,
      offloadMin: 50,
    });
    s.update(checks(400, () => false));
    await waitFor('the first-pass worker', () => s.stats().firstPassWorker === 'ready', 20_000, 10);
    s.start();
    await waitFor('some checks in the worker', () => s.stats().offloaded > 0, 20_000, 5);
    stopped = true;
    await s.stop();
    const st = s.stats();
    assert.equal(st.running, 0);
    assert.equal(st.firstPassWorker, 'none');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(after, 0);
  });

  it('a worker that dies hands its checks back: they run on this thread, none is lost or called down', async () => {
    const settled: Verdict[] = [];
    let ready = false;
    const pool = new FirstPassPool({ fallback: runCheck, onReady: () => (ready = true), workerUrl: new URL('./fixtures/dying-worker.ts', import.meta.url) });
    await waitFor('the dying worker', () => ready, 20_000, 10);
    for (let i = 0; i < 5; i++) pool.submit(spec({ service: 'http', port, request: `/ok/${i}`, receive: 'Test Page' }), new AbortController().signal, (v) => settled.push(v));
    await waitFor('the five checks', () => settled.length === 5, 20_000, 10);
    assert.deepEqual(
      settled.map((v) => v.up),
      [true, true, true, true, true],
    );
    assert.equal(pool.ready, false);
  });
});
