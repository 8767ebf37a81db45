import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { createDataplane, type UserspaceDataplaneApi } from '../src/dataplane/index.ts';
import { freePort, table, tcpService, until } from './dataplane-helpers.ts';

/** A server that reads until the client half-closes, then answers the SHA-256 of what it got. */
async function startDigestServer(): Promise<{ port: number; server: net.Server }> {
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    const h = createHash('sha256');
    let n = 0;
    s.on('data', (d) => {
      h.update(d);
      n += d.length;
    });
    s.on('end', () => s.end(`${n} ${h.digest('hex')}`));
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { port: (server.address() as net.AddressInfo).port, server };
}

/** Echoes everything back, slowly reading (small socket buffers) to force backpressure. */
async function startEchoServer(): Promise<{ port: number; server: net.Server }> {
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    s.pipe(s);
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { port: (server.address() as net.AddressInfo).port, server };
}

for (const engine of ['raw', 'net'] as const) describe(`dataplane (${engine} TCP engine): byte streams`, function () {
  this.timeout(60_000);
  let dp: UserspaceDataplaneApi;
  const servers: net.Server[] = [];

  beforeEach(() => {
    dp = createDataplane({ engine });
  });
  afterEach(async () => {
    await dp.close();
    for (const s of servers.splice(0)) s.close();
  });

  async function via(realPort: number): Promise<{ vip: string; port: number }> {
    const vip = `127.${120 + (process.pid % 50)}.9.${engine === 'raw' ? 1 : 2}`;
    const port = await freePort(vip);
    await dp.update(table(tcpService(vip, port, 'rr', [{ address: '127.0.0.1', port: realPort, forwarding: 'masq', weight: 1 }])));
    return { vip, port };
  }

  it('passes 8 MB intact in one direction and a half-close the other way', async () => {
    const d = await startDigestServer();
    servers.push(d.server);
    const { vip, port } = await via(d.port);
    const payload = randomBytes(8 * 1024 * 1024);
    const expect = `${payload.length} ${createHash('sha256').update(payload).digest('hex')}`;
    const answer = await new Promise<string>((resolve, reject) => {
      const s = net.connect({ host: vip, port, allowHalfOpen: true });
      let got = '';
      s.setEncoding('utf8');
      s.on('data', (x: string) => (got += x));
      s.on('end', () => resolve(got));
      s.on('error', reject);
      // Written in uneven pieces so reads and writes do not line up.
      let off = 0;
      const pump = () => {
        while (off < payload.length) {
          const n = Math.min(payload.length - off, 1000 + ((off * 7) % 150_000));
          const ok = s.write(payload.subarray(off, off + n));
          off += n;
          if (!ok) return void s.once('drain', pump);
        }
        s.end();
      };
      pump();
    });
    assert.equal(answer, expect);
  });

  it('echoes 6 MB both ways at once under backpressure without corrupting data', async () => {
    const e = await startEchoServer();
    servers.push(e.server);
    const { vip, port } = await via(e.port);
    const payload = randomBytes(6 * 1024 * 1024);
    const received = await new Promise<Buffer>((resolve, reject) => {
      const s = net.connect({ host: vip, port, allowHalfOpen: true });
      const chunks: Buffer[] = [];
      let n = 0;
      s.on('data', (x: Buffer) => {
        chunks.push(x);
        n += x.length;
        // Read slowly now and then, so the proxy's writes towards us back up.
        if (chunks.length % 50 === 0) {
          s.pause();
          setTimeout(() => s.resume(), 5);
        }
        if (n >= payload.length) {
          s.end();
          resolve(Buffer.concat(chunks));
        }
      });
      s.on('error', reject);
      s.write(payload);
    });
    assert.equal(received.length, payload.length);
    assert.ok(received.equals(payload), 'echoed bytes are identical');
    await until('connection gone', () => dp.openConnections === 0, 15_000);
  });

  it('passes a client reset on to the real server', async () => {
    let serverSaw = '';
    const server = net.createServer((s) => {
      s.on('error', (err: NodeJS.ErrnoException) => (serverSaw = err.code ?? 'error'));
      s.on('end', () => (serverSaw ||= 'end'));
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const { vip, port } = await via((server.address() as net.AddressInfo).port);
    const s = net.connect({ host: vip, port });
    await new Promise<void>((r) => s.once('connect', () => r()));
    s.write('hello');
    await until('proxied connection established', () => [...dp.stats().services.values()][0].reals.values().next().value!.activeConns === 1);
    s.resetAndDestroy();
    await until('server saw the reset', () => serverSaw !== '');
    assert.equal(serverSaw, 'ECONNRESET');
  });
});
