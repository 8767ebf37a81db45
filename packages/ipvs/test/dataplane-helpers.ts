/** Shared pieces of the data-plane tests: real HTTP/UDP servers on loopback and clients. */
import http from 'node:http';
import net from 'node:net';
import dgram from 'node:dgram';
import type { IpvsTable, RealServer, VirtualService } from '../src/model.ts';
import { waitFor } from '../../../test/lab/ports.ts';

export interface Backend {
  name: string;
  address: string;
  port: number;
  server: http.Server;
  /** Remote addresses seen, one per request. */
  hits: string[];
  close(): Promise<void>;
}

/** An HTTP server answering its own name, on a 127.x address and an ephemeral port. */
export async function startBackend(name: string, address = '127.0.0.1'): Promise<Backend> {
  const hits: string[] = [];
  const server = http.createServer((req, res) => {
    hits.push(req.socket.remoteAddress ?? '');
    const body = `${name}\n`;
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, address, () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    name,
    address,
    port,
    server,
    hits,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export { freePort } from '../../../test/lab/ports.ts';

export function real(b: { address: string; port: number }, weight = 1, extra: Partial<RealServer> = {}): RealServer {
  return { address: b.address, port: b.port, forwarding: 'masq', weight, ...extra };
}

export function tcpService(address: string, port: number, scheduler: string, reals: RealServer[], extra: Partial<VirtualService> = {}): VirtualService {
  return { protocol: 'tcp', address, port, scheduler, reals, ...extra };
}

export function table(...services: VirtualService[]): IpvsTable {
  return { services };
}

/** One GET on a new connection; resolves with the body (the backend's name). */
export function get(host: string, port: number, opts: { localAddress?: string; agent?: http.Agent } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port, path: '/', agent: opts.agent ?? false, localAddress: opts.localAddress, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve(body.trim()));
    });
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
  });
}

/**
 * A raw keep-alive HTTP/1.1 connection: send a request, read one response. Lets a test keep a
 * connection open across table changes.
 */
export class KeepAlive {
  readonly socket: net.Socket;
  #buf = '';
  #waiters: (() => void)[] = [];
  constructor(host: string, port: number, localAddress?: string) {
    this.socket = net.connect({ host, port, localAddress });
    this.socket.setEncoding('utf8');
    this.socket.on('data', (d: string) => {
      this.#buf += d;
      for (const w of this.#waiters.splice(0)) w();
    });
    this.socket.on('error', () => {});
    this.socket.on('close', () => {
      for (const w of this.#waiters.splice(0)) w();
    });
  }
  connected(): Promise<void> {
    return new Promise((resolve, reject) => {
      if (!this.socket.connecting) return resolve();
      this.socket.once('connect', () => resolve());
      this.socket.once('error', reject);
    });
  }
  /** Sends GET / and returns the body of the response. */
  async request(timeoutMs = 10_000): Promise<string> {
    this.socket.write('GET / HTTP/1.1\r\nHost: test\r\n\r\n');
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = /^HTTP\/1\.1 \d+[^\r]*\r\n([\s\S]*?)\r\n\r\n/.exec(this.#buf);
      if (m) {
        const len = Number(/content-length: (\d+)/i.exec(m[1])?.[1] ?? 0);
        const start = m[0].length;
        if (this.#buf.length >= start + len) {
          const body = this.#buf.slice(start, start + len);
          this.#buf = this.#buf.slice(start + len);
          return body.trim();
        }
      }
      if (this.socket.destroyed) throw new Error('connection closed before a response');
      if (Date.now() > deadline) throw new Error('no response in time');
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 200);
      });
    }
  }
  close(): void {
    this.socket.destroy();
  }
}

/** A UDP echo server. */
export async function startUdpEcho(address = '127.0.0.1'): Promise<{ port: number; sock: dgram.Socket; close(): void }> {
  const sock = dgram.createSocket(address.includes(':') ? 'udp6' : 'udp4');
  sock.on('message', (msg, rinfo) => sock.send(Buffer.concat([Buffer.from('echo:'), msg]), rinfo.port, rinfo.address));
  await new Promise<void>((resolve) => sock.bind(0, address, () => resolve()));
  return { port: sock.address().port, sock, close: () => sock.close() };
}

/** Polls until `fn` returns true or the deadline passes (then throws with `what`). */
export const until = (what: string, fn: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> => waitFor(what, fn, ms, 50, { retryErrors: false }).then(() => {});
