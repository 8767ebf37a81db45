import assert from 'node:assert/strict';
import net from 'node:net';
import { runCheck } from '../src/checks/index.ts';
import { pendingRawExchanges, rawHttpAvailable, setRawHttpEnabled } from '../src/checks/raw-http.ts';
import { check, freePort, silentServer, spec } from './checks-support.ts';

/**
 * The plain-http hot path runs on raw libuv TCP handles (src/checks/raw-http.ts) and falls back to
 * a net.Socket client when the bindings are missing. Both engines must give the same verdicts, so
 * every case runs through each of them against a real server on loopback: a small raw TCP server
 * that records what it received and answers per path, byte for byte.
 */
const PAGE = '<html><body>Test Page</body></html>\n';
function answer(path: string): string | undefined {
  if (path === '/index.html') return `HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: ${PAGE.length}\r\nConnection: close\r\n\r\n${PAGE}`;
  // A response in several writes without Content-Length: the body ends with the connection.
  if (path === '/eof') return `HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n<html>the Test Page, until EOF</html>`;
  if (path === '/chunked') return `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n9\r\n<html>Tes\r\n10\r\nt Page</html>...\r\n0\r\n\r\n`;
  if (path === '/missing') return `HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found`;
  if (path === '/garbage') return `SSH-2.0-OpenSSH_9.2\r\n\r\n`;
  return undefined; // /hang: never answers
}

describe('checks: plain http on raw libuv handles and on the net fallback', function () {
  this.timeout(30_000);
  let server: net.Server;
  let port: number;
  const requests: string[] = [];
  const open = new Set<net.Socket>();

  before(async () => {
    server = net.createServer((s) => {
      open.add(s);
      s.on('close', () => open.delete(s));
      s.on('error', () => {});
      let buf = '';
      s.on('data', (d) => {
        buf += d.toString('latin1');
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.slice(0, end);
        requests.push(head);
        const path = head.split(' ')[1] ?? '';
        const a = answer(path);
        if (a === undefined) return;
        if (path === '/eof') {
          // Two writes apart in time, then the close: the client must read to EOF.
          s.write(a.slice(0, 30));
          setTimeout(() => s.end(a.slice(30)), 20);
        } else s.end(a);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as net.AddressInfo).port;
  });
  after(async () => {
    setRawHttpEnabled(true);
    for (const s of open) s.destroy();
    await new Promise((r) => server.close(r));
  });

  it('the raw engine is available on this Node', () => {
    const a = rawHttpAvailable();
    assert.equal(a.ok, true, a.reason);
  });

  for (const engine of ['raw', 'net'] as const) {
    describe(`engine ${engine}`, () => {
      before(() => setRawHttpEnabled(engine === 'raw'));
      after(() => setRawHttpEnabled(true));
      // A fresh spec per check: the engine is chosen when a spec is first planned.
      const http1 = (request: string, over: Parameters<typeof spec>[0] = {}) =>
        spec({ service: 'http', port, request, receive: 'Test Page', negotiateTimeoutMs: 300, ...over });

      it('up: GET with Host and Connection: close, receive matched in the body', async () => {
        requests.length = 0;
        const v = await check(http1('/index.html'));
        assert.equal(v.up, true, v.reason);
        assert.equal(v.reason, 'HTTP 200 OK, receive matched');
        assert.match(requests[0]!, /^GET \/index\.html HTTP\/1\.1\r\nHost: 127\.0\.0\.1\r\n/);
        assert.match(requests[0]!, /\r\nConnection: close$/);
      });

      it('a body that ends with the connection, and a chunked body, are read whole', async () => {
        const a = await check(http1('/eof'));
        assert.equal(a.up, true, a.reason);
        const b = await check(http1('/chunked'));
        assert.equal(b.up, true, b.reason);
      });

      it('a wrong receive is down with the reason', async () => {
        const v = await check(http1('/index.html', { receive: 'Other Page' }));
        assert.equal(v.up, false);
        assert.equal(v.reason, 'HTTP 200 OK, receive /Other Page/ did not match');
      });

      it('a 404 and an answer that is not HTTP are down', async () => {
        const a = await check(http1('/missing'));
        assert.deepEqual([a.up, a.reason], [false, 'HTTP 404 Not Found']);
        const b = await check(http1('/garbage'));
        assert.equal(b.up, false);
        assert.match(b.reason, /^not an HTTP response: "SSH-2\.0/);
      });

      it('a refused port is down: connection refused', async () => {
        const v = await check(http1('/index.html', { port: await freePort() }));
        assert.deepEqual([v.up, v.reason], [false, 'connection refused']);
      });

      it('a server that accepts and never answers is down after negotiatetimeout', async () => {
        const silent = await silentServer();
        try {
          const v = await check(http1('/index.html', { port: silent.port }));
          assert.deepEqual([v.up, v.reason], [false, 'timeout after 300 ms']);
        } finally {
          await silent.close();
        }
        const w = await check(http1('/hang'));
        assert.deepEqual([w.up, w.reason], [false, 'timeout after 300 ms']);
      });

      it('the abort signal ends a check at once, and nothing is left open', async () => {
        const ctl = new AbortController();
        const p = runCheck(http1('/hang', { negotiateTimeoutMs: 20_000 }), ctl.signal);
        setTimeout(() => ctl.abort(), 50);
        const v = await p;
        assert.deepEqual([v.up, v.reason], [false, 'check aborted']);
        assert.ok(v.durationMs < 10_000, `took ${v.durationMs} ms`);
        if (engine === 'raw') assert.equal(pendingRawExchanges(), 0);
        // The server sees every connection of this suite closed.
        for (let i = 0; i < 100 && open.size > 0; i++) await new Promise((r) => setTimeout(r, 20));
        assert.equal(open.size, 0);
      });

      it('many checks at once against the same server are all up', async () => {
        const vs = await Promise.all(Array.from({ length: 200 }, () => check(http1('/index.html'))));
        assert.deepEqual(vs.filter((v) => !v.up).map((v) => v.reason), []);
      });
    });
  }

  it('raw: an IPv6 real (::1) is checked with the bracketed address as Host', async () => {
    const srv = net.createServer((s) => {
      s.once('data', (d) => {
        requests.push(d.toString('latin1'));
        s.end(answer('/index.html')!);
      });
    });
    await new Promise<void>((r) => srv.listen(0, '::1', r));
    try {
      requests.length = 0;
      const v = await check(spec({ service: 'http', host: '::1', port: (srv.address() as net.AddressInfo).port, request: '/index.html', receive: 'Test Page' }));
      assert.equal(v.up, true, v.reason);
      assert.match(requests[0]!, /\r\nHost: \[::1\]\r\n/);
    } finally {
      await new Promise((r) => srv.close(r));
    }
  });
});
