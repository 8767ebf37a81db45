import assert from 'node:assert/strict';
import { execa } from 'execa';
import { Topology } from './lab/netns.ts';

describe('lab: network-namespace topology', function () {
  this.timeout(60_000);
  let topo: Topology;
  before(async () => {
    topo = new Topology('t');
    await topo.build([
      { name: 'a', addresses: ['192.168.136.5/24'] },
      { name: 'b', addresses: ['192.168.136.6/24'] },
    ]);
  });
  after(async () => { await topo?.close(); });

  it('joins hosts on one bridge, never touching the root namespace', async () => {
    const r = await topo.exec(topo.ns('a'), 'ping', ['-c', '1', '-W', '2', '192.168.136.6']);
    assert.equal(r.exitCode, 0);
    const root = await execa('ip', ['-o', 'addr'], { reject: false });
    assert.doesNotMatch(String(root.stdout), /192\.168\.136\./);
  });

  it('cuts and restores a host link at the switch', async () => {
    await topo.setLink('b', false);
    const down = await topo.exec(topo.ns('a'), 'ping', ['-c', '1', '-W', '1', '192.168.136.6'], { reject: false });
    assert.notEqual(down.exitCode, 0);
    await topo.setLink('b', true);
    let ok = false;
    for (let i = 0; i < 10 && !ok; i++) ok = (await topo.exec(topo.ns('a'), 'ping', ['-c', '1', '-W', '1', '192.168.136.6'], { reject: false })).exitCode === 0;
    assert.ok(ok);
  });

  it('removes every namespace it made on close', async () => {
    const t2 = new Topology('u');
    await t2.build([{ name: 'x', addresses: ['10.9.9.1/24'] }]);
    await t2.close();
    await t2.close();
    const list = await execa('ip', ['netns', 'list']);
    assert.doesNotMatch(String(list.stdout), new RegExp(t2.prefix));
  });
});
