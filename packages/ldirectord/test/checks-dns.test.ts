import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeAnswer, encodeQuery, queryName } from '../src/checks/dns.ts';
import { check, type Daemon, freePort, freeUdpPort, silentServer, silentUdp, spec, startDaemon, waitForPort } from './checks-support.ts';

// service=dns against dnsmasq (Debian package) with a private command line: no resolv.conf, no
// hosts file, one A and one PTR record, listening on 127.0.0.1 (udp and tcp) only.
describe('checks: service=dns against dnsmasq', function () {
  this.timeout(60_000);
  let dir: string;
  let port: number;
  let dnsmasq: Daemon | undefined;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tandem-dnsmasq-'));
    port = await freePort();
    dnsmasq = startDaemon('/usr/sbin/dnsmasq', [
      '--keep-in-foreground', '--conf-file=/dev/null', '--no-resolv', '--no-hosts', '--listen-address=127.0.0.1',
      '--bind-interfaces', `--port=${port}`, '--address=/www.example.test/192.0.2.10', '--host-record=multi.example.test,192.0.2.21',
      '--host-record=multi.example.test,192.0.2.22', '--ptr-record=10.2.0.192.in-addr.arpa,www.example.test', '--user=root',
      `--pid-file=${join(dir, 'pid')}`, '--log-facility=-',
    ]);
    await waitForPort('127.0.0.1', port, 20_000, dnsmasq);
  });
  after(async () => {
    await dnsmasq?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const dns = (over: Parameters<typeof spec>[0] = {}) => spec({ service: 'dns', protocol: 'udp', port, request: '/www.example.test', receive: '192.0.2.10', ...over });

  it('udp: the A record matching receive is up', async () => {
    const v = await check(dns());
    assert.deepEqual([v.up, v.reason], [true, 'A www.example.test = 192.0.2.10']);
  });

  it('tcp virtual: the same query over TCP', async () => {
    const v = await check(dns({ protocol: 'tcp', receive: '^192\\.0\\.2\\.' }));
    assert.equal(v.up, true, v.reason);
  });

  it('a request that is an IP address asks for the PTR name', async () => {
    const v = await check(dns({ request: '/192.0.2.10', receive: 'www\\.example' }));
    assert.deepEqual([v.up, v.reason], [true, 'PTR 10.2.0.192.in-addr.arpa = www.example.test']);
  });

  it('any of several addresses may match', async () => {
    const v = await check(dns({ request: '/multi.example.test', receive: '192.0.2.22' }));
    assert.equal(v.up, true, v.reason);
  });

  it('an answer that does not match receive is down', async () => {
    const v = await check(dns({ receive: '198.51.100.1' }));
    assert.equal(v.up, false);
    assert.match(v.reason, /192\.0\.2\.10 did not match/);
  });

  it('an empty receive is always down, as in ldirectord', async () => {
    const v = await check(dns({ receive: '' }));
    assert.equal(v.up, false);
    assert.match(v.reason, /empty receive/);
  });

  it('a name the server refuses or does not know is down', async () => {
    const v = await check(dns({ request: '/nothere.example.test', receive: '.' }));
    assert.equal(v.up, false);
    assert.match(v.reason, /REFUSED|NXDOMAIN/);
  });

  it('refused ports (udp and tcp) and silent servers are down', async () => {
    const u = await check(dns({ port: await freeUdpPort() }));
    assert.deepEqual([u.up, u.reason], [false, 'connection refused']);
    const t = await check(dns({ protocol: 'tcp', port: await freePort() }));
    assert.deepEqual([t.up, t.reason], [false, 'connection refused']);
    const su = await silentUdp();
    const st = await silentServer();
    try {
      const a = await check(dns({ port: su.port, negotiateTimeoutMs: 300 }));
      assert.deepEqual([a.up, a.reason], [false, 'timeout after 300 ms']);
      const b = await check(dns({ protocol: 'tcp', port: st.port, negotiateTimeoutMs: 300 }));
      assert.deepEqual([b.up, b.reason], [false, 'timeout after 300 ms']);
    } finally {
      await Promise.all([su.close(), st.close()]);
    }
  });

  it('query encoding: names, PTR for v4 and v6, compression pointers in answers', () => {
    assert.deepEqual(queryName('/www.example.test.'), { name: 'www.example.test', type: 1 });
    assert.deepEqual(queryName('10.0.0.1'), { name: '1.0.0.10.in-addr.arpa', type: 12 });
    assert.equal(queryName('2001:db8::1').name, `1.${'0.'.repeat(23)}8.b.d.0.1.0.0.2.ip6.arpa`);
    const q = encodeQuery(0x1234, 'a.b', 1);
    // reply = query + one answer whose name is a pointer to offset 12
    const ans = Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 1, 2, 3]);
    const reply = Buffer.concat([q, ans]);
    reply.writeUInt16BE(0x8180, 2);
    reply.writeUInt16BE(1, 6);
    assert.deepEqual(decodeAnswer(reply, 0x1234), { rcode: 0, values: ['10.1.2.3'] });
  });
});
