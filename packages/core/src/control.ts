import { createServer, createConnection, type Server, type Socket } from 'node:net';
import { chmodSync, chownSync, unlinkSync, existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { TandemError } from './errors.ts';

/**
 * The local control socket every daemon answers on: one JSON request per line, one JSON reply per
 * line. Access is by file mode: the socket is created 0600 (root only), or 0660 with a group when
 * one is configured, which is how unix sockets are protected without peer credentials in Node.
 */
export interface ControlRequest {
  cmd: string;
  [key: string]: unknown;
}

export type ControlReply = { ok: true; [key: string]: unknown } | { ok: false; error: string; code?: string };

export type ControlHandler = (req: ControlRequest) => Promise<ControlReply> | ControlReply;

export interface ControlServerOptions {
  /** A group name or gid that may also use the socket (mode 0660). */
  group?: number | undefined;
  /** Longest request line accepted; a longer one closes the connection. Default 1 MiB. */
  maxRequestBytes?: number | undefined;
}

export interface ControlServer {
  readonly path: string;
  close(): Promise<void>;
}

export async function startControlServer(path: string, handler: ControlHandler, opts: ControlServerOptions = {}): Promise<ControlServer> {
  mkdirSync(dirname(path), { recursive: true });
  if (existsSync(path)) {
    // A live daemon answers; a stale socket from a crash is removed.
    const live = await controlRequest(path, { cmd: 'ping' }, 500).then(() => true, () => false);
    if (live) throw new TandemError('E_PIDFILE_RUNNING', `another daemon answers on ${path}`, { hint: 'stop it first' });
    unlinkSync(path);
  }
  const maxRequestBytes = opts.maxRequestBytes ?? 1 << 20;
  const sockets = new Set<Socket>();
  const server: Server = createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => sock.destroy());
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > maxRequestBytes) return sock.destroy();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        void answer(line).then((reply) => {
          if (!sock.destroyed) sock.write(JSON.stringify(reply) + '\n');
        });
      }
    });
  });
  async function answer(line: string): Promise<ControlReply> {
    let req: ControlRequest;
    try {
      req = JSON.parse(line) as ControlRequest;
      if (typeof req?.cmd !== 'string') throw new Error('no cmd');
    } catch {
      return { ok: false, error: 'request must be one JSON object with a "cmd" string per line', code: 'E_CONTROL_PROTOCOL' };
    }
    if (req.cmd === 'ping') return { ok: true, pid: process.pid };
    try {
      return await handler(req);
    } catch (err) {
      const e = err as TandemError;
      return { ok: false, error: e.message, code: e.code };
    }
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  chmodSync(path, opts.group === undefined ? 0o600 : 0o660);
  if (opts.group !== undefined) chownSync(path, process.getuid?.() ?? 0, opts.group);
  let closing: Promise<void> | undefined;
  return {
    path,
    close() {
      closing ??= new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
        try { unlinkSync(path); } catch { /* gone */ }
      });
      return closing;
    },
  };
}

/** Sends one request and resolves with the reply; rejects when nothing answers within timeoutMs. */
export function controlRequest(path: string, req: ControlRequest, timeoutMs = 5000): Promise<ControlReply> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(path);
    let buf = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new TandemError('E_RUN_TIMEOUT', `no answer on ${path} within ${timeoutMs} ms`));
    }, timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(JSON.stringify(req) + '\n'));
    sock.on('data', (c: string) => {
      buf += c;
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        sock.end();
        try {
          resolve(JSON.parse(buf.slice(0, nl)) as ControlReply);
        } catch (err) {
          reject(new TandemError('E_CONTROL_PROTOCOL', `bad reply on ${path}`, { cause: err }));
        }
      }
    });
    sock.on('error', (err) => {
      clearTimeout(timer);
      reject(new TandemError('E_CONTROL_DENIED', `cannot reach ${path}: ${err.message}`, { cause: err, hint: 'is the daemon running, and are you root?' }));
    });
  });
}
