// bench/failover's analysis of one switch, on synthetic probe records (pure: no processes).
import assert from 'node:assert/strict';
import { analyseSwitch, median, type ProbeResult, type HolderSample } from '../bench/_failover-measure.ts';

/** A probe every 10 ms from `from` to `to`; `answer(w)` says who answers a request sent at w (undefined: none). */
function probes(from: number, to: number, answer: (w: number) => string | undefined, rtt = 2): ProbeResult[] {
  const out: ProbeResult[] = [];
  for (let w = from; w <= to; w += 10) {
    const by = answer(w);
    out.push(by ? { w, ok: true, by, ms: rtt } : { w, ok: false, err: 'ETIMEDOUT' });
  }
  return out;
}

function holders(from: number, to: number, who: (w: number) => string[]): HolderSample[] {
  const out: HolderSample[] = [];
  for (let w = from; w <= to; w += 50) out.push({ w, holders: who(w) });
  return out;
}

describe('bench/failover switch analysis', () => {
  const event = 10_000;
  const end = 14_000;
  // The old holder answers until 20 ms after the event, the new one from 300 ms after it.
  const who = (w: number) => (w < event + 20 ? 'lb1' : w >= event + 300 ? 'lb2' : undefined);

  it('measures the outage from the first unanswered request to the next answered one, per protocol', () => {
    const f = analyseSwitch({
      udp: probes(8000, end, who), tcp: probes(8000, end, (w) => (w < event + 20 || w >= event + 350 ? 'rs1' : undefined)),
      holders: holders(8000, end, (w) => (w < event + 250 ? ['lb1'] : ['lb2'])), eventW: event, newHolder: 'lb2', endW: end, settleMs: 500,
    });
    assert.equal(f.outageUdpMs, 280);
    assert.equal(f.outageTcpMs, 330);
    assert.equal(f.lostUdp, 28);
    assert.equal(f.lostTcp, 33);
    assert.equal(f.firstNewMs, 302);
    assert.equal(f.vipMs, 250);
    // TCP (through the balancer) came back 50 ms after the new holder's first UDP answer: those
    // five requests failed after the takeover.
    assert.equal(f.failedAfterTakeover, 5);
    assert.equal(f.dualAfterSettle, 0);
  });

  it('counts failures after the new holder answered, and dual holders after settling as episodes', () => {
    const f = analyseSwitch({
      udp: probes(8000, end, (w) => (w >= event + 1000 && w < event + 1030 ? undefined : who(w))),
      tcp: probes(8000, end, () => 'rs1'),
      // Both hold the VIP twice after settling (two episodes) and once before (while settling).
      holders: holders(8000, end, (w) => ((w >= event + 400 && w < event + 500) || (w >= event + 1500 && w < event + 1600) || (w >= event + 2000 && w < event + 2100) ? ['lb1', 'lb2'] : w < event + 250 ? ['lb1'] : ['lb2'])),
      eventW: event, newHolder: 'lb2', endW: end, settleMs: 500,
    });
    assert.equal(f.failedAfterTakeover, 3);
    assert.equal(f.dualAfterSettle, 2);
    assert.equal(f.dualBeforeSettle, 1);
  });

  it('leaves the dead host out of the dual-holder count when asked', () => {
    const both = holders(8000, end, (w) => (w < event + 250 ? ['lb1'] : ['lb1', 'lb2']));
    const base = { udp: probes(8000, end, who), tcp: probes(8000, end, () => 'rs1'), holders: both, eventW: event, newHolder: 'lb2', endW: end, settleMs: 500 };
    assert.equal(analyseSwitch(base).dualAfterSettle, 1);
    assert.equal(analyseSwitch({ ...base, ignoreHolder: 'lb1' }).dualAfterSettle, 0);
  });

  it('does not take a stall of the client (no requests sent) for an outage', () => {
    // Nothing is sent for 700 ms, but every request that is sent is answered.
    const udp = probes(8000, end, () => 'lb2').filter((r) => r.w < event || r.w > event + 700);
    const f = analyseSwitch({ udp, tcp: udp, holders: holders(8000, end, () => ['lb2']), eventW: event - 100, newHolder: 'lb2', endW: end, settleMs: 500 });
    assert.equal(f.outageUdpMs, 0);
    assert.ok(f.silenceUdpMs >= 700, `the silence between answers is still reported: ${f.silenceUdpMs}`);
  });

  it('reports a takeover that never came as NaN and an outage up to the end of the observation', () => {
    const f = analyseSwitch({ udp: probes(8000, end, (w) => (w < event ? 'lb1' : undefined)), tcp: [], holders: [], eventW: event, newHolder: 'lb2', endW: end, settleMs: 500 });
    assert.ok(Number.isNaN(f.firstNewMs));
    assert.equal(f.outageUdpMs, end - event);
  });

  it('median ignores NaN', () => {
    assert.equal(median([3, NaN, 1, 2]), 2);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.ok(Number.isNaN(median([])));
  });
});
