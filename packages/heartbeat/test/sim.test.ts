import { strict as assert } from 'node:assert';
import { SimCluster } from '../src/sim/cluster.ts';

const slow = { keepaliveMs: 1000, deadtimeMs: 5000, warntimeMs: 2500, initdeadMs: 10_000 };
const fast = { keepaliveMs: 20, deadtimeMs: 100, warntimeMs: 50, initdeadMs: 1000 };

function pair(opts: { timing?: typeof slow; media?: string[]; seed?: number } = {}) {
  return new SimCluster({ nodes: ['a', 'b'], media: opts.media ?? ['eth0', 'eth1'], timing: opts.timing ?? slow, seed: opts.seed ?? 1 });
}

describe('membership simulation (virtual time, simulated network)', () => {
  it('both nodes come up over both links and stay up for ten minutes without loss', () => {
    const c = pair();
    c.runUntil(600_000);
    // a starts (and sends) first, before b listens: b hears a one keepalive later.
    for (const [me, peer, upAt] of [['a', 'b', 0], ['b', 'a', 1000]] as const) {
      assert.deepEqual(c.seen(me, 'node-up', peer).map((e) => e.at), [upAt]);
      assert.equal(c.seen(me, 'link-up', peer).length, 2);
      assert.equal(c.seen(me, 'node-dead').length, 0);
      assert.equal(c.seen(me, 'late-heartbeat').length, 0);
    }
  });

  it('crash: declared dead exactly deadtime after the last packet, within deadtime + keepalive of the crash', () => {
    const c = pair();
    c.network.conditions('eth0', { delayMs: 3 });
    c.network.conditions('eth1', { delayMs: 3 });
    c.at(10_500, () => c.node('b').crash());
    c.runUntil(30_000);
    const dead = c.seen('a', 'node-dead', 'b');
    assert.equal(dead.length, 1);
    // b's last status left at 10 000 and arrived at 10 003.
    assert.equal(dead[0]!.at, 15_003);
    assert.ok(dead[0]!.at - 10_500 <= slow.deadtimeMs + slow.keepaliveMs);
    assert.deepEqual(c.seen('a', 'link-dead', 'b').map((e) => [(e as { link: string }).link, e.at]), [['eth0', 15_003], ['eth1', 15_003]]);
  });

  it('one medium cut: that link dies, the node does not', () => {
    const c = pair();
    c.at(10_500, () => c.network.cut('eth0'));
    c.runUntil(120_000);
    assert.equal(c.seen('a', 'node-dead').length, 0);
    assert.equal(c.seen('b', 'node-dead').length, 0);
    assert.deepEqual(c.seen('a', 'link-dead', 'b').map((e) => [(e as { link: string }).link, e.at]), [['eth0', 15_000]]);
    assert.equal(c.node('a').membership.node('b')!.state, 'active');
  });

  it('all media cut: each side declares the other dead at last packet + deadtime', () => {
    const c = pair();
    c.at(10_500, () => { c.network.cut('eth0'); c.network.cut('eth1'); });
    c.runUntil(60_000);
    for (const [me, peer] of [['a', 'b'], ['b', 'a']] as const) {
      const dead = c.seen(me, 'node-dead', peer);
      assert.deepEqual(dead.map((e) => e.at), [15_000]);
      assert.ok(dead[0]!.at - 10_500 <= slow.deadtimeMs + slow.keepaliveMs);
    }
  });

  it('a gap shorter than deadtime is a late heartbeat with the interval, not a death', () => {
    const c = pair();
    c.at(10_500, () => { c.network.cut('eth0'); c.network.cut('eth1'); });
    c.at(13_200, () => { c.network.restore('eth0'); c.network.restore('eth1'); });
    c.runUntil(30_000);
    const late = c.seen('a', 'late-heartbeat', 'b');
    assert.deepEqual(late.map((e) => [e.at, (e as { intervalMs: number }).intervalMs]), [[14_000, 4000]]);
    assert.equal(c.seen('a', 'node-dead').length, 0);
  });

  it('30% loss per copy on both media: no false death in ten minutes; every late heartbeat is past warntime', () => {
    const c = pair({ seed: 42 });
    c.network.conditions('eth0', { loss: 0.3, jitterMs: 20 });
    c.network.conditions('eth1', { loss: 0.3, jitterMs: 20 });
    c.runUntil(600_000);
    assert.equal(c.seen('a', 'node-dead').length + c.seen('b', 'node-dead').length, 0);
    assert.ok(c.network.stats.lost > 600, `lost ${c.network.stats.lost}`);
    for (const e of c.events.filter((x) => x.type === 'late-heartbeat')) assert.ok((e as { intervalMs: number }).intervalMs > slow.warntimeMs);
  });

  it('a flapping medium makes its link go dead and up again while the node stays up', () => {
    const c = pair();
    // eth0: 6 s down, 2 s up, five times.
    for (let i = 0; i < 5; i++) {
      c.at(10_500 + i * 8000, () => c.network.cut('eth0'));
      c.at(16_500 + i * 8000, () => c.network.restore('eth0'));
    }
    c.runUntil(60_000);
    const links = c.seen('a', undefined, 'b').filter((e) => e.type === 'link-dead' || e.type === 'link-up');
    assert.deepEqual(
      links.map((e) => `${e.type}:${(e as { link: string }).link}@${e.at}`),
      ['link-up:eth0@0', 'link-up:eth1@0',
        ...[0, 1, 2, 3, 4].flatMap((i) => [`link-dead:eth0@${15_000 + i * 8000}`, `link-up:eth0@${17_000 + i * 8000}`])],
    );
    assert.equal(c.seen('a', 'node-dead').length, 0);
  });

  it('a restart within deadtime is recognised by its generation, without a death', () => {
    const c = pair();
    c.at(10_500, () => c.node('b').crash());
    c.at(12_000, () => c.node('b').start());
    c.runUntil(40_000);
    assert.equal(c.seen('a', 'node-dead').length, 0);
    const r = c.seen('a', 'node-restarted', 'b');
    assert.deepEqual(r.map((e) => [e.at, (e as { generation: number }).generation, (e as { previous: number }).previous]), [[12_000, 2, 1]]);
  });

  it('a restart after death: dead at deadtime, then up again with the new generation', () => {
    const c = pair();
    c.at(10_500, () => c.node('b').crash());
    c.at(20_250, () => c.node('b').start());
    c.runUntil(40_000);
    assert.deepEqual(c.seen('a', 'node-dead', 'b').map((e) => e.at), [15_000]);
    assert.deepEqual(c.seen('a', 'node-up', 'b').map((e) => e.at), [0, 20_250]);
    assert.deepEqual(c.seen('a', 'node-restarted', 'b').map((e) => e.at), [20_250]);
  });

  it('graceful shutdown: the peer sees the death at once (one-way delay), not after deadtime', () => {
    const c = pair();
    c.network.conditions('eth0', { delayMs: 2 });
    c.network.conditions('eth1', { delayMs: 2 });
    c.at(10_500, () => c.node('b').shutdown());
    c.runUntil(30_000);
    const dead = c.seen('a', 'node-dead', 'b');
    assert.deepEqual(dead.map((e) => [e.at, (e as { reason: string }).reason]), [[10_502, 'shutdown']]);
  });

  it('partition of three nodes: both sides declare the other side dead; healing brings them back', () => {
    const c = new SimCluster({ nodes: ['a', 'b', 'c'], media: ['eth0'], timing: slow, seed: 3 });
    c.at(10_500, () => c.network.partition(['a', 'b'], ['c']));
    c.at(20_500, () => c.network.heal());
    c.runUntil(40_000);
    // Nodes start in order a, b, c; a node hears those started before it one keepalive later.
    for (const [me, peer, upAt] of [['a', 'c', 0], ['b', 'c', 0], ['c', 'a', 1000], ['c', 'b', 1000]] as const) {
      assert.deepEqual(c.seen(me, 'node-dead', peer).map((e) => e.at), [15_000], `${me} about ${peer}`);
      assert.deepEqual(c.seen(me, 'node-up', peer).map((e) => e.at), [upAt, 21_000], `${me} about ${peer}`);
    }
    assert.equal(c.seen('a', 'node-dead', 'b').length, 0);
  });

  it('initdead: a peer that never speaks is declared dead at initdead; it comes up when it starts', () => {
    const c = new SimCluster({ nodes: ['a', 'b'], media: ['eth0'], timing: slow, startAt: { b: 14_300 } });
    c.runUntil(30_000);
    const dead = c.seen('a', 'node-dead', 'b');
    assert.deepEqual(dead.map((e) => [e.at, (e as { reason: string }).reason]), [[10_000, 'initdead']]);
    assert.deepEqual(c.seen('a', 'node-up', 'b').map((e) => e.at), [14_300]);
  });

  it('20ms/100ms with jitter and 10% loss: a crash is detected exactly deadtime after the last packet heard', () => {
    const c = pair({ timing: fast, seed: 7 });
    c.network.conditions('eth0', { loss: 0.1, delayMs: 1, jitterMs: 4 });
    c.network.conditions('eth1', { loss: 0.1, delayMs: 1, jitterMs: 4 });
    let lastHeard = 0;
    c.at(60_010, () => {
      c.node('b').crash();
    });
    // Packets in flight at the crash may still arrive; read the last one heard after they have.
    c.at(60_020, () => { lastHeard = c.node('a').membership.node('b')!.lastHeard!; });
    c.runUntil(120_000);
    const dead = c.seen('a', 'node-dead', 'b');
    assert.equal(dead.length, 1);
    assert.equal(dead[0]!.at, lastHeard + fast.deadtimeMs);
    assert.ok(dead[0]!.at - 60_010 <= fast.deadtimeMs + fast.keepaliveMs);
    assert.equal(c.seen('b', 'node-dead').length, 0);
  });
});
