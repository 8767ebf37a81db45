import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryLogger, controlRequest } from '@tandem/core';
import { HeartbeatDaemon, type DaemonConfig, type ResourceManagerPlugin, type RmContext } from '../src/daemon.ts';
import type { MembershipEvent } from '../src/membership.ts';
import { encodePacket, buildFields, activeKey, type HbMessage } from '../src/codec.ts';
import { MemoryNetwork } from '../src/media/memory.ts';
import type { AuthKeys } from '../src/types.ts';
import { waitFor } from '../../../test/lab/ports.ts';

/** The media's in-memory network on the real clock, with whole-node cuts. */
class Hub extends MemoryNetwork {
  cutNode(node: string, links: string[]) {
    for (const l of links) this.cut(l, node);
  }
  restoreNode(node: string, links: string[]) {
    for (const l of links) this.restore(l, node);
  }
}

const keys: AuthKeys = { active: 1, keys: new Map([[1, { method: 'sha1', secret: 'test-secret' }]]) };
const timing = { keepaliveMs: 50, deadtimeMs: 1000, warntimeMs: 300, initdeadMs: 3000 };

const until = (what: string, cond: () => boolean, ms = 10_000): Promise<void> => waitFor(what, cond, ms, 10, { retryErrors: false }).then(() => {});

class RecordingRm implements ResourceManagerPlugin {
  events: MembershipEvent[] = [];
  messages: HbMessage[] = [];
  ctx: RmContext | undefined;
  stopped = false;
  start(ctx: RmContext) { this.ctx = ctx; }
  onMembership(e: MembershipEvent) { this.events.push(e); }
  onMessage(m: HbMessage) { this.messages.push(m); }
  onControl(req: { cmd: string }) {
    if (req.cmd === 'standby') return { ok: true as const, asked: (req as { resources?: string }).resources };
    return undefined;
  }
  resourceStatus() { return 'all'; }
  async stop() {
    this.stopped = true;
    this.ctx!.send([['t', 'resource'], ['rsc_hold', 'none'], ['rtype', 'full'], ['isstable', '0'], ['info', 'shutdown']]);
  }
}

