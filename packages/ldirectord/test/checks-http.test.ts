import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { execa } from 'execa';
import { runCheck } from '../src/checks/index.ts';
import { check, freePort, silentServer, spec } from './checks-support.ts';

interface Seen {
  method: string;
  url: string;
  host: string | undefined;
  servername?: string | false | undefined;
}

function handler(seen: Seen[]) {
  return (req: http.IncomingMessage, res: http.ServerResponse): void => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', host: req.headers.host, servername: (req.socket as TLSSocket).servername ?? undefined });
    if (req.url === '/index.html' || req.url === '/abs.html') res.end('<html><body>Test Page</body></html>');
    else if (req.url === '/redirect') {
      res.writeHead(302, { location: '/index.html' });
      res.end();
    } else if (req.url === '/loop') {
      res.writeHead(302, { location: '/loop' });
      res.end();
    } else if (req.url === '/chunked') {
      res.write('<html>first part ');
      setTimeout(() => res.end('and the Test Page</html>'), 20);
    } else if (req.url === '/error') {
      res.writeHead(500);
      res.end('Test Page but broken');
    } else if (req.url === '/hang') {
      // never answers
    } else {
      res.writeHead(404);
      res.end('not found');
    }
  };
}

describe('checks: service=http against a Node HTTP server on loopback', function () {
  this.timeout(30_000);
  const seen: Seen[] = [];
  let server: http.Server;
  let port: number;
  let connections = 0;

  before(async () => {
    server = http.createServer(handler(seen));
    server.on('connection', () => connections++);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as net.AddressInfo).port;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  beforeEach(() => {
    seen.length = 0;
  });

  const http1 = (over: Parameters<typeof spec>[0] = {}) => spec({ service: 'http', port, request: '/index.html', receive: 'Test Page', ...over });

  it('GET of the request with receive matched in the body is up; Host is the real address without port', async () => {
    const v = await check(http1());
    assert.equal(v.up, true, v.reason);
    assert.match(v.reason, /HTTP 200/);
    assert.deepEqual(seen.map((s) => [s.method, s.url, s.host]), [['GET', '/index.html', '127.0.0.1']]);
  });

  it('a request without its leading slash is fetched as /request (ldirectord prepends it)', async () => {
    const v = await check(http1({ request: 'index.html' }));
    assert.equal(v.up, true, v.reason);
    assert.equal(seen[0]!.url, '/index.html');
  });

  it('virtualhost becomes the Host header without a port', async () => {
    const v = await check(http1({ virtualHost: 'www.example.test:8080' }));
    assert.equal(v.up, true, v.reason);
    assert.equal(seen[0]!.host, 'www.example.test');
  });

  it('receive is an unanchored regex matched against the body only', async () => {
    assert.equal((await check(http1({ receive: 'T.st\\s+Page' }))).up, true);
    assert.equal((await check(http1({ receive: '^Test' }))).up, false);
    assert.equal((await check(http1({ receive: 'HTTP/1.1 200' }))).up, false, 'status line is not part of the body');
    assert.equal((await check(http1({ receive: '' }))).up, true, 'empty receive: any 2xx');
  });

  it('a wrong receive is down with the reason', async () => {
    const v = await check(http1({ receive: 'Welcome to nginx' }));
    assert.equal(v.up, false);
    assert.match(v.reason, /HTTP 200 OK, receive \/Welcome to nginx\/ did not match/);
  });

  it('an invalid receive pattern is down with a reason, not an exception', async () => {
    const v = await check(http1({ receive: '(unclosed' }));
    assert.equal(v.up, false);
    assert.match(v.reason, /not a valid regular expression/);
  });

  it('a non-2xx status is down even when receive matches', async () => {
    const v = await check(http1({ request: '/error' }));
    assert.equal(v.up, false);
    assert.match(v.reason, /HTTP 500/);
  });

  it('HEAD sends HEAD; with a receive it is down (no body), as ldirectord', async () => {
    const ok = await check(http1({ httpMethod: 'HEAD', receive: '' }));
    assert.equal(ok.up, true, ok.reason);
    assert.equal(seen[0]!.method, 'HEAD');
    assert.equal((await check(http1({ httpMethod: 'HEAD' }))).up, false);
  });

  it('follows redirects (through got) and matches the final body', async () => {
    const v = await check(http1({ request: '/redirect' }));
    assert.equal(v.up, true, v.reason);
    assert.deepEqual(seen.map((s) => s.url).slice(-2), ['/redirect', '/index.html']);
  });

  it('a redirect loop is down', async () => {
    const v = await check(http1({ request: '/loop' }));
    assert.equal(v.up, false);
    assert.match(v.reason, /redirect/);
  });

  it('reads chunked bodies', async () => {
    const v = await check(http1({ request: '/chunked' }));
    assert.equal(v.up, true, v.reason);
  });

  it('a per-real request that is a full URL is used verbatim', async () => {
    const v = await check(http1({ host: '127.0.0.2', request: `/http://127.0.0.1:${port}/abs.html` }));
    assert.equal(v.up, true, v.reason);
    assert.deepEqual([seen[0]!.url, seen[0]!.host], ['/abs.html', '127.0.0.1']);
  });

  it('a refused port is down: connection refused', async () => {
    const v = await check(http1({ port: await freePort() }));
    assert.equal(v.up, false);
    assert.equal(v.reason, 'connection refused');
  });

  it('a server that never answers is down after negotiatetimeout', async () => {
    const v = await check(http1({ request: '/hang', negotiateTimeoutMs: 400 }));
    assert.equal(v.up, false);
    assert.equal(v.reason, 'timeout after 400 ms');
  });

  it('a silent TCP server (accepts, never answers) times out too', async () => {
    const s = await silentServer();
    try {
      const v = await check(http1({ port: s.port, negotiateTimeoutMs: 300 }));
      assert.deepEqual([v.up, v.reason], [false, 'timeout after 300 ms']);
    } finally {
      await s.close();
    }
  });

  it('the abort signal ends a check at once', async () => {
    const ctl = new AbortController();
    const p = runCheck(http1({ request: '/hang', negotiateTimeoutMs: 20_000 }), ctl.signal);
    setTimeout(() => ctl.abort(), 100);
    const v = await p;
    assert.deepEqual([v.up, v.reason], [false, 'check aborted']);
    assert.ok(v.durationMs < 10_000);
  });

  it('httpKeepAlive (tandem extension) reuses one connection across checks', async () => {
    const s = http1({ httpKeepAlive: true });
    const before = connections;
    for (let i = 0; i < 5; i++) assert.equal((await check(s)).up, true);
    assert.equal(connections - before, 1);
    const fresh = http1();
    for (let i = 0; i < 3; i++) assert.equal((await check(fresh)).up, true);
    assert.equal(connections - before, 4, 'without keep-alive every check connects');
  });

  it('httpKeepAlive: a server that closed the kept connection is re-connected transparently', async () => {
    const s = http1({ httpKeepAlive: true });
    assert.equal((await check(s)).up, true);
    server.closeAllConnections();
    await new Promise((r) => setTimeout(r, 50));
    const v = await check(s);
    assert.equal(v.up, true, v.reason);
  });

  it('httpKeepAlive: a killed server is seen as refused on the next check', async () => {
    const other = http.createServer(handler([]));
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
    const p = (other.address() as net.AddressInfo).port;
    const s = http1({ port: p, httpKeepAlive: true });
    assert.equal((await check(s)).up, true);
    other.closeAllConnections();
    await new Promise((r) => other.close(r));
    const v = await check(s);
    assert.deepEqual([v.up, v.reason], [false, 'connection refused']);
  });
});

describe('checks: service=https against a Node HTTPS server with a self-signed certificate', function () {
  this.timeout(60_000);
  const seen: Seen[] = [];
  let server: https.Server;
  let port: number;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tandem-https-'));
    await execa('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-subj', '/CN=www.example.test', '-days', '2']);
    server = https.createServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }, handler(seen));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as net.AddressInfo).port;
  });
  after(async () => {
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    seen.length = 0;
  });

  const s1 = (over: Parameters<typeof spec>[0] = {}) => spec({ service: 'https', port, request: '/index.html', receive: 'Test Page', ...over });

  it('is up without verifying the certificate; Host has no port', async () => {
    const v = await check(s1());
    assert.equal(v.up, true, v.reason);
    assert.deepEqual([seen[0]!.method, seen[0]!.url, seen[0]!.host], ['GET', '/index.html', '127.0.0.1']);
  });

  it('sends virtualhost as Host and as TLS server name (SNI)', async () => {
    const v = await check(s1({ virtualHost: 'www.example.test' }));
    assert.equal(v.up, true, v.reason);
    assert.equal(seen[0]!.host, 'www.example.test');
    assert.equal(seen[0]!.servername, 'www.example.test');
  });

  it('follows redirects', async () => {
    assert.equal((await check(s1({ request: '/redirect' }))).up, true);
  });

  it('wrong receive, refused port and timeout are down', async () => {
    const wrong = await check(s1({ receive: 'nope' }));
    assert.deepEqual([wrong.up, /did not match/.test(wrong.reason)], [false, true]);
    const refused = await check(s1({ port: await freePort() }));
    assert.deepEqual([refused.up, refused.reason], [false, 'connection refused']);
    const hung = await check(s1({ request: '/hang', negotiateTimeoutMs: 500 }));
    assert.deepEqual([hung.up, hung.reason], [false, 'timeout after 500 ms']);
  });

  it('a plain-http server on the https port is down', async () => {
    const plain = http.createServer(handler([]));
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
    try {
      const v = await check(s1({ port: (plain.address() as net.AddressInfo).port }));
      assert.equal(v.up, false);
    } finally {
      await new Promise((r) => plain.close(r));
    }
  });
});

