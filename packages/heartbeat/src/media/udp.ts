/** Socket plumbing shared by bcast, mcast and ucast. */
import { createSocket, type Socket, type RemoteInfo } from 'node:dgram';
import type { Received } from '../types.ts';
import { TandemError } from '@tandem/core';

export interface MediumOptions {
  /** Called for send and socket errors; a medium never throws from send(). */
  onError?: (err: Error) => void;
}

export function udpSocket(): Socket {
  return createSocket({ type: 'udp4', reuseAddr: true });
}

export function bindSocket(sock: Socket, address: string, port: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onErr = (err: Error): void => {
      reject(new TandemError('E_MEDIA_BIND', `${what}: cannot bind ${address}:${port}: ${err.message}`, { cause: err, hint: 'is another heartbeat running on this port?' }));
    };
    sock.once('error', onErr);
    sock.bind({ address, port, exclusive: false }, () => {
      sock.off('error', onErr);
      resolve();
    });
  });
}

const inflight = new WeakMap<Socket, { n: number; idle: (() => void)[] }>();

/**
 * Sends and counts the datagram until libuv reports it written. A graceful stop sends its last
 * packets (`shutdone`, `status dead`) and closes the media right after: closing a socket cancels
 * sends still queued on it, and the peer would then wait for deadtime instead of taking over at once.
 */
export function sendTracked(sock: Socket, packet: Buffer, port: number, address: string, onError?: (err: Error) => void): void {
  let st = inflight.get(sock);
  if (!st) inflight.set(sock, (st = { n: 0, idle: [] }));
  const state = st;
  state.n++;
  sock.send(packet, port, address, (err) => {
    if (err) onError?.(err);
    if (--state.n === 0) for (const f of state.idle.splice(0)) f();
  });
}

/** Resolves when every tracked send on the socket has been written, or after maxMs. */
function drained(sock: Socket, maxMs = 250): Promise<void> {
  const st = inflight.get(sock);
  if (!st || st.n === 0) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(resolve, maxMs);
    st.idle.push(() => {
      clearTimeout(t);
      resolve();
    });
  });
}

export async function closeSocket(sock: Socket | undefined): Promise<void> {
  if (!sock) return;
  await drained(sock);
  return new Promise((resolve) => {
    try {
      sock.close(() => resolve());
    } catch {
      resolve(); // already closed
    }
  });
}

export function from(r: RemoteInfo): string {
  return `${r.address}:${r.port}`;
}

/**
 * Routes socket errors to onError and delivers what `recv` hears, except packets from `send` itself
 * (`ownAddress` and the send socket's port): the kernel loops broadcasts, and multicast with loop 1,
 * back to the sender.
 */
export function wirePair(recv: Socket, send: Socket, ownAddress: string, link: string, onPacket: (r: Received) => void, opts: MediumOptions): void {
  const self = `${ownAddress}:${send.address().port}`;
  recv.on('error', (e) => opts.onError?.(e));
  send.on('error', (e) => opts.onError?.(e));
  recv.on('message', (packet, rinfo) => {
    const src = from(rinfo);
    if (src !== self) onPacket({ packet, link, from: src });
  });
}

/** Closes both sockets of a medium; safe when they were never opened. */
export async function closePair(recv: Socket | undefined, send: Socket | undefined): Promise<void> {
  await Promise.all([closeSocket(recv), closeSocket(send)]);
}
