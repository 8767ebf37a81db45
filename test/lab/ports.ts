/**
 * Small waiting helpers shared by tests, benchmarks and the lab: a free port, a port that has
 * started listening, and a bounded poll. Each loop is bounded in time and in count.
 */
import net from 'node:net';
import { controlRequest } from '@tandem/core';

/** A TCP port nothing listens on right now (bound to 0 on `host` and released). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, host, () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/** True when a TCP connection to host:port is accepted now. */
export function portOpen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/**
 * Polls `fn` every stepMs until it returns a value other than undefined/false, and returns it; throws
 * naming `what` (and the last error fn threw) after ms. An error fn throws counts as "not yet",
 * unless `retryErrors` is false: then it ends the wait at once (a probe that knows it is hopeless,
 * such as a holder process that has exited).
 */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  ms = 20_000,
  stepMs = 100,
  { retryErrors = true }: { retryErrors?: boolean } = {},
): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (let i = 0; i < 100_000 && Date.now() < deadline; i++) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      if (!retryErrors) throw err;
      last = err;
    }
    await new Promise((r) => setTimeout(r, stepMs));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

/** Waits until host:port accepts connections; `check` may throw to give up at once (a server that died). */
export async function waitForPort(host: string, port: number, ms = 30_000, check?: () => void): Promise<void> {
  const deadline = Date.now() + ms;
  for (let i = 0; i < 100_000 && Date.now() < deadline; i++) {
    check?.();
    if (await portOpen(host, port)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nothing listens on ${host}:${port} after ${ms} ms`);
}

/** Waits until a daemon answers `ping` on its control socket (tandem-ipvsd, heartbeat, ldirectord). */
export async function waitForControl(path: string, what: string, ms = 20_000): Promise<void> {
  await waitFor(`${what} to answer on ${path}`, () => controlRequest(path, { cmd: 'ping' }, 1000).then(() => true, () => false), ms, 100);
}
