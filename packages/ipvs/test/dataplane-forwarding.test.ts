import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import os from 'node:os';
import { createDataplane, type DataplaneEvent, type UserspaceDataplaneApi } from '../src/dataplane/index.ts';
import type { VirtualService } from '../src/model.ts';
import { type Backend, KeepAlive, freePort, get, real, startBackend, startUdpEcho, table, tcpService, until } from './dataplane-helpers.ts';

// Every test uses its own 127.x virtual address (all of 127/8 is local on lo).
let vipSeq = 0;
const nextVip = () => `127.${100 + (process.pid % 50)}.${(Date.now() >> 4) & 255}.${++vipSeq}`;

for (const engine of ['raw', 'net'] as const) describe(`dataplane (${engine} TCP engine): forwarding over loopback`, function () {
  this.timeout(60_000);
  let b1: Backend;
  let b2: Backend;
  let dp: UserspaceDataplaneApi;
  let events: DataplaneEvent[];

  beforeEach(async () => {
    b1 = await startBackend('b1', '127.0.0.1');
    b2 = await startBackend('b2', '127.0.0.1');
    events = [];
    dp = createDataplane({ onEvent: (e) => events.push(e), sourceAddress: '127.0.0.1', engine });
    assert.equal(dp.engine, engine);
  });

  afterEach(async () => {
    await dp.close();
    await b1.close();
    await b2.close();
  });

  async function serve(scheduler: string, w1: number, w2: number, extra: Partial<VirtualService> = {}): Promise<{ vip: string; port: number; svc: VirtualService }> {
    const vip = nextVip();
    const port = await freePort(vip);
    const svc = tcpService(vip, port, scheduler, [real(b1, w1), real(b2, w2)], extra);
    await dp.update(table(svc));
    assert.ok(dp.listening(), 'service is listening');
    return { vip, port, svc };
  }

  async function run(vip: string, port: number, n: number): Promise<string[]> {
    const out: string[] = [];
    for (let i = 0; i < n; i++) out.push(await get(vip, port));
    return out;
  }

  const count = (xs: string[], name: string) => xs.filter((x) => x === name).length;

  it('wrr 5:10 as in seed 003: rr switched to wrr by -E sends b2,b2,b1 over and over', async () => {
    const { vip, port, svc } = await serve('rr', 5, 10);
    assert.deepEqual(await run(vip, port, 4), ['b2', 'b1', 'b2', 'b1']);
    await dp.update(table({ ...svc, scheduler: 'wrr' }));
    const seq = await run(vip, port, 30);
    assert.deepEqual(seq.slice(0, 4), ['b2', 'b2', 'b1', 'b2']);
    assert.equal(count(seq, 'b2'), 20);
    assert.equal(count(seq, 'b1'), 10);
  });

  // Sequential requests from one client: what each kernel scheduler does with them.
  const cases: [string, number, number, (s: string[]) => void][] = [
    ['rr', 1, 1, (s) => assert.deepEqual([count(s, 'b1'), count(s, 'b2')], [6, 6])],
    ['wrr', 1, 2, (s) => assert.deepEqual([count(s, 'b1'), count(s, 'b2')], [4, 8])],
    ['lc', 1, 1, (s) => assert.deepEqual([count(s, 'b1'), count(s, 'b2')], [6, 6])], // closed ones stay inactive
    ['wlc', 1, 3, (s) => assert.ok(count(s, 'b2') >= 8 && count(s, 'b1') >= 2, s.join())],
    ['sed', 1, 3, (s) => assert.equal(count(s, 'b2'), 12)], // no active conns: (0+1)/w favours b2
    ['nq', 1, 3, (s) => assert.equal(count(s, 'b2'), 12)], // b2 is first in list and idle
    ['fo', 1, 3, (s) => assert.equal(count(s, 'b2'), 12)],
    ['ovf', 3, 1, (s) => assert.equal(count(s, 'b1'), 12)],
    ['sh', 1, 1, (s) => assert.equal(new Set(s).size, 1)],
    ['dh', 1, 1, (s) => assert.equal(new Set(s).size, 1)],
    ['mh', 1, 1, (s) => assert.equal(new Set(s).size, 1)],
    ['lblc', 1, 1, (s) => assert.equal(new Set(s).size, 1)],
    ['lblcr', 1, 1, (s) => assert.equal(new Set(s).size, 1)],
  ];
  for (const [name, w1, w2, check] of cases) {
    it(`distributes with ${name} (weights ${w1}:${w2}) as the kernel would`, async () => {
      const { vip, port } = await serve(name, w1, w2);
      check(await run(vip, port, 12));
    });
  }

  it('weight 0 is quiescent: an open connection keeps working, new ones go elsewhere', async () => {
    const { vip, port, svc } = await serve('rr', 1, 1);
    const ka = new KeepAlive(vip, port);
    await ka.connected();
    const first = await ka.request();
    assert.equal(first, 'b2'); // b2 was added last: first in the kernel list
    await dp.update(table({ ...svc, reals: [real(b1, 1), real(b2, 0)] }));
    assert.deepEqual(await run(vip, port, 4), ['b1', 'b1', 'b1', 'b1']);
    assert.equal(await ka.request(), 'b2', 'the open connection still reaches the quiesced server');
    const st = dp.stats().services.get(`tcp ${vip}:${port}`)!;
    assert.equal(st.reals.get(`127.0.0.1:${b2.port}`)!.activeConns, 1);
    ka.close();
  });

  it('a removed real server keeps its open connection until it ends', async () => {
    const { vip, port, svc } = await serve('rr', 1, 1);
    const ka = new KeepAlive(vip, port);
    await ka.connected();
    assert.equal(await ka.request(), 'b2');
    await dp.update(table({ ...svc, reals: [real(b1, 1)] }));
    assert.deepEqual(await run(vip, port, 3), ['b1', 'b1', 'b1']);
    assert.equal(await ka.request(), 'b2');
    assert.equal(await ka.request(), 'b2');
    ka.close();
    await until('connection gone', () => dp.openConnections === 0);
  });

  it('persistence (-p) sticks a client address to its real server; -M groups a network', async () => {
    const { vip, port } = await serve('rr', 1, 1, { persistence: { timeoutS: 300 } });
    const a = await Promise.all([0, 1, 2, 3, 4].map(() => get(vip, port, { localAddress: '127.0.9.1' })));
    assert.equal(new Set(a).size, 1);
    const b = [];
    for (let i = 0; i < 5; i++) b.push(await get(vip, port, { localAddress: '127.0.9.2' }));
    assert.equal(new Set(b).size, 1);
    assert.notEqual(a[0], b[0], 'rr gave the second client the other server');
    // With -M 255.255.255.0 two clients of one /24 share the template.
    const m = await serve('rr', 1, 1, { persistence: { timeoutS: 300, netmask: '255.255.255.0' } });
    const c1 = await get(m.vip, m.port, { localAddress: '127.0.8.1' });
    const c2 = await get(m.vip, m.port, { localAddress: '127.0.8.77' });
    const c3 = await get(m.vip, m.port, { localAddress: '127.0.8.200' });
    assert.deepEqual([c2, c3], [c1, c1]);
    assert.equal(dp.dump({ protocol: 'tcp', address: m.vip, port: m.port })!.persistenceTemplates, 1);
  });

  it('a refused real server is skipped for that connection, with a bounded number of attempts', async () => {
    const deadPort = await freePort('127.0.0.1');
    const vip = nextVip();
    const port = await freePort(vip);
    const svc = tcpService(vip, port, 'rr', [real(b1, 1), { address: '127.0.0.1', port: deadPort, forwarding: 'masq', weight: 1 }]);
    await dp.update(table(svc));
    assert.deepEqual(await run(vip, port, 6), ['b1', 'b1', 'b1', 'b1', 'b1', 'b1']);
    const failed = events.filter((e) => e.code === 'I_IPVS_REAL_FAILED').length;
    assert.ok(failed >= 3 && failed <= 6, `failed attempts ${failed}`);
    // Only dead servers: the client gets a reset after at most connectAttempts tries.
    const dead2 = await freePort('127.0.0.1');
    const only = tcpService(vip, port, 'rr', [{ address: '127.0.0.1', port: deadPort, forwarding: 'masq', weight: 1 }, { address: '127.0.0.1', port: dead2, forwarding: 'masq', weight: 1 }]);
    await dp.update(table(only));
    events.length = 0;
    await assert.rejects(get(vip, port), /ECONNRESET|socket hang up/);
    const tries = events.filter((e) => e.code === 'I_IPVS_REAL_FAILED').length;
    assert.ok(tries >= 1 && tries <= 3, `tries ${tries}`);
    assert.equal(dp.openConnections, 0);
  });

  it('counters move: connections, bytes, active connections and rates', async () => {
    const { vip, port } = await serve('rr', 1, 1);
    await run(vip, port, 10);
    const ka = new KeepAlive(vip, port);
    await ka.connected();
    await ka.request();
    const st = dp.stats().services.get(`tcp ${vip}:${port}`)!;
    assert.equal(st.service.conns, 11);
    assert.ok(st.service.inBytes > 10 * 40 && st.service.outBytes > 10 * 60);
    assert.ok(st.service.inPkts >= 11 && st.service.outPkts >= 11);
    const reals = [...st.reals.values()];
    assert.equal(reals.reduce((a, r) => a + r.activeConns, 0), 1);
    assert.equal(reals.reduce((a, r) => a + r.inactiveConns, 0), 10); // closed ones linger as in TIME_WAIT
    await until('rates estimated', () => dp.stats().services.get(`tcp ${vip}:${port}`)!.service.cps > 0, 8000);
    dp.zero();
    const z = dp.stats().services.get(`tcp ${vip}:${port}`)!;
    assert.equal(z.service.conns, 0);
    assert.equal(z.service.cps, 0);
    ka.close();
  });

  it('fwmark services are kept but reported; gate/ipip reals get one warning per service', async () => {
    const vip = nextVip();
    const port = await freePort(vip);
    await dp.update(table(
      { protocol: 'fwm', address: '', port: 0, fwmark: 7, scheduler: 'rr', reals: [real(b1)] },
      tcpService(vip, port, 'rr', [real(b1, 1, { forwarding: 'gate' }), real(b2, 1, { forwarding: 'ipip' })]),
    ));
    assert.equal(events.filter((e) => e.code === 'W_IPVS_FWMARK').length, 1);
    assert.equal(events.filter((e) => e.code === 'W_IPVS_PROXY_FORWARDING').length, 1);
    assert.equal(new Set(await run(vip, port, 4)).size, 2, 'gate/ipip reals are forwarded by proxy');
    await dp.update(table(
      { protocol: 'fwm', address: '', port: 0, fwmark: 7, scheduler: 'rr', reals: [real(b1)] },
      tcpService(vip, port, 'rr', [real(b1, 2, { forwarding: 'gate' }), real(b2, 1, { forwarding: 'ipip' })]),
    ));
    assert.equal(events.filter((e) => e.code === 'W_IPVS_PROXY_FORWARDING').length, 1);
    assert.ok(dp.stats().services.has('fwm 7'));
  });

  it('forwards UDP per client flow to a UDP echo server and counts flows as inactive', async () => {
    const echo = await startUdpEcho('127.0.0.1');
    try {
      const vip = nextVip();
      const port = await freePort(vip);
      await dp.update(table({ protocol: 'udp', address: vip, port, scheduler: 'rr', reals: [{ address: '127.0.0.1', port: echo.port, forwarding: 'masq', weight: 1 }] }));
      assert.ok(dp.listening(), 'UDP service is listening');
      const client = dgram.createSocket('udp4');
      const answers: string[] = [];
      client.on('message', (m) => answers.push(String(m)));
      await new Promise<void>((r) => client.bind(0, '127.0.0.1', () => r()));
      for (let i = 0; i < 3; i++) client.send(`ping${i}`, port, vip);
      await until('three echoes', () => answers.length === 3);
      assert.deepEqual(answers.sort(), ['echo:ping0', 'echo:ping1', 'echo:ping2']);
      const st = dp.stats().services.get(`udp ${vip}:${port}`)!;
      assert.equal(st.service.conns, 1);
      assert.equal(st.service.inPkts, 3);
      assert.equal(st.service.outPkts, 3);
      assert.equal([...st.reals.values()][0].inactiveConns, 1);
      client.close();
    } finally {
      echo.close();
    }
  });

  it('forwards over IPv6 (::1) when the host has it', async function () {
    const has6 = Object.values(os.networkInterfaces()).flat().some((i) => i?.address === '::1');
    if (!has6) this.skip();
    const v6 = await startBackend('v6', '::1');
    try {
      const port = await freePort('::1');
      await dp.update(table({ protocol: 'tcp', address: '::1', port, scheduler: 'rr', reals: [real(v6), real(b1)] }));
      const seen = [await get('::1', port), await get('::1', port)];
      assert.deepEqual(seen.sort(), ['b1', 'v6']);
      assert.ok(dp.stats().services.has(`tcp [::1]:${port}`));
    } finally {
      await v6.close();
    }
  });

  it('deleting a service stops listening but lets its open connections finish', async () => {
    const { vip, port } = await serve('rr', 1, 1);
    const ka = new KeepAlive(vip, port);
    await ka.connected();
    const who = await ka.request();
    await dp.update(table());
    await assert.rejects(get(vip, port), /ECONNREFUSED/);
    assert.equal(await ka.request(), who);
    ka.close();
  });
});
