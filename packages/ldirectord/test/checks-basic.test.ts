import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import dgram from 'node:dgram';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { externalArgs } from '../src/checks/external.ts';
import { hidePassword } from '../src/checks/radius.ts';
import { simpletcpPayload } from '../src/checks/simpletcp.ts';
import { check, freePort, freeUdpPort, silentServer, silentUdp, spec } from './checks-support.ts';

const PING_TS = fileURLToPath(new URL('../src/checks/ping.ts', import.meta.url));

async function tcpServer(onConn: (s: net.Socket) => void): Promise<{ port: number; close: () => Promise<void> }> {
  const socks = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    socks.add(s);
    s.on('close', () => socks.delete(s));
    s.on('error', () => {});
    onConn(s);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    port: (srv.address() as net.AddressInfo).port,
    close: () => new Promise<void>((r) => {
      for (const s of socks) s.destroy();
      srv.close(() => r());
    }),
  };
}

async function udpServer(onMsg: (msg: Buffer, reply: (b: Buffer | string) => void) => void): Promise<{ port: number; close: () => Promise<void> }> {
  const s = dgram.createSocket('udp4');
  s.on('message', (msg, rinfo) => onMsg(msg, (b) => s.send(b, rinfo.port, rinfo.address)));
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  return { port: s.address().port, close: () => new Promise<void>((r) => s.close(() => r())) };
}

describe('checks: checktype connect', function () {
  this.timeout(20_000);
  it('is up when the port accepts, down when refused', async () => {
    const srv = await tcpServer(() => {});
    try {
      const v = await check(spec({ checktype: 'connect', port: srv.port }));
      assert.deepEqual([v.up, v.reason], [true, 'connected']);
    } finally {
      await srv.close();
    }
    const v = await check(spec({ checktype: 'connect', port: await freePort() }));
    assert.deepEqual([v.up, v.reason], [false, 'connection refused']);
  });

  it('honours the abort signal', async () => {
    const ctl = new AbortController();
    ctl.abort();
    const { runCheck } = await import('../src/checks/index.ts');
    const v = await runCheck(spec({ checktype: 'connect', port: 9 }), ctl.signal);
    assert.equal(v.up, false);
    assert.equal(v.reason, 'check aborted');
  });
});

describe('checks: checktype ping (system ping)', function () {
  this.timeout(30_000);
  it('127.0.0.1 answers: up', async () => {
    const v = await check(spec({ checktype: 'ping', checkTimeoutMs: 2000 }));
    assert.equal(v.up, true, v.reason);
  });

  it('connect on a udp virtual is a ping, as in ldirectord', async () => {
    const v = await check(spec({ checktype: 'connect', protocol: 'udp', port: await freeUdpPort() }));
    assert.deepEqual([v.up, v.reason], [true, 'echo reply']);
  });

  it('an address that does not answer is down after checkcount × checktimeout (inside a private network namespace)', async () => {
    // A veth peer without an address in a throw-away namespace (unshare -n): ARP never resolves,
    // so no echo reply comes back. Nothing touches the machine's own namespace.
    const script = `import { checkPing } from ${JSON.stringify(PING_TS)};
const v = await checkPing({ checktype: 'ping', service: 'none', protocol: 'tcp', host: '10.9.9.2', port: 0, realPort: 0, virtualAddress: '10.9.9.100', virtualPort: 80, httpMethod: 'GET', checkTimeoutMs: 1000, negotiateTimeoutMs: 1000, checkCount: 2 }, new AbortController().signal);
console.log(JSON.stringify(v));`;
    const sh = `ip link set lo up && ip link add v0 type veth peer name v1 && ip addr add 10.9.9.1/24 dev v0 && ip link set v0 up && ip link set v1 up && exec "$0" --input-type=module -e "$1"`;
    const r = await execa('unshare', ['-n', 'sh', '-c', sh, process.execPath, script], { reject: false, timeout: 20_000 });
    assert.equal(r.exitCode, 0, r.stderr);
    const v = JSON.parse(r.stdout.trim().split('\n').pop()!);
    assert.equal(v.up, false);
    assert.equal(v.reason, 'no echo reply within 2000 ms');
    assert.ok(v.durationMs >= 1500, `took ${v.durationMs} ms`);
  });
});

