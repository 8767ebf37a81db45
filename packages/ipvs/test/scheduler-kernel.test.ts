import assert from 'node:assert/strict';
import { ManualClock } from '@tandem/core';
import { ServiceScheduling } from '../src/schedulers/service.ts';
import { type Dest, afterBind, afterUnbind, mhPopulate, schedulerNames } from '../src/schedulers/index.ts';
import { addrFold, hsiphash32, ipv6Groups } from '../src/schedulers/hash.ts';

const req = (saddr = '10.0.0.1', sport = 40000) => ({ saddr, sport, daddr: '172.25.0.10', dport: 80 });

function picks(svc: ServiceScheduling, n: number, r = req): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(svc.schedule(typeof r === 'function' ? r() : r)?.address ?? '-');
  return out;
}

/** `ipvsadm -A -s NAME` then `-a` for each real in order, as the seed scripts do. */
function service(name: string, reals: [string, number][], flags: string[] = []): ServiceScheduling {
  const svc = new ServiceScheduling(name, { flags, clock: new ManualClock() });
  for (const [a, w] of reals) svc.add(a, 80, w);
  return svc;
}

describe('schedulers (kernel semantics)', () => {
  it('registers the thirteen kernel schedulers', () => {
    assert.deepEqual(schedulerNames(), ['dh', 'fo', 'lblc', 'lblcr', 'lc', 'mh', 'nq', 'ovf', 'rr', 'sed', 'sh', 'wlc', 'wrr']);
  });

  it('keeps the kernel list order: the last added real is first', () => {
    const svc = service('rr', [['192.168.122.10', 5], ['192.168.122.20', 10]]);
    assert.deepEqual(svc.dests.map((d) => d.address), ['192.168.122.20', '192.168.122.10']);
  });

  describe('rr', () => {
    it('alternates in list order and skips weight 0 and overloaded servers', () => {
      const svc = service('rr', [['a', 1], ['b', 1], ['c', 1]]);
      assert.deepEqual(picks(svc, 6), ['c', 'b', 'a', 'c', 'b', 'a']);
      svc.edit(svc.find('b', 80)!, 0);
      assert.deepEqual(picks(svc, 4), ['c', 'a', 'c', 'a']);
      svc.find('a', 80)!.overloaded = true;
      assert.deepEqual(picks(svc, 2), ['c', 'c']);
      svc.find('c', 80)!.overloaded = true;
      assert.deepEqual(picks(svc, 1), ['-']);
    });

    it('after removing the server under the cursor, continues with the one that followed it', () => {
      const svc = service('rr', [['a', 1], ['b', 1], ['c', 1]]);
      assert.deepEqual(picks(svc, 2), ['c', 'b']);
      svc.remove(svc.find('b', 80)!);
      assert.deepEqual(picks(svc, 3), ['a', 'c', 'a']);
    });
  });

  describe('wrr', () => {
    it('seed 003: rr service with reals 5 and 10, switched to wrr with -E, gives 02,02,01,02', () => {
      const svc = service('rr', [['192.168.122.10', 5], ['192.168.122.20', 10]]);
      svc.setScheduler('wrr');
      const seq = picks(svc, 4).map((a) => (a === '192.168.122.10' ? 'lvs01' : 'lvs02'));
      assert.deepEqual(seq, ['lvs02', 'lvs02', 'lvs01', 'lvs02']);
      const many = picks(svc, 3000);
      assert.equal(many.filter((a) => a === '192.168.122.20').length, 2000);
      assert.equal(many.filter((a) => a === '192.168.122.10').length, 1000);
    });

    it('a wrr service built by -A then -a -a starts from the add_dest state (cw reset to gcd step)', () => {
      const svc = service('wrr', [['192.168.122.10', 5], ['192.168.122.20', 10]]);
      assert.deepEqual(picks(svc, 6).map((a) => a.slice(-2)), ['20', '10', '20', '20', '10', '20']);
    });

    it('interleaves weights 4:3:2 exactly as the kernel (gcd 1)', () => {
      const svc = new ServiceScheduling('wrr', { clock: new ManualClock() });
      svc.add('c', 80, 2);
      svc.add('b', 80, 3);
      svc.add('a', 80, 4);
      svc.setScheduler('rr');
      svc.setScheduler('wrr'); // fresh init_service: cw = mw = 4
      // list a(4) b(3) c(2): cw=4 a; cw=3 a b; cw=2 a b c; cw=1 a b c
      assert.deepEqual(picks(svc, 9), ['a', 'a', 'b', 'a', 'b', 'c', 'a', 'b', 'c']);
      assert.deepEqual(picks(svc, 9), ['a', 'a', 'b', 'a', 'b', 'c', 'a', 'b', 'c']);
    });

    it('weight 0 servers never get a connection; all zero means none', () => {
      const svc = service('wrr', [['a', 0], ['b', 3]]);
      assert.deepEqual(new Set(picks(svc, 10)), new Set(['b']));
      svc.edit(svc.find('b', 80)!, 0);
      assert.deepEqual(picks(svc, 2), ['-', '-']);
    });

    it('skips overloaded servers and reports none when all are', () => {
      const svc = service('wrr', [['a', 1], ['b', 2]]);
      svc.find('b', 80)!.overloaded = true;
      assert.deepEqual(new Set(picks(svc, 5)), new Set(['a']));
      svc.find('a', 80)!.overloaded = true;
      assert.deepEqual(picks(svc, 1), ['-']);
    });
  });

  describe('least-connection family', () => {
    const set = (d: Dest, active: number, inact = 0) => {
      d.activeConns = active;
      d.inactConns = inact;
    };
    it('lc: lowest active*256+inactive, ties to the first in list order', () => {
      const svc = service('lc', [['a', 1], ['b', 1]]);
      assert.equal(svc.schedule(req())!.address, 'b');
      set(svc.find('b', 80)!, 1);
      assert.equal(svc.schedule(req())!.address, 'a');
      set(svc.find('a', 80)!, 1, 300);
      assert.equal(svc.schedule(req())!.address, 'b');
    });
    it('wlc: lowest overhead per weight', () => {
      const svc = service('wlc', [['a', 1], ['b', 3]]);
      set(svc.find('a', 80)!, 1);
      set(svc.find('b', 80)!, 2);
      assert.equal(svc.schedule(req())!.address, 'b'); // 512/3 < 256/1
      set(svc.find('b', 80)!, 4);
      assert.equal(svc.schedule(req())!.address, 'a'); // 1024/3 > 256/1
    });
    it('sed: (active+1)/weight, nq: an idle server first', () => {
      const sed = service('sed', [['a', 1], ['b', 4]]);
      set(sed.find('a', 80)!, 0);
      set(sed.find('b', 80)!, 2);
      assert.equal(sed.schedule(req())!.address, 'b'); // 3/4 < 1/1
      const nq = service('nq', [['a', 1], ['b', 4]]);
      set(nq.find('a', 80)!, 0);
      set(nq.find('b', 80)!, 2);
      assert.equal(nq.schedule(req())!.address, 'a'); // idle wins
    });
  });

  describe('fo and ovf', () => {
    it('fo: the highest weight; quiescing it moves new connections to the next', () => {
      const svc = service('fo', [['a', 5], ['b', 10], ['c', 10]]);
      assert.equal(svc.schedule(req())!.address, 'c'); // tie: first in list (c was added last)
      svc.edit(svc.find('c', 80)!, 0);
      assert.equal(svc.schedule(req())!.address, 'b');
    });
    it('ovf: the highest weight until its active connections exceed its weight', () => {
      const svc = service('ovf', [['a', 5], ['b', 2]]);
      const a = svc.find('a', 80)!;
      a.activeConns = 5;
      assert.equal(svc.schedule(req())!.address, 'a');
      a.activeConns = 6;
      assert.equal(svc.schedule(req())!.address, 'b');
    });
  });

  describe('hashing schedulers', () => {
    it('sh: a client always lands on the same server; weights set the share of buckets', () => {
      const svc = service('sh', [['a', 1], ['b', 3]]);
      const counts = new Map<string, number>();
      for (let i = 0; i < 2000; i++) {
        const ip = `10.${(i >> 8) & 255}.${i & 255}.7`;
        const first = svc.schedule(req(ip))!.address;
        assert.equal(svc.schedule(req(ip, 1234))!.address, first);
        counts.set(first, (counts.get(first) ?? 0) + 1);
      }
      const share = counts.get('b')! / 2000;
      assert.ok(share > 0.6 && share < 0.9, `b share ${share}`);
    });
    it('sh-port spreads one client over servers; sh-fallback avoids a quiesced server', () => {
      const svc = service('sh', [['a', 1], ['b', 1]], ['sh-port']);
      const seen = new Set(picks(svc, 50, (() => { let p = 30000; return () => req('10.0.0.9', p++); })()));
      assert.deepEqual(seen, new Set(['a', 'b']));
      const plain = service('sh', [['a', 1], ['b', 1]]);
      const fb = service('sh', [['a', 1], ['b', 1]], ['sh-fallback']);
      let none = 0;
      for (let i = 0; i < 64; i++) {
        const ip = `10.1.2.${i}`;
        const home = plain.schedule(req(ip))!.address;
        plain.edit(plain.find(home, 80)!, 0);
        fb.edit(fb.find(home, 80)!, 0);
        if (plain.schedule(req(ip)) === undefined) none++;
        assert.equal(fb.schedule(req(ip))!.address, home === 'a' ? 'b' : 'a');
        plain.edit(plain.find(home, 80)!, 1);
        fb.edit(fb.find(home, 80)!, 1);
      }
      assert.equal(none, 64);
    });
    it('dh: keyed by the destination (the virtual address), one server per service', () => {
      const svc = service('dh', [['a', 1], ['b', 1], ['c', 1]]);
      const seen = new Set(picks(svc, 20, (() => { let i = 0; return () => req(`10.0.0.${i++}`); })()));
      assert.equal(seen.size, 1);
    });
    it('mh: 4093-entry table shared by weight; removing one server keeps almost all other clients in place', () => {
      const svc = service('mh', [['10.0.0.1', 1], ['10.0.0.2', 1], ['10.0.0.3', 2]]);
      const table = mhPopulate(svc.dests);
      assert.equal(table.length, 4093);
      const slots = new Map<string, number>();
      for (const d of table) slots.set(d!.address, (slots.get(d!.address) ?? 0) + 1);
      assert.equal([...slots.values()].reduce((a, b) => a + b), 4093);
      assert.ok(Math.abs(slots.get('10.0.0.3')! - 4093 / 2) <= 2, `weight 2 slots ${slots.get('10.0.0.3')}`);
      const clients = Array.from({ length: 1000 }, (_, i) => `198.${(i >> 8) & 255}.${i & 255}.1`);
      const before = clients.map((c, i) => svc.schedule(req(c, i))!.address);
      svc.remove(svc.find('10.0.0.2', 80)!);
      const after = clients.map((c, i) => svc.schedule(req(c, i))!.address);
      let kept = 0;
      let others = 0;
      for (let i = 0; i < clients.length; i++) {
        assert.notEqual(after[i], '10.0.0.2');
        if (before[i] === '10.0.0.2') continue;
        others++;
        if (after[i] === before[i]) kept++;
      }
      // Maglev promises minimal, not zero, disruption of the other servers' clients.
      assert.ok(kept / others > 0.9, `kept ${kept} of ${others}`);
    });
    it('mh: a quiesced server keeps its slots: no server without mh-fallback, another with it', () => {
      const plain = service('mh', [['10.0.0.1', 1], ['10.0.0.2', 1]]);
      const fb = service('mh', [['10.0.0.1', 1], ['10.0.0.2', 1]], ['mh-fallback']);
      const home = plain.schedule(req('198.51.100.7'))!.address;
      assert.equal(fb.schedule(req('198.51.100.7'))!.address, home);
      plain.edit(plain.find(home, 80)!, 0);
      fb.edit(fb.find(home, 80)!, 0);
      assert.equal(plain.schedule(req('198.51.100.7')), undefined);
      assert.notEqual(fb.schedule(req('198.51.100.7'))!.address, home);
      plain.edit(plain.find(home, 80)!, 1);
      assert.equal(plain.schedule(req('198.51.100.7'))!.address, home);
    });
  });

  describe('locality schedulers', () => {
    it('lblc: sticks to the cached server until it is overloaded in lblc terms', () => {
      const svc = service('lblc', [['a', 2], ['b', 2]]);
      const first = svc.schedule(req())!;
      first.activeConns = 2;
      assert.equal(svc.schedule(req()), first); // active not above weight
      first.activeConns = 3; // above weight while the other is under half its weight
      assert.notEqual(svc.schedule(req()), first);
    });
    it('lblcr: grows the set when its least loaded member is overloaded', () => {
      const clock = new ManualClock();
      const svc = new ServiceScheduling('lblcr', { clock });
      svc.add('a', 80, 1);
      svc.add('b', 80, 1);
      const first = svc.schedule(req())!;
      first.activeConns = 5;
      const second = svc.schedule(req())!;
      assert.notEqual(second, first);
      second.activeConns = 1;
      first.activeConns = 1;
      assert.ok([first, second].includes(svc.schedule(req())!));
      assert.equal((svc.scheduler.dump!() as { cacheEntries: number }).cacheEntries, 1);
    });
  });

  describe('thresholds (-x/-y)', () => {
    it('overloads at the upper threshold and clears below the lower one (or 3/4 of upper)', () => {
      const svc = service('rr', [['a', 1], ['b', 1]]);
      const a = svc.find('a', 80)!;
      svc.edit(a, 1, { upper: 4, lower: 2 });
      a.activeConns = 4;
      afterBind(a);
      assert.equal(a.overloaded, true);
      assert.deepEqual(new Set(picks(svc, 4)), new Set(['b']));
      a.activeConns = 2;
      afterUnbind(a);
      assert.equal(a.overloaded, true);
      a.activeConns = 1;
      afterUnbind(a);
      assert.equal(a.overloaded, false);
      svc.edit(a, 1, { upper: 4 });
      a.activeConns = 4;
      afterBind(a);
      a.activeConns = 3;
      afterUnbind(a);
      assert.equal(a.overloaded, true); // 3*4 = 12 not < 12
      a.activeConns = 2;
      afterUnbind(a);
      assert.equal(a.overloaded, false);
    });
  });

  describe('hash helpers', () => {
    it('folds addresses like the kernel (host order, IPv6 words XORed)', () => {
      assert.equal(addrFold('192.168.122.10'), 0xc0a87a0a);
      assert.equal(addrFold('::ffff:10.0.0.1'), 0x0a000001);
      assert.deepEqual(ipv6Groups('2001:db8::1'), [0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]);
      assert.equal(addrFold('2001:db8::1'), (0x20010db8 ^ 1) >>> 0);
    });
    it('hsiphash is deterministic and spreads', () => {
      const a = hsiphash32(1, 2654435761n, 2654435761n);
      assert.equal(a, hsiphash32(1, 2654435761n, 2654435761n));
      const s = new Set(Array.from({ length: 1000 }, (_, i) => hsiphash32(i, 2654435761n, 2654435761n) % 4093));
      assert.ok(s.size > 700);
    });
  });
});