describe('heartbeat daemon in process (in-memory media)', function () {
  this.timeout(60_000);
  let dir: string;
  const daemons: HeartbeatDaemon[] = [];
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'hb-daemon-')); });
  afterEach(async () => {
    await Promise.allSettled(daemons.splice(0).map((d) => d.stop()));
    rmSync(dir, { recursive: true, force: true });
  });

  function node(hub: Hub, name: string, nodes: string[], links: string[], extra: { rm?: ResourceManagerPlugin; socket?: boolean } = {}) {
    const config: DaemonConfig = { nodeName: name, nodes, timing, authKeys: keys };
    const logger = new MemoryLogger();
    const d = new HeartbeatDaemon({
      config, logger, media: links.map((l) => hub.medium(name, l)), stateDir: join(dir, name),
      controlSocket: extra.socket ? join(dir, `${name}.sock`) : false, resourceManager: extra.rm,
    });
    daemons.push(d);
    return { d, logger };
  }
  const state = (d: HeartbeatDaemon, peer: string) => d.membership.node(peer)?.state;

  it('two nodes see each other up and active over two links; cutting one link is not a death', async () => {
    const hub = new Hub();
    const a = node(hub, 'a', ['a', 'b'], ['eth0', 'eth1']);
    const b = node(hub, 'b', ['a', 'b'], ['eth0', 'eth1']);
    await a.d.start();
    await b.d.start();
    await until('both active', () => state(a.d, 'b') === 'active' && state(b.d, 'a') === 'active' && a.d.localState === 'active');
    assert.deepEqual(a.d.membership.node('b')!.links.map((l) => l.state), ['up', 'up']);
    hub.cutNode('b', ['eth0']);
    await until('eth0 dead', () => a.d.membership.node('b')!.links[0]!.state === 'dead');
    assert.equal(state(a.d, 'b'), 'active');
    assert.match(a.logger.text(), /Link b:eth0 dead\./);
    assert.doesNotMatch(a.logger.text(), /is dead/);
  });

  it('all links cut: the peer is declared dead; late packets are warned about first', async () => {
    const hub = new Hub();
    const a = node(hub, 'a', ['a', 'b'], ['eth0']);
    const b = node(hub, 'b', ['a', 'b'], ['eth0']);
    await a.d.start();
    await b.d.start();
    await until('b up', () => state(a.d, 'b') === 'active');
    hub.cutNode('b', ['eth0']);
    await new Promise((r) => setTimeout(r, 500));
    hub.restoreNode('b', ['eth0']);
    await until('late heartbeat', () => /Late heartbeat: Node b: interval \d+ ms/.test(a.logger.text()));
    assert.equal(state(a.d, 'b'), 'active');
    const t0 = Date.now();
    hub.cutNode('b', ['eth0']);
    await until('b dead', () => state(a.d, 'b') === 'dead');
    assert.ok(Date.now() - t0 >= timing.deadtimeMs - timing.keepaliveMs, 'not before deadtime');
    assert.match(a.logger.text(), /node b: is dead/);
  });

  it('a restarted peer is recognised by its new generation', async () => {
    const hub = new Hub();
    const a = node(hub, 'a', ['a', 'b'], ['eth0']);
    const b1 = node(hub, 'b', ['a', 'b'], ['eth0']);
    await a.d.start();
    await b1.d.start();
    await until('b up', () => state(a.d, 'b') === 'active');
    const gen1 = a.d.membership.node('b')!.generation!;
    assert.equal(gen1, b1.d.generation);
    // A crash: silence without a goodbye, then a new process on the same state dir.
    hub.cutNode('b', ['eth0']);
    await b1.d.stop();
    hub.restoreNode('b', ['eth0']);
    const b2 = node(hub, 'b', ['a', 'b'], ['eth0']);
    await b2.d.start();
    assert.ok(b2.d.generation > gen1);
    assert.equal(Number(readFileSync(join(dir, 'b', 'hb_generation'), 'utf8')), b2.d.generation);
    await until('restart seen', () => /Heartbeat restart on node b/.test(a.logger.text()));
    assert.equal(a.d.membership.node('b')!.generation, b2.d.generation);
    await until('b active again', () => state(a.d, 'b') === 'active');
  });

  it('graceful stop: the RM releases first, then the peer sees the node dead at once', async () => {
    const hub = new Hub();
    const rmA = new RecordingRm();
    const rmB = new RecordingRm();
    const a = node(hub, 'a', ['a', 'b'], ['eth0'], { rm: rmA });
    const b = node(hub, 'b', ['a', 'b'], ['eth0'], { rm: rmB });
    await a.d.start();
    await b.d.start();
    await until('b up', () => state(a.d, 'b') === 'active');
    const stopAt = Date.now();
    await b.d.stop();
    await b.d.stop(); // safe twice
    assert.equal(b.d.state, 'stopped');
    assert.ok(rmB.stopped);
    await until('b dead', () => state(a.d, 'b') === 'dead');
    const dead = rmA.events.find((e) => e.type === 'node-dead')!;
    assert.equal((dead as { reason: string }).reason, 'shutdown');
    assert.ok(Date.now() - stopAt < timing.deadtimeMs, 'seen before the dead time could have passed');
    // The RM's release message arrived before the death.
    const rel = rmA.messages.find((m) => m.type === 'resource');
    assert.equal(rel?.fields.get('info'), 'shutdown');
    assert.ok(rmA.messages.findIndex((m) => m.type === 'resource') < rmA.messages.findIndex((m) => m.type === 'shutdone'));
    assert.match(a.logger.text(), /Received shutdown notice from 'b'/);
  });

  it('three nodes: one dies, the other two agree and stay up with each other', async () => {
    const hub = new Hub();
    const all = ['a', 'b', 'c'];
    const n = all.map((x) => node(hub, x, all, ['eth0']));
    for (const x of n) await x.d.start();
    await until('all active', () => n.every((x) => all.every((p) => p === x.d.config.nodeName || state(x.d, p) === 'active')));
    hub.cutNode('c', ['eth0']);
    await until('c dead for a and b', () => state(n[0]!.d, 'c') === 'dead' && state(n[1]!.d, 'c') === 'dead');
    assert.equal(state(n[0]!.d, 'b'), 'active');
    assert.equal(state(n[1]!.d, 'a'), 'active');
    await until('a and b dead for c', () => state(n[2]!.d, 'a') === 'dead' && state(n[2]!.d, 'b') === 'dead');
  });

  it('drops forged, foreign and replayed packets, counted per reason; answers status on its control socket', async () => {
    const hub = new Hub();
    const rm = new RecordingRm();
    const a = node(hub, 'a', ['a', 'b'], ['eth0'], { socket: true, rm });
    const b = node(hub, 'b', ['a', 'b'], ['eth0']);
    await a.d.start();
    await b.d.start();
    await until('b up', () => state(a.d, 'b') === 'active');
    // Capture one of b's packets on the wire and replay it; forge one with a wrong key.
    const tap = hub.medium('tap', 'eth0');
    let captured: Buffer | undefined;
    await tap.start((r) => { if (r.from === 'b@eth0') captured ??= r.packet; });
    await until('captured', () => captured !== undefined);
    // Restart b: the captured packet is now of an older generation, a replay.
    await b.d.stop();
    const b2 = node(hub, 'b', ['a', 'b'], ['eth0']);
    await b2.d.start();
    await until('b2 seen', () => a.d.membership.node('b')!.generation === b2.d.generation && state(a.d, 'b') === 'active');
    tap.send(captured!);
    tap.send(Buffer.from('###\nnot a packet'));
    const wrongKey = captured!.toString('latin1').replace(/[0-9a-f]{40},$/, '0'.repeat(40) + ',');
    tap.send(Buffer.from(wrongKey, 'latin1'));
    const fromStranger = encodePacket(buildFields([['t', 'status'], ['st', 'active']], {
      src: 'x', srcuuid: Buffer.alloc(16), seq: 1, hg: 1, ts: 0, ttl: 3,
    }), activeKey(keys));
    tap.send(fromStranger);
    const sock = join(dir, 'a.sock');
    let st: Record<string, unknown> = {};
    await until('drops counted', () => {
      void controlRequest(sock, { cmd: 'status' }).then((r) => { if (r.ok) st = r.status as Record<string, unknown>; });
      const d = st.drops as Record<string, number> | undefined;
      return !!d && d.replay >= 1 && d.malformed >= 1 && d.bad_auth >= 1 && d.unknown_node >= 1;
    });
    assert.equal(st.node, 'a');
    assert.equal(st.resources, 'all');
    const nodes = st.nodes as { name: string; state: string; links: { name: string; state: string }[] }[];
    assert.deepEqual(nodes.map((x) => [x.name, x.state]), [['a', 'active'], ['b', 'active']]);
    const m = await controlRequest(sock, { cmd: 'metrics' });
    assert.ok(m.ok);
    assert.match(String(m.ok && m.text), /tandem_heartbeat_packets_dropped_total\{reason="replay"\} \d+/);
    assert.match(String(m.ok && m.text), /tandem_heartbeat_node_up\{node="b"\} 1/);
    const sb = await controlRequest(sock, { cmd: 'standby', resources: 'foreign' });
    assert.deepEqual(sb, { ok: true, asked: 'foreign' });
    await tap.close();
    // `wait` answers when the event happens, with its wall-clock time.
    const waiting = controlRequest(sock, { cmd: 'wait', event: 'node-dead', node: 'b', timeoutMs: 20_000 }, 25_000);
    await new Promise((r) => setTimeout(r, 50));
    const cutAt = Date.now();
    hub.cutNode('b', ['eth0']);
    const w = await waiting;
    assert.ok(w.ok);
    assert.equal((w.event as { node: string }).node, 'b');
    assert.ok((w.wallMs as number) >= cutAt);
  });
});
