import assert from 'node:assert/strict';
import { ManualClock } from '@tandem/core';
import { ServiceState } from '../src/dataplane/service.ts';
import { CounterSet, InactiveRing } from '../src/dataplane/stats.ts';
import type { VirtualService } from '../src/model.ts';

function svc(extra: Partial<VirtualService> = {}): VirtualService {
  return {
    protocol: 'tcp',
    address: '172.25.0.10',
    port: 80,
    scheduler: 'rr',
    reals: [
      { address: '192.168.122.10', port: 80, forwarding: 'masq', weight: 1 },
      { address: '192.168.122.20', port: 80, forwarding: 'masq', weight: 1 },
    ],
    ...extra,
  };
}

function state(v: VirtualService, clock = new ManualClock(), expireQuiescentTemplate = false): ServiceState {
  const s = new ServiceState('tcp 172.25.0.10:80', v, { clock, inactiveHoldS: 120, expireQuiescentTemplate });
  s.reconfigure(v);
  return s;
}

describe('dataplane service state (pure, virtual time)', () => {
  it('persistence: a template lasts timeout after its last connection, not while one is open', () => {
    const clock = new ManualClock();
    const s = state(svc({ persistence: { timeoutS: 300 } }), clock);
    const first = s.pick('10.0.0.1', 1000)!;
    s.templateHold('10.0.0.1', 1);
    clock.advance(400_000); // a long connection keeps the template
    s.tick(clock.now());
    assert.equal(s.pick('10.0.0.1', 1001), first);
    s.templateHold('10.0.0.1', -1); // ends now
    clock.advance(299_000);
    s.tick(clock.now());
    assert.equal(s.pick('10.0.0.1', 1002), first, 'still inside the timeout');
    clock.advance(301_000);
    s.tick(clock.now());
    assert.equal(s.templateCount, 0, 'expired 300 s after the last use');
    assert.equal(first.persistConns, 0);
  });

  it('persistence netmask groups IPv4 networks and IPv6 prefixes', () => {
    const s4 = state(svc({ persistence: { timeoutS: 60, netmask: '255.255.255.0' } }));
    const a = s4.pick('10.1.2.3', 1)!;
    assert.equal(s4.pick('10.1.2.200', 2), a);
    assert.notEqual(s4.pick('10.1.3.1', 3), a);
    const s6 = state(svc({ address: '2001:db8::10', persistence: { timeoutS: 60, netmask: '64' } }));
    const b = s6.pick('2001:db8:0:1::5', 1)!;
    assert.equal(s6.pick('2001:db8:0:1:ffff::9', 2), b);
    assert.equal(s6.templateCount, 1);
  });

  it('a template to a removed real is dropped; to a quiesced one kept unless expire_quiescent_template', () => {
    const v = svc({ persistence: { timeoutS: 60 } });
    const s = state(v);
    const a = s.pick('10.0.0.1', 1)!;
    s.reconfigure({ ...v, reals: v.reals.map((r) => (r.address === a.address ? { ...r, weight: 0 } : r)) });
    assert.equal(s.pick('10.0.0.1', 2), a, 'kernel default: the client keeps its quiesced server');
    const q = state(v, new ManualClock(), true);
    const qa = q.pick('10.0.0.1', 1)!;
    q.reconfigure({ ...v, reals: v.reals.map((r) => (r.address === qa.address ? { ...r, weight: 0 } : r)) });
    assert.notEqual(q.pick('10.0.0.1', 2), qa);
    s.reconfigure({ ...v, reals: v.reals.filter((r) => r.address !== a.address) });
    assert.notEqual(s.pick('10.0.0.1', 3), a);
  });

  it('a removed real is revived with its live counters when it is added back', () => {
    const v = svc();
    const s = state(v);
    const d = s.reals.find((r) => r.address === '192.168.122.10')!;
    d.activeConns = 2;
    s.reconfigure({ ...v, reals: [v.reals[1]] });
    assert.equal(d.available, false);
    s.reconfigure(v);
    const back = s.reals.find((r) => r.address === '192.168.122.10')!;
    assert.equal(back, d);
    assert.equal(back.activeConns, 2);
    assert.equal(s.reals[0], back, 'a re-added real goes to the front, as in the kernel');
  });

  it('ended connections stay inactive for the hold time, then leave', () => {
    const ring = new InactiveRing(120);
    ring.add(10);
    ring.add(10.5);
    ring.add(70);
    assert.equal(ring.total, 3);
    assert.equal(ring.advance(129), 0);
    assert.equal(ring.advance(131), 2);
    assert.equal(ring.advance(1000), 1);
    assert.equal(ring.total, 0);
  });

  it('rates follow the kernel estimator: 2 s samples averaged with weight 1/4', () => {
    const c = new CounterSet();
    const expect: number[] = [];
    let avg = 0;
    for (let k = 0; k < 6; k++) {
      c.conns += 200; // 100 conns/s
      c.inBytes += 2000;
      c.estimate(2);
      avg += (100 - avg) / 4;
      expect.push(Math.round(avg));
      assert.equal(c.snapshot().cps, expect[k]);
    }
    assert.deepEqual(expect, [25, 44, 58, 68, 76, 82]);
    assert.equal(c.snapshot().inBps, 822); // 1000 B/s * (1 - (3/4)^6)
    c.zero();
    assert.equal(c.snapshot().cps, 0);
    assert.equal(c.snapshot().conns, 0);
  });

  it('an unknown scheduler is refused and leaves the service as it was', () => {
    const v = svc();
    const s = state(v);
    assert.throws(() => s.reconfigure({ ...v, scheduler: 'wrrr', persistence: { timeoutS: 60 } }), /unknown scheduler wrrr/);
    assert.equal(s.sched.schedulerName, 'rr');
    assert.equal(s.config.persistence, undefined);
  });
});
