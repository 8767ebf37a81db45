import net from 'node:net';
import type { CheckSpec, Verdict } from './types.ts';
import { checkPing } from './ping.ts';
import { describeError, down, up, withDeadline } from './util.ts';

/**
 * checktype=connect: a TCP handshake with the check port within checktimeout, then close. As in
 * ldirectord, a udp virtual has no handshake to test, so its connect check is a ping.
 */
export async function checkConnect(spec: CheckSpec, signal: AbortSignal): Promise<Verdict> {
  if (spec.protocol === 'udp') return checkPing(spec, signal);
  const started = performance.now();
  try {
    await withDeadline(spec.checkTimeoutMs, signal, (s) => tcpConnect(spec.host, spec.port, s));
    return up('connected', started);
  } catch (err) {
    return down(describeError(err), started);
  }
}

export function tcpConnect(host: string, port: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const socket = net.connect({ host, port });
    const onAbort = (): void => {
      socket.destroy();
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => {
      signal.removeEventListener('abort', onAbort);
      // A reset instead of FIN: the check leaves no TIME_WAIT behind on the checker side.
      socket.resetAndDestroy();
      resolve();
    });
    socket.once('error', (err) => {
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
      reject(err);
    });
  });
}
