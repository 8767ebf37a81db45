/**
 * bcast, mcast and ucast for real: two hosts in network namespaces on one bridge (test/lab), each
 * running media-peer.ts, every medium on the same port at once to show they do not hear each
 * other's traffic. Nothing is added to the machine's own namespace.
 */
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { Topology } from '../../../test/lab/netns.ts';
import type { MediumConfig } from '../src/hacf.ts';
import { createMedium, broadcastOf } from '../src/media/index.ts';
import { waitFor } from '../../../test/lab/ports.ts';

const NODE = fileURLToPath(new URL('../../../node_modules/.bin/node', import.meta.url));
const PEER = new URL('./media-peer.ts', import.meta.url).pathname;
const at = { file: 'ha.cf', line: 1 };

interface Line { got?: string; on?: string; link?: string; from?: string; ready?: string; done?: string; error?: string }

function collect(proc: NodeJS.ReadableStream): Line[] {
  const lines: Line[] = [];
  let buf = '';
  proc.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const l = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try { lines.push(JSON.parse(l) as Line); } catch { lines.push({ error: `not json: ${l}` }); }
    }
  });
  return lines;
}

const until = (pred: () => boolean, ms: number): Promise<boolean> => waitFor('a condition', pred, ms, 50, { retryErrors: false }).then(() => true, () => pred());

describe('media: interface lookup', () => {
  it('computes the directed broadcast address like brd +', () => {
    assert.equal(broadcastOf('10.77.0.1', '255.255.255.0'), '10.77.0.255');
    assert.equal(broadcastOf('192.168.136.5', '255.255.254.0'), '192.168.137.255');
    assert.equal(broadcastOf('172.25.42.130', '255.255.255.252'), '172.25.42.131');
  });
  for (const cfg of [
    { type: 'bcast', dev: 'nosuchif0', port: 694, at },
    { type: 'mcast', dev: 'nosuchif0', group: '239.1.1.1', port: 694, ttl: 1, loop: false, at },
    { type: 'ucast', dev: 'nosuchif0', peer: '10.0.0.2', port: 694, at },
  ] as MediumConfig[]) {
    it(`${cfg.type} on a missing interface fails start with E_MEDIA_INTERFACE`, async () => {
      const m = createMedium(cfg);
      await assert.rejects(m.start(() => undefined), (e: Error & { code?: string }) => e.code === 'E_MEDIA_INTERFACE' && /nosuchif0/.test(e.message));
      await m.close();
    });
  }
});

describe('media: bcast, mcast and ucast in network namespaces', function () {
  this.timeout(60_000);
  const topo = new Topology(`m${Math.floor(Math.random() * 1e4)}`);
  after(async () => { await topo.close(); });

  before(async () => {
    await topo.build([{ name: 'a', addresses: [] }, { name: 'b', addresses: [] }]);
    // bcast needs a broadcast address on the interface (brd +), as with heartbeat.
    await topo.exec(topo.ns('a'), 'ip', ['addr', 'add', '10.77.0.1/24', 'brd', '+', 'dev', 'eth0']);
    await topo.exec(topo.ns('b'), 'ip', ['addr', 'add', '10.77.0.2/24', 'brd', '+', 'dev', 'eth0']);
  });

  function media(self: string, peer: string): MediumConfig[] {
    return [
      { type: 'bcast', dev: 'eth0', port: 694, at },
      { type: 'mcast', dev: 'eth0', group: '239.192.77.1', port: 694, ttl: 1, loop: true, at },
      // The same ha.cf on both nodes: a ucast line to the peer and one to the node itself.
      { type: 'ucast', dev: 'eth0', peer, port: 694, at },
      { type: 'ucast', dev: 'eth0', peer: self, port: 694, at },
    ];
  }

  it('each node hears the other on every medium, never itself, and no medium hears another\'s traffic', async () => {
    const a = topo.spawn('a', NODE, [PEER, JSON.stringify({ node: 'A', media: media('10.77.0.1', '10.77.0.2'), intervalMs: 100, durationMs: 30_000 })]);
    const b = topo.spawn('b', NODE, [PEER, JSON.stringify({ node: 'B', media: media('10.77.0.2', '10.77.0.1'), intervalMs: 100, durationMs: 30_000 })]);
    const la = collect(a.proc.stdout!);
    const lb = collect(b.proc.stdout!);
    const errs: string[] = [];
    a.proc.stderr!.on('data', (d: Buffer) => errs.push(d.toString()));
    b.proc.stderr!.on('data', (d: Buffer) => errs.push(d.toString()));
    const heard = (ls: Line[], from: string, type: string): number => ls.filter((l) => l.got?.startsWith(`${from} ${type} `)).length;
    const allHeard = (): boolean => ['bcast', 'mcast', 'ucast'].every((t) => heard(la, 'B', t) >= 5 && heard(lb, 'A', t) >= 5);
    assert.ok(await until(allHeard, 20_000), `not every medium delivered; A: ${JSON.stringify(la.slice(0, 5))} B: ${JSON.stringify(lb.slice(0, 5))} stderr: ${errs.join('')}`);
    await topo.kill(a);
    await topo.kill(b);
    for (const [ls, me] of [[la, 'A'], [lb, 'B']] as const) {
      const got = ls.filter((l) => l.got);
      assert.equal(got.filter((l) => l.got!.startsWith(`${me} `)).length, 0, `${me} heard itself`);
      // A packet sent on one medium arrives on that medium only.
      for (const l of got) assert.equal(l.on, l.got!.split(' ')[1], `${me}: ${JSON.stringify(l)}`);
      assert.ok(got.every((l) => l.link === 'eth0'));
      assert.deepEqual(ls.filter((l) => l.error), []);
    }
    // Sources are the peer's interface address (ephemeral port), as heartbeat sends.
    assert.ok(la.filter((l) => l.got).every((l) => l.from!.startsWith('10.77.0.2:')));
  });

  it('a cut link stops delivery and a restored one resumes it', async () => {
    const cfg = (self: string, peer: string): MediumConfig[] => [{ type: 'ucast', dev: 'eth0', peer, port: 694, at }, { type: 'ucast', dev: 'eth0', peer: self, port: 694, at }];
    const a = topo.spawn('a', NODE, [PEER, JSON.stringify({ node: 'A', media: cfg('10.77.0.1', '10.77.0.2'), intervalMs: 50, durationMs: 40_000 })]);
    const b = topo.spawn('b', NODE, [PEER, JSON.stringify({ node: 'B', media: cfg('10.77.0.2', '10.77.0.1'), intervalMs: 50, durationMs: 40_000 })]);
    const la = collect(a.proc.stdout!);
    collect(b.proc.stdout!);
    const count = (): number => la.filter((l) => l.got?.startsWith('B ')).length;
    assert.ok(await until(() => count() >= 5, 20_000));
    await topo.setLink('b', false);
    await new Promise((r) => setTimeout(r, 300));
    const before = count();
    await new Promise((r) => setTimeout(r, 1000));
    assert.ok(count() - before <= 1, 'nothing arrives over a cut link');
    await topo.setLink('b', true);
    const resumed = count();
    assert.ok(await until(() => count() >= resumed + 5, 20_000), 'delivery resumes');
    await topo.kill(a);
    await topo.kill(b);
  });
});
