import { strict as assert } from 'node:assert';
import { ManualClock } from '@tandem/core';
import { Membership, MembershipDriver, describeEvent, type HeardMessage, type MembershipEvent } from '../src/membership.ts';

const timing = { keepaliveMs: 1000, deadtimeMs: 5000, warntimeMs: 2500, initdeadMs: 10_000 };
const mk = (now = 0) => new Membership({ localNode: 'node1', nodes: ['node1', 'node2'], links: ['eth0', 'eth1'], timing, now });
const st = (seq: number, link = 'eth0', extra: Partial<HeardMessage> = {}): HeardMessage => ({
  node: 'node2', link, type: 'status', status: 'active', seq, generation: 7, deadtimeMs: 5000, ...extra,
});
const types = (es: MembershipEvent[]) => es.map((e) => e.type);

describe('membership (pure state machine)', () => {
  it('a node never heard from is declared dead exactly initdead after start', () => {
    const m = mk(100);
    assert.equal(m.node('node2')!.state, 'init');
    assert.equal(m.nextDeadline(), 10_100);
    assert.deepEqual(m.tick(10_099), []);
    const ev = m.tick(10_100);
    assert.deepEqual(types(ev), ['node-dead']);
    assert.equal((ev[0] as { reason: string }).reason, 'initdead');
    assert.equal(m.node('node2')!.state, 'dead');
  });

  it('first packet: node-up and link-up; silence: link-dead and node-dead at last heard + deadtime', () => {
    const m = mk();
    const r = m.heard(st(1), 1000);
    assert.deepEqual(types(r.events), ['link-up', 'node-up']);
    assert.equal(m.node('node2')!.state, 'active');
    assert.equal(m.node('node2')!.links.find((l) => l.name === 'eth0')!.state, 'up');
    assert.equal(m.node('node2')!.links.find((l) => l.name === 'eth1')!.state, 'dead');
    assert.equal(m.nextDeadline(), 6000);
    assert.deepEqual(m.tick(5999), []);
    const ev = m.tick(6000);
    assert.deepEqual(types(ev), ['link-dead', 'node-dead']);
    assert.equal((ev[1] as { silentMs: number }).silentMs, 5000);
    assert.equal(m.nextDeadline(), undefined);
  });

  it('a node stays up while any link delivers; the silent link alone dies', () => {
    const m = mk();
    m.heard(st(1, 'eth0'), 0);
    m.heard(st(1, 'eth1'), 0);
    const all: MembershipEvent[] = [];
    for (let t = 1000, seq = 2; t <= 20_000; t += 1000, seq++) {
      all.push(...m.tick(t));
      all.push(...m.heard(st(seq, 'eth1'), t).events);
    }
    assert.deepEqual(types(all), ['link-dead']);
    assert.equal(all[0]!.at, 5000);
    assert.equal(m.node('node2')!.state, 'active');
  });

  it('the same packet over a second medium refreshes that link but is a duplicate for the node', () => {
    const m = mk();
    m.heard(st(1, 'eth0'), 0);
    const r = m.heard(st(1, 'eth1'), 1);
    assert.equal(r.ignored, 'duplicate');
    assert.deepEqual(types(r.events), ['link-up']);
    // A replay on the same link is not even a sign of life for the link.
    const again = m.heard(st(1, 'eth1'), 4000);
    assert.deepEqual(again.events, []);
    assert.equal(m.node('node2')!.links.find((l) => l.name === 'eth1')!.lastHeard, 1);
  });

  it('a late packet warns with the interval, as heartbeat logs it', () => {
    const m = mk();
    m.heard(st(1), 0);
    assert.deepEqual(m.heard(st(2), 2500).events, []);
    const r = m.heard(st(3), 5200);
    assert.deepEqual(types(r.events), ['late-heartbeat']);
    assert.equal((r.events[0] as { intervalMs: number }).intervalMs, 2700);
    assert.equal(describeEvent(r.events[0]!).msg, 'Late heartbeat: Node node2: interval 2700 ms');
  });

  it("uses the peer's advertised dt as its dead time", () => {
    const m = mk();
    m.heard(st(1, 'eth0', { deadtimeMs: 0x1b58 }), 0);
    assert.equal(m.deadtimeFor('node2'), 7000);
    assert.deepEqual(m.tick(6999).filter((e) => e.type === 'node-dead'), []);
    assert.deepEqual(types(m.tick(7000)), ['link-dead', 'node-dead']);
  });

  it('recognises a restart by a higher generation and ignores an older one (replay)', () => {
    const m = mk();
    m.heard(st(40), 0);
    const r = m.heard(st(1, 'eth0', { generation: 8, status: 'init' }), 500);
    assert.deepEqual(types(r.events), ['node-restarted', 'node-status']);
    assert.deepEqual({ ...r.events[0] }, { type: 'node-restarted', at: 500, node: 'node2', generation: 8, previous: 7 });
    assert.equal(m.node('node2')!.state, 'init');
    assert.equal(m.heard(st(41, 'eth0', { generation: 7 }), 600).ignored, 'old-generation');
    assert.equal(m.node('node2')!.lastSeq, 1);
    assert.deepEqual(types(m.heard(st(2, 'eth0', { generation: 8, status: 'active' }), 1000).events), ['node-status']);
  });

  it('a restart after death brings the node back up', () => {
    const m = mk();
    m.heard(st(5), 0);
    m.tick(5000);
    assert.equal(m.node('node2')!.state, 'dead');
    const r = m.heard(st(1, 'eth0', { generation: 8, status: 'init' }), 9000);
    assert.deepEqual(types(r.events), ['link-up', 'node-restarted', 'node-up']);
    assert.equal(m.node('node2')!.state, 'init');
  });

  it('st=dead (graceful shutdown) declares the node dead at once', () => {
    const m = mk();
    m.heard(st(1), 0);
    const r = m.heard({ node: 'node2', link: 'eth0', type: 'shutdone', status: 'dead', seq: 2, generation: 7 }, 300);
    assert.deepEqual(types(r.events), ['node-dead']);
    assert.equal((r.events[0] as { reason: string }).reason, 'shutdown');
    // No second death when the dead time passes.
    assert.deepEqual(m.tick(10_000).filter((e) => e.type === 'node-dead'), []);
  });

  it('ignores unknown nodes, messages without seq, and only refreshes links for its own packets', () => {
    const m = mk();
    assert.equal(m.heard({ ...st(1), node: 'intruder' }, 0).ignored, 'unknown-node');
    assert.equal(m.heard({ node: 'node2', link: 'eth0', type: 'NS_ackmsg' }, 0).ignored, 'no-seq');
    const own = m.heard({ node: 'node1', link: 'eth0', type: 'status', status: 'active', seq: 1, generation: 1 }, 0);
    assert.equal(own.ignored, 'local-node');
    assert.deepEqual(types(own.events), ['link-up']);
    assert.equal(m.node('node2')!.state, 'init');
  });

  it('ping nodes are shown as ping while they answer and use deadping', () => {
    const m = new Membership({ localNode: 'node1', nodes: ['node1'], pingNodes: ['10.0.0.1'], links: ['eth0'], timing, deadpingMs: 3000, now: 0 });
    const r = m.heard({ node: '10.0.0.1', link: '10.0.0.1', type: 'NS_st', status: 'ping' }, 100);
    assert.deepEqual(types(r.events), ['link-up', 'node-up']);
    assert.equal(m.node('10.0.0.1')!.state, 'ping');
    assert.deepEqual(types(m.tick(3100)), ['link-dead', 'node-dead']);
  });

  it('the driver declares a death at the exact deadline on a clock, re-arming as packets arrive', () => {
    const clock = new ManualClock(0);
    const seen: MembershipEvent[] = [];
    const d = new MembershipDriver(mk(0), clock, (es) => seen.push(...es));
    for (let seq = 1; seq <= 10; seq++) {
      clock.advanceTo(seq * 1000);
      d.heard(st(seq));
    }
    clock.advanceTo(100_000);
    const dead = seen.filter((e) => e.type === 'node-dead');
    assert.equal(dead.length, 1);
    assert.equal(dead[0]!.at, 15_000);
    d.stop();
    assert.equal(clock.pending, 0);
  });
});
