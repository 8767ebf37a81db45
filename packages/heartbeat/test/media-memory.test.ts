import assert from 'node:assert/strict';
import { ManualClock } from '@tandem/core';
import { MemoryNetwork } from '../src/media/memory.ts';
import type { Received } from '../src/types.ts';

async function setup(nodes: string[], link = 'eth0', seed = 1) {
  const clock = new ManualClock();
  const net = new MemoryNetwork(clock, seed);
  const got = new Map<string, Received[]>();
  const media = new Map<string, ReturnType<MemoryNetwork['medium']>>();
  for (const n of nodes) {
    const m = net.medium(n, link);
    got.set(n, []);
    await m.start((r) => got.get(n)!.push(r));
    media.set(n, m);
  }
  return { clock, net, got, media };
}

describe('media: in-memory network', () => {
  it('delivers to every other node on the link after the delay, not to the sender', async () => {
    const { clock, net, got, media } = await setup(['a', 'b', 'c']);
    net.conditions('eth0', { delayMs: 5 });
    media.get('a')!.send(Buffer.from('hi'));
    clock.advance(4);
    assert.equal(got.get('b')!.length, 0);
    clock.advance(1);
    assert.deepEqual([...got].map(([n, r]) => [n, r.map((x) => `${x.packet}|${x.link}|${x.from}`)]), [['a', []], ['b', ['hi|eth0|a@eth0']], ['c', ['hi|eth0|a@eth0']]]);
  });
  it('loss is seeded: the same seed loses the same packets', async () => {
    const run = async (seed: number): Promise<number> => {
      const { clock, net, got, media } = await setup(['a', 'b'], 'eth0', seed);
      net.conditions('eth0', { loss: 0.3 });
      for (let i = 0; i < 1000; i++) media.get('a')!.send(Buffer.from(String(i)));
      clock.advance(1);
      return got.get('b')!.length;
    };
    const n = await run(42);
    assert.equal(await run(42), n);
    assert.ok(n > 600 && n < 800, `about 70% arrive (${n})`);
  });
  it('cuts a link for one node or all, partitions and heals', async () => {
    const { clock, net, got, media } = await setup(['a', 'b', 'c']);
    const send = (): void => { media.get('a')!.send(Buffer.from('x')); clock.advance(1); };
    net.cut('eth0', 'b');
    send();
    assert.deepEqual([got.get('b')!.length, got.get('c')!.length], [0, 1]);
    net.restore('eth0', 'b');
    net.partition(['a', 'b'], ['c']);
    send();
    assert.deepEqual([got.get('b')!.length, got.get('c')!.length], [1, 1]);
    net.heal();
    net.cut('eth0');
    send();
    assert.deepEqual([got.get('b')!.length, got.get('c')!.length], [1, 1]);
    net.restore('eth0');
    send();
    assert.deepEqual([got.get('b')!.length, got.get('c')!.length], [2, 2]);
    assert.equal(net.stats.blocked, 4);
  });
  it('separate links are separate media; a closed medium neither sends nor receives', async () => {
    const clock = new ManualClock();
    const net = new MemoryNetwork(clock);
    const got: string[] = [];
    const a0 = net.medium('a', 'eth0'), a1 = net.medium('a', 'eth1'), b0 = net.medium('b', 'eth0'), b1 = net.medium('b', 'eth1');
    for (const m of [a0, a1]) await m.start(() => undefined);
    await b0.start((r) => got.push(`eth0:${r.packet}`));
    await b1.start((r) => got.push(`eth1:${r.packet}`));
    net.cut('eth0');
    a0.send(Buffer.from('1'));
    a1.send(Buffer.from('2'));
    clock.advance(1);
    assert.deepEqual(got, ['eth1:2']);
    await b1.close();
    a1.send(Buffer.from('3'));
    clock.advance(1);
    assert.deepEqual(got, ['eth1:2']);
  });
});