describe('checks: checktype external and external-perl', function () {
  this.timeout(30_000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'tandem-ext-'));
    writeFileSync(join(dir, 'check.sh'), `#!/bin/sh\necho "$#:$*" >> ${dir}/args.log\nexit $(cat ${dir}/code)\n`);
    chmodSync(join(dir, 'check.sh'), 0o755);
    writeFileSync(join(dir, 'slow.sh'), '#!/bin/sh\nexec sleep 30\n');
    chmodSync(join(dir, 'slow.sh'), 0o755);
    writeFileSync(join(dir, 'ok.pl'), 'my ($vip, $vport, $rip, $rport) = @ARGV;\nexit 4 unless $rport eq "8080";\n# falls off the end: up\n');
    writeFileSync(join(dir, 'die.pl'), 'die "backend broken\\n";\n');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('passes VIP VPORT RIP RPORT and counts exit 0 as up', async () => {
    writeFileSync(join(dir, 'code'), '0');
    const v = await check(spec({ checktype: 'external', checkcommand: join(dir, 'check.sh'), host: '127.0.0.11', realPort: 8080, virtualAddress: '127.0.0.100', virtualPort: 8080 }));
    assert.equal(v.up, true, v.reason);
    writeFileSync(join(dir, 'code'), '1');
    const d = await check(spec({ checktype: 'external', checkcommand: join(dir, 'check.sh'), host: '127.0.0.12', realPort: 8080, virtualAddress: '7', virtualPort: 0, protocol: 'fwm' }));
    assert.equal(d.up, false);
    assert.match(d.reason, /exited 1/);
    assert.deepEqual(readFileSync(join(dir, 'args.log'), 'utf8').trim().split('\n'), ['4:127.0.0.100 8080 127.0.0.11 8080', '4:7 0 127.0.0.12 8080']);
  });

  it('argument order matches ldirectord', () => {
    assert.deepEqual(externalArgs(spec({ host: '10.0.0.1', realPort: 81, virtualAddress: '10.0.0.100', virtualPort: 80 })), ['10.0.0.100', '80', '10.0.0.1', '81']);
  });

  it('kills a command that outlives checktimeout: down', async () => {
    const t0 = Date.now();
    const v = await check(spec({ checktype: 'external', checkcommand: join(dir, 'slow.sh'), checkTimeoutMs: 500 }));
    assert.equal(v.up, false);
    assert.match(v.reason, /killed after 500 ms/);
    assert.ok(Date.now() - t0 < 10_000);
  });

  it('a checkcommand with arguments cannot be run (no shell, as ldirectord): down', async () => {
    const v = await check(spec({ checktype: 'external', checkcommand: '/bin/sh -c true' }));
    assert.equal(v.up, false);
    assert.match(v.reason, /cannot run \/bin\/sh -c true: ENOENT/);
  });

  it('external-perl: falling off the end is up, exit(n) and die are down', async () => {
    const ok = await check(spec({ checktype: 'external-perl', checkcommand: join(dir, 'ok.pl'), realPort: 8080 }));
    assert.equal(ok.up, true, ok.reason);
    const four = await check(spec({ checktype: 'external-perl', checkcommand: join(dir, 'ok.pl'), realPort: 80 }));
    assert.deepEqual([four.up, /exited 4/.test(four.reason)], [false, true]);
    const died = await check(spec({ checktype: 'external-perl', checkcommand: join(dir, 'die.pl') }));
    assert.equal(died.up, false);
    assert.match(died.reason, /backend broken/);
  });
});

describe('checks: on, off, service=none, service=oracle', () => {
  it('on is up, off is down, none is always up, oracle is refused clearly', async () => {
    assert.equal((await check(spec({ checktype: 'on' }))).up, true);
    assert.equal((await check(spec({ checktype: 'off' }))).up, false);
    const none = await check(spec({ service: 'none', port: await freePort() }));
    assert.equal(none.up, true, 'service=none never takes a real down, as ldirectord');
    const oracle = await check(spec({ service: 'oracle', port: 1521 }));
    assert.equal(oracle.up, false);
    assert.match(oracle.reason, /not implemented/);
  });
});

