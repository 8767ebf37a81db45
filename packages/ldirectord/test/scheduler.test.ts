import assert from 'node:assert/strict';
import { ManualClock } from '@tandem/core';
import { CheckScheduler, checkIdentity, CombinedState, type ScheduledCheck } from '../src/checks/index.ts';
import type { CheckSpec, Checker, Verdict } from '../src/checks/types.ts';
import { spec } from './checks-support.ts';

/** A fake checker on virtual time: each check takes `durationMs` of ManualClock time. */
function fakeChecker(clock: ManualClock, durationMs: (s: CheckSpec) => number, result: (s: CheckSpec) => boolean = () => true) {
  const starts: { host: string; checktype: string; at: number }[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const run: Checker = (s, signal) =>
    new Promise<Verdict>((resolve) => {
      starts.push({ host: s.host, checktype: s.checktype, at: clock.now() });
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      const t0 = clock.now();
      const done = (v: Verdict): void => {
        inFlight--;
        resolve(v);
      };
      const h = clock.setTimeout(() => done({ up: result(s), reason: 'fake', durationMs: clock.now() - t0 }), durationMs(s));
      signal.addEventListener('abort', () => {
        clock.clearTimeout(h);
        done({ up: false, reason: 'check aborted', durationMs: 0 });
      }, { once: true });
    });
  return { run, starts, stats: () => ({ inFlight, maxInFlight }) };
}

const flush = () => new Promise<void>((r) => setImmediate(r));

/** Advance virtual time in steps, letting promise callbacks run between them. */
async function advance(clock: ManualClock, ms: number, step = 10): Promise<void> {
  for (let t = 0; t < ms; t += step) {
    clock.advance(Math.min(step, ms - t));
    await flush();
  }
}

const real = (host: string, over: Partial<CheckSpec> = {}): CheckSpec => spec({ service: 'http', host, port: 80, ...over });

describe('check scheduler (ManualClock)', () => {
  it('checks every real once at start, then once per interval as a period (not a sleep after the check)', async () => {
    const clock = new ManualClock();
    const fake = fakeChecker(clock, () => 300);
    const verdicts: string[] = [];
    const s = new CheckScheduler({ clock, check: fake.run, onVerdict: (id) => verdicts.push(id) });
    s.update([{ id: 'a', spec: real('10.0.0.1'), intervalMs: 1000 }]);
    s.start();
    await flush();
    await advance(clock, 5050);
    const at = fake.starts.map((x) => x.at);
    // first at 0, then every 1000 ms although each check takes 300 ms
    assert.deepEqual(at, [0, 1000, 2000, 3000, 4000, 5000]);
    assert.equal(verdicts.length, 5);
    await s.stop();
  });

  it('spreads the starts of many reals evenly over the interval', async () => {
    const clock = new ManualClock();
    const fake = fakeChecker(clock, () => 5);
    const s = new CheckScheduler({ clock, check: fake.run, onVerdict: () => {} });
    const checks: ScheduledCheck[] = [];
    for (let i = 0; i < 100; i++) checks.push({ id: `r${i}`, spec: real(`10.0.1.${i}`), intervalMs: 1000 });
    s.update(checks);
    s.start();
    await flush();
    await advance(clock, 4000, 5);
    // steady state: the window [2000, 3000) has exactly one start per real, about 10 ms apart
    const window = fake.starts.filter((x) => x.at >= 2000 && x.at < 3000).map((x) => x.at).sort((a, b) => a - b);
    assert.equal(window.length, 100);
    assert.equal(new Set(fake.starts.filter((x) => x.at >= 2000 && x.at < 3000).map((x) => x.host)).size, 100);
    let maxGap = 0;
    for (let i = 1; i < window.length; i++) maxGap = Math.max(maxGap, window[i]! - window[i - 1]!);
    assert.ok(maxGap <= 25, `largest gap between starts ${maxGap} ms`);
    // and each real's period is exactly the interval
    const r5 = fake.starts.filter((x) => x.host === '10.0.1.5').map((x) => x.at);
    for (let i = 2; i < r5.length; i++) assert.equal(r5[i]! - r5[i - 1]!, 1000);
    await s.stop();
  });

  it('checks a real shared by several virtuals once and reports the verdict to every id', async () => {
    const clock = new ManualClock();
    const fake = fakeChecker(clock, () => 1);
    const got: string[] = [];
    const s = new CheckScheduler({ clock, check: fake.run, onVerdict: (id) => got.push(id) });
    s.update([
      { id: 'vip1/r', spec: real('10.0.0.9', { virtualAddress: '10.0.0.100' }), intervalMs: 1000 },
      { id: 'vip2/r', spec: real('10.0.0.9', { virtualAddress: '10.0.0.101' }), intervalMs: 1000 },
      { id: 'vip3/r', spec: real('10.0.0.9', { receive: 'other' }), intervalMs: 1000 },
    ]);
    s.start();
    await advance(clock, 20);
    assert.equal(fake.starts.length, 2);
    assert.deepEqual(got.sort(), ['vip1/r', 'vip2/r', 'vip3/r']);
    assert.deepEqual(s.stats().entries, 2);
    await s.stop();
  });

  it('does not share external checks between virtuals (their arguments name the virtual)', () => {
    const a = real('10.0.0.9', { checktype: 'external', virtualAddress: '10.0.0.100' });
    const b = real('10.0.0.9', { checktype: 'external', virtualAddress: '10.0.0.101' });
    assert.notEqual(checkIdentity(a), checkIdentity(b));
    assert.equal(checkIdentity(real('1.2.3.4', { virtualAddress: 'x' })), checkIdentity(real('1.2.3.4', { virtualAddress: 'y' })));
  });

  it('bounds the checks in flight; the rest wait their turn', async () => {
    const clock = new ManualClock();
    const fake = fakeChecker(clock, () => 100);
    const s = new CheckScheduler({ clock, check: fake.run, onVerdict: () => {}, concurrency: 3 });
    s.update(Array.from({ length: 10 }, (_, i) => ({ id: `r${i}`, spec: real(`10.0.2.${i}`), intervalMs: 10_000 })));
    s.start();
    await advance(clock, 450);
    assert.equal(fake.stats().maxInFlight, 3);
    assert.equal(fake.starts.length, 10);
    assert.deepEqual(fake.starts.map((x) => x.at), [0, 0, 0, 100, 100, 100, 200, 200, 200, 300]);
    await s.stop();
  });

  it('never runs two checks of one real at once when a check overruns its interval', async () => {
    const clock = new ManualClock();
    const fake = fakeChecker(clock, () => 2500);
    const s = new CheckScheduler({ clock, check: fake.run, onVerdict: () => {} });
    s.update([{ id: 'hung', spec: real('10.0.0.7'), intervalMs: 1000 }]);
    s.start();
    await advance(clock, 8000);
    assert.equal(fake.stats().maxInFlight, 1);
    assert.deepEqual(fake.starts.map((x) => x.at), [0, 2500, 5000, 7500]);
    await s.stop();
  });

  it('a check that starts late (saturated) re-bases its schedule instead of running twice in a row', async () => {
    const clock = new ManualClock();
    const fake = fakeChecker(clock, () => 900);
    const s = new CheckScheduler({ clock, check: fake.run, onVerdict: () => {}, concurrency: 1, slackMs: 0 });
    s.update(['10.0.3.1', '10.0.3.2', '10.0.3.3'].map((h, i) => ({ id: `r${i}`, spec: real(h), intervalMs: 1000 })));
    s.start();
    await advance(clock, 12_000, 10);
    for (const host of ['10.0.3.1', '10.0.3.2', '10.0.3.3']) {
      const at = fake.starts.filter((x) => x.host === host).map((x) => x.at);
      assert.ok(at.length >= 3, `${host} checked ${at.length} times`);
      for (let i = 1; i < at.length; i++) assert.ok(at[i]! - at[i - 1]! >= 900, `${host}: starts ${at.join(', ')}`);
    }
    await s.stop();
  });

  it('combined N: one negotiate, then N connects; a failure goes back to negotiate', async () => {
    const clock = new ManualClock();
    let connectUp = true;
    const fake = fakeChecker(clock, () => 1, (sp) => sp.checktype === 'negotiate' || connectUp);
    const s = new CheckScheduler({ clock, check: fake.run, onVerdict: () => {} });
    s.update([{ id: 'c', spec: real('10.0.0.3', { checktype: 'combined', combinedConnects: 2 }), intervalMs: 100 }]);
    s.start();
    await advance(clock, 560, 5);
    assert.deepEqual(fake.starts.map((x) => x.checktype), ['negotiate', 'connect', 'connect', 'negotiate', 'connect', 'connect']);
    connectUp = false;
    await advance(clock, 300, 5);
    assert.deepEqual(fake.starts.slice(6).map((x) => x.checktype), ['negotiate', 'connect', 'negotiate']);
    await s.stop();
  });

  it('CombinedState: a failed negotiate keeps negotiating; N=0 is negotiate every time', () => {
    const c = new CombinedState(3);
    assert.equal(c.next(), 'negotiate');
    c.record('negotiate', false);
    assert.equal(c.next(), 'negotiate');
    c.record('negotiate', true);
    assert.deepEqual([c.next()], ['connect']);
    c.record('connect', true);
    c.record('connect', true);
    c.record('connect', true);
    assert.equal(c.next(), 'negotiate');
    const zero = new CombinedState(0);
    zero.record('negotiate', true);
    assert.equal(zero.next(), 'negotiate');
  });

  it('on and off report one verdict and are not polled', async () => {
    const clock = new ManualClock();
    const fake = fakeChecker(clock, () => 0, (sp) => sp.checktype === 'on');
    const got: [string, boolean][] = [];
    const s = new CheckScheduler({ clock, check: fake.run, onVerdict: (id, v) => got.push([id, v.up]) });
    s.update([
      { id: 'on', spec: real('10.0.0.1', { checktype: 'on' }), intervalMs: 100 },
      { id: 'off', spec: real('10.0.0.2', { checktype: 'off' }), intervalMs: 100 },
    ]);
    s.start();
    await advance(clock, 1000);
    assert.deepEqual(got.sort(), [['off', false], ['on', true]]);
    await s.stop();
  });

  it('update keeps the schedule of unchanged checks, starts new ones at once, drops removed ones', async () => {
    const clock = new ManualClock();
    const fake = fakeChecker(clock, () => 50);
    const got: string[] = [];
    const s = new CheckScheduler({ clock, check: fake.run, onVerdict: (id) => got.push(`${id}@${clock.now()}`) });
    s.update([
      { id: 'keep', spec: real('10.0.0.1'), intervalMs: 1000 },
      { id: 'drop', spec: real('10.0.0.2'), intervalMs: 1000 },
    ]);
    s.start();
    await advance(clock, 1020);
    const keepStarts = () => fake.starts.filter((x) => x.host === '10.0.0.1').map((x) => x.at);
    const before = keepStarts();
    s.update([
      { id: 'keep', spec: real('10.0.0.1'), intervalMs: 1000 },
      { id: 'new', spec: real('10.0.0.3'), intervalMs: 1000 },
    ]);
    await advance(clock, 3000);
    const after = keepStarts();
    assert.deepEqual(after.slice(0, before.length), before);
    for (let i = 2; i < after.length; i++) assert.equal(after[i]! - after[i - 1]!, 1000);
    assert.ok(fake.starts.some((x) => x.host === '10.0.0.3' && x.at === 1020), 'new real checked at once');
    assert.ok(!got.some((g) => g.startsWith('drop@') && Number(g.split('@')[1]) > 1020), 'no verdict for a removed real');
    assert.ok(!fake.starts.some((x) => x.host === '10.0.0.2' && x.at > 1020));
    await s.stop();
  });

  it('stop aborts checks in flight and waits for them', async () => {
    const clock = new ManualClock();
    const fake = fakeChecker(clock, () => 60_000);
    const got: string[] = [];
    const s = new CheckScheduler({ clock, check: fake.run, onVerdict: (id) => got.push(id) });
    s.update([{ id: 'x', spec: real('10.0.0.1'), intervalMs: 1000 }]);
    s.start();
    await flush();
    assert.equal(s.stats().running, 1);
    await s.stop();
    assert.equal(s.stats().running, 0);
    assert.deepEqual(got, [], 'an aborted check reports nothing');
    assert.equal(clock.pending, 0, 'no timer left behind');
  });

  it('a checker that throws becomes a down verdict', async () => {
    const clock = new ManualClock();
    const got: Verdict[] = [];
    const s = new CheckScheduler({ clock, check: () => { throw new Error('boom'); }, onVerdict: (_id, v) => got.push(v) });
    s.update([{ id: 'x', spec: real('10.0.0.1'), intervalMs: 1000 }]);
    s.start();
    await flush();
    await flush();
    assert.equal(got[0]?.up, false);
    assert.match(got[0]!.reason, /boom/);
    await s.stop();
  });
});