describe('checks: IPv6 reals (::1)', function () {
  this.timeout(20_000);
  it('http and connect checks reach a real on ::1; Host carries the bracketed address', async () => {
    const seen: Seen[] = [];
    const srv = http.createServer(handler(seen));
    await new Promise<void>((r) => srv.listen(0, '::1', r));
    const port = (srv.address() as net.AddressInfo).port;
    try {
      const v = await check(spec({ service: 'http', host: '::1', port, request: '/index.html', receive: 'Test Page' }));
      assert.equal(v.up, true, v.reason);
      assert.equal(seen[0]!.host, '[::1]');
      const c = await check(spec({ checktype: 'connect', host: '::1', port }));
      assert.equal(c.up, true, c.reason);
    } finally {
      await new Promise((r) => srv.close(r));
    }
  });
});

describe('checks: service=http_proxy', function () {
  this.timeout(30_000);
  it('asks the real (a proxy) for the absolute URL of the request', async () => {
    const lines: string[] = [];
    const proxy = http.createServer((req, res) => {
      lines.push(`${req.method} ${req.url}`);
      if (req.url === 'http://backend.example.test/status') res.end('proxy says Test Page');
      else {
        res.writeHead(502);
        res.end('bad gateway');
      }
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const port = (proxy.address() as net.AddressInfo).port;
    try {
      const ok = await check(spec({ service: 'http_proxy', port, request: '/http://backend.example.test/status', receive: 'Test Page' }));
      assert.equal(ok.up, true, ok.reason);
      assert.deepEqual(lines, ['GET http://backend.example.test/status']);
      const bad = await check(spec({ service: 'http_proxy', port, request: '/http://other.example.test/', receive: 'Test Page' }));
      assert.deepEqual([bad.up, bad.reason], [false, 'HTTP 502 Bad Gateway']);
      const notUrl = await check(spec({ service: 'http_proxy', port, request: '/status' }));
      assert.equal(notUrl.up, false);
      assert.match(notUrl.reason, /absolute URL/);
    } finally {
      await new Promise((r) => proxy.close(r));
    }
  });
});