describe('checks: service=simpletcp', function () {
  this.timeout(20_000);
  let srv: { port: number; close: () => Promise<void> };
  const received: string[] = [];
  before(async () => {
    srv = await tcpServer((s) => {
      let data = '';
      s.on('data', (d) => (data += d.toString('latin1')));
      s.on('end', () => {
        received.push(data);
        const first = data.split('\n')[0] ?? '';
        s.end(`HTTP/1.0 200 OK\r\nX-Echo: ${first}\r\n\r\nhello\n`);
      });
    });
  });
  after(() => srv.close());

  it('sends the request without its leading slash, \\n as newline, shuts down writing, matches a line', async () => {
    const v = await check(spec({ service: 'simpletcp', port: srv.port, request: '/GET /x HTTP/1.0\\n\\n', receive: '^HTTP/1.0 200' }));
    assert.equal(v.up, true, v.reason);
    assert.equal(received.pop(), 'GET /x HTTP/1.0\n\n');
    assert.equal(simpletcpPayload('/PING\\n'), 'PING\n');
  });

  it('wrong receive, refused port and a silent server are down', async () => {
    const wrong = await check(spec({ service: 'simpletcp', port: srv.port, request: '/x', receive: '^500' }));
    assert.equal(wrong.up, false);
    assert.match(wrong.reason, /no line of 4 matched/);
    const refused = await check(spec({ service: 'simpletcp', port: await freePort(), request: '/x', receive: 'y' }));
    assert.deepEqual([refused.up, refused.reason], [false, 'connection refused']);
    const silent = await silentServer();
    try {
      const t = await check(spec({ service: 'simpletcp', port: silent.port, request: '/x', receive: 'y', negotiateTimeoutMs: 300 }));
      assert.deepEqual([t.up, t.reason], [false, 'timeout after 300 ms']);
    } finally {
      await silent.close();
    }
  });
});

describe('checks: service=nntp', function () {
  this.timeout(20_000);
  it('a 2xx greeting is up, another is down, refused and silent are down', async () => {
    const good = await tcpServer((s) => s.write('200 news.example.test InterNetNews ready\r\n'));
    const bad = await tcpServer((s) => s.end('502 You have no permission to talk\r\n'));
    const silent = await silentServer();
    try {
      const v = await check(spec({ service: 'nntp', port: good.port }));
      assert.equal(v.up, true, v.reason);
      const b = await check(spec({ service: 'nntp', port: bad.port }));
      assert.equal(b.up, false);
      assert.match(b.reason, /502/);
      const r = await check(spec({ service: 'nntp', port: await freePort() }));
      assert.deepEqual([r.up, r.reason], [false, 'connection refused']);
      const t = await check(spec({ service: 'nntp', port: silent.port, negotiateTimeoutMs: 300 }));
      assert.deepEqual([t.up, t.reason], [false, 'timeout after 300 ms']);
    } finally {
      await Promise.all([good.close(), bad.close(), silent.close()]);
    }
  });
});

describe('checks: service=sip', function () {
  this.timeout(20_000);
  const requests: string[] = [];
  const answer = (req: string, code: string): string => {
    const via = /^Via: .*$/m.exec(req)?.[0] ?? '';
    return `SIP/2.0 ${code}\r\n${via}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`;
  };

  it('udp: OPTIONS sip:<login>, up on SIP/2.0 200 OK, down on another status, refused or no answer', async () => {
    const ok = await udpServer((m, reply) => {
      requests.push(m.toString());
      reply(answer(m.toString(), '200 OK'));
    });
    const nf = await udpServer((m, reply) => reply(answer(m.toString(), '404 Not Found')));
    const silent = await silentUdp();
    try {
      const v = await check(spec({ service: 'sip', protocol: 'udp', port: ok.port, login: 'monitor@example.test' }));
      assert.equal(v.up, true, v.reason);
      assert.match(requests[0]!, /^OPTIONS sip:monitor@example\.test SIP\/2\.0\r\n/);
      assert.match(requests[0]!, /\r\nVia: SIP\/2\.0\/UDP /);
      const n = await check(spec({ service: 'sip', protocol: 'udp', port: nf.port }));
      assert.equal(n.up, false);
      assert.match(n.reason, /404 Not Found/);
      const r = await check(spec({ service: 'sip', protocol: 'udp', port: await freeUdpPort() }));
      assert.deepEqual([r.up, r.reason], [false, 'connection refused']);
      const t = await check(spec({ service: 'sip', protocol: 'udp', port: silent.port, negotiateTimeoutMs: 300 }));
      assert.deepEqual([t.up, t.reason], [false, 'timeout after 300 ms']);
    } finally {
      await Promise.all([ok.close(), nf.close(), silent.close()]);
    }
  });

  it('tcp: the same over a TCP connection', async () => {
    const srv = await tcpServer((s) => {
      let buf = '';
      s.on('data', (d) => {
        buf += d.toString();
        if (buf.includes('\r\n\r\n')) s.write(answer(buf, '200 OK'));
      });
    });
    try {
      const v = await check(spec({ service: 'sip', protocol: 'tcp', port: srv.port }));
      assert.equal(v.up, true, v.reason);
    } finally {
      await srv.close();
    }
  });
});

