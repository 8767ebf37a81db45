// Shared pieces of the checks-*.test.ts files: a CheckSpec builder, free loopback ports, servers
// that accept and never answer, and real daemons started by the test and stopped by PID.
import net from 'node:net';
import dgram from 'node:dgram';
import { execa, execaSync, type ResultPromise } from 'execa';
import type { CheckSpec, Verdict } from '../src/checks/types.ts';
import { runCheck } from '../src/checks/index.ts';
import { waitForPort as waitForPortOpen } from '../../../test/lab/ports.ts';

export function spec(over: Partial<CheckSpec>): CheckSpec {
  return {
    checktype: 'negotiate',
    service: 'none',
    protocol: 'tcp',
    host: '127.0.0.1',
    port: 1,
    realPort: 0,
    virtualAddress: '127.0.0.100',
    virtualPort: 80,
    httpMethod: 'GET',
    checkTimeoutMs: 3000,
    negotiateTimeoutMs: 3000,
    checkCount: 1,
    ...over,
  };
}

export function check(s: CheckSpec): Promise<Verdict> {
  return runCheck(s, new AbortController().signal);
}

export { freePort } from '../../../test/lab/ports.ts';

export async function freeUdpPort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    s.on('error', reject);
    s.bind(0, host, () => {
      const port = s.address().port;
      s.close(() => resolve(port));
    });
  });
}

/** A TCP server that accepts connections and never says anything: the timeout case. */
export async function silentServer(host = '127.0.0.1'): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => srv.listen(0, host, r));
  return {
    port: (srv.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        srv.close(() => r());
      }),
  };
}

/** A UDP socket that receives and never answers. */
export async function silentUdp(host = '127.0.0.1'): Promise<{ port: number; close: () => Promise<void> }> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, host, r));
  return { port: s.address().port, close: () => new Promise<void>((r) => s.close(() => r())) };
}

export async function waitForPort(host: string, port: number, deadlineMs = 30_000, daemon?: Daemon): Promise<void> {
  await waitForPortOpen(host, port, deadlineMs, () => {
    if (daemon?.exited()) throw new Error(`server exited before listening on ${host}:${port}:\n${daemon.output().slice(-2000)}`);
  });
}

export async function waitFor(what: string, probe: () => Promise<boolean> | boolean, deadlineMs = 30_000): Promise<void> {
  const until = Date.now() + deadlineMs;
  for (let i = 0; Date.now() < until && i < 10_000; i++) {
    if (await probe()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** A long-running server started by a test; stop() kills it by PID (TERM, then KILL). */
export interface Daemon {
  child: ResultPromise;
  pid: number;
  output: () => string;
  exited: () => boolean;
  stop: () => Promise<void>;
}

export function startDaemon(file: string, args: string[], opts: { env?: Record<string, string>; cwd?: string; user?: string; stopSignal?: NodeJS.Signals } = {}): Daemon {
  let out = '';
  const ids = opts.user ? userIds(opts.user) : undefined;
  const child = execa(file, args, { reject: false, env: opts.env, cwd: opts.cwd, stdin: 'ignore', all: true, buffer: false, ...(ids ?? {}) });
  child.all?.on('data', (d: Buffer) => {
    if (out.length < 200_000) out += d.toString();
  });
  const pid = child.pid ?? -1;
  let exited = false;
  void child.finally(() => (exited = true));
  return {
    child,
    pid,
    output: () => out,
    exited: () => exited,
    stop: async () => {
      if (exited) return;
      try {
        process.kill(pid, opts.stopSignal ?? 'SIGTERM');
      } catch {
        return;
      }
      const t = setTimeout(() => {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }, 10_000);
      await child.catch(() => {});
      clearTimeout(t);
    },
  };
}

export function userIds(user: string): { uid: number; gid: number } {
  const uid = Number(execaSync('id', ['-u', user]).stdout);
  const gid = Number(execaSync('id', ['-g', user]).stdout);
  return { uid, gid };
}