describe('checks: service=radius', function () {
  this.timeout(20_000);
  const SECRET = 'testing123';
  /** A small RADIUS server: Access-Accept for alice/wonderland, Access-Reject otherwise. */
  function radiusReply(req: Buffer, secret: string): Buffer {
    const id = req[1]!;
    const auth = req.subarray(4, 20);
    let user = '';
    let hidden: Buffer = Buffer.alloc(0);
    for (let p = 20; p < req.length;) {
      const t = req[p]!;
      const l = req[p + 1]!;
      if (t === 1) user = req.toString('utf8', p + 2, p + l);
      if (t === 2) hidden = req.subarray(p + 2, p + l);
      p += l;
    }
    const clear = hidePassword('', secret, auth); // keystream of the first block for an empty password
    const pw = Buffer.alloc(hidden.length);
    for (let i = 0; i < 16 && i < hidden.length; i++) pw[i] = hidden[i]! ^ clear[i]!;
    const password = pw.toString('utf8').replace(/\0+$/, '');
    const code = user === 'alice' && password === 'wonderland' ? 2 : 3;
    const out = Buffer.alloc(20);
    out[0] = code;
    out[1] = id;
    out.writeUInt16BE(20, 2);
    const ra = createHash('md5').update(out.subarray(0, 4)).update(auth).update(secret).digest();
    ra.copy(out, 4);
    return out;
  }

  it('Access-Accept is up; Access-Reject is up too (as ldirectord: the server answered)', async () => {
    const srv = await udpServer((m, reply) => reply(radiusReply(m, SECRET)));
    try {
      const acc = await check(spec({ service: 'radius', protocol: 'udp', port: srv.port, login: 'alice', passwd: 'wonderland', secret: SECRET }));
      assert.deepEqual([acc.up, acc.reason], [true, 'Access-Accept']);
      const rej = await check(spec({ service: 'radius', protocol: 'udp', port: srv.port, login: 'alice', passwd: 'wrong', secret: SECRET }));
      assert.deepEqual([rej.up, rej.reason], [true, 'Access-Reject']);
    } finally {
      await srv.close();
    }
  });

  it('a reply signed with another secret, no answer, no secret and a closed port are down', async () => {
    const other = await udpServer((m, reply) => reply(radiusReply(m, 'other-secret')));
    const silent = await silentUdp();
    try {
      const bad = await check(spec({ service: 'radius', protocol: 'udp', port: other.port, login: 'alice', passwd: 'wonderland', secret: SECRET }));
      assert.equal(bad.up, false);
      assert.match(bad.reason, /secret/);
      const t = await check(spec({ service: 'radius', protocol: 'udp', port: silent.port, secret: SECRET, negotiateTimeoutMs: 300, checkTimeoutMs: 300 }));
      assert.deepEqual([t.up, t.reason], [false, 'timeout after 300 ms']);
      const nos = await check(spec({ service: 'radius', protocol: 'udp', port: silent.port }));
      assert.equal(nos.up, false);
      assert.match(nos.reason, /needs secret/);
      const r = await check(spec({ service: 'radius', protocol: 'udp', port: await freeUdpPort(), secret: SECRET }));
      assert.deepEqual([r.up, r.reason], [false, 'connection refused']);
    } finally {
      await Promise.all([other.close(), silent.close()]);
    }
  });
});
