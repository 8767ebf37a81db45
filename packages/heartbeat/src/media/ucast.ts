/**
 * ucast: `ucast dev peer`, one peer per line. Packets go from the interface's address (ephemeral
 * port) to peer:udpport. Several ucast lines on one interface share one receive socket bound to
 * the interface's address and udpport (two sockets on one address and port would each see only some
 * packets); a packet goes to the medium whose peer sent it. The same ha.cf usually lists the node's
 * own address too: that medium sends nothing (the copy would only come back to us) and packets from
 * our own sockets are dropped.
 */
import type { Socket } from 'node:dgram';
import type { Medium, Received } from '../types.ts';
import { ifaceIPv4, localIPv4 } from './iface.ts';
import { bindSocket, closeSocket, from, sendTracked, udpSocket, type MediumOptions } from './udp.ts';

export interface UcastSpec { dev: string; peer: string; port: number }

interface Listener { peer: string; toSelf: boolean; deliver: (r: Received) => void }

interface SharedRecv {
  sock: Socket;
  ready: Promise<void>;
  listeners: Set<Listener>;
  /** `addr:port` of our own send sockets on this interface. */
  selves: Set<string>;
}

const shared = new Map<string, SharedRecv>();

function acquire(address: string, port: number, dev: string, onError?: (e: Error) => void): SharedRecv {
  const key = `${address}:${port}`;
  let s = shared.get(key);
  if (s) return s;
  const sock = udpSocket();
  const entry: SharedRecv = { sock, ready: bindSocket(sock, address, port, `ucast ${dev}`), listeners: new Set(), selves: new Set() };
  entry.ready.catch(() => shared.delete(key));
  sock.on('error', (e) => onError?.(e));
  sock.on('message', (packet, rinfo) => {
    const src = from(rinfo);
    if (entry.selves.has(src)) return;
    let target: Listener | undefined;
    for (const l of entry.listeners) if (l.peer === rinfo.address) target = l;
    // A peer may send from another of its addresses: the first medium on the interface takes it.
    if (!target) for (const l of entry.listeners) if (!l.toSelf) { target = l; break; }
    target?.deliver({ packet, link: dev, from: src });
  });
  shared.set(key, entry);
  return entry;
}

export function createUcastMedium(spec: UcastSpec, opts: MediumOptions = {}): Medium {
  let send: Socket | undefined;
  let recv: SharedRecv | undefined;
  let listener: Listener | undefined;
  let self = '';
  let toSelf = false;
  return {
    type: 'ucast',
    link: spec.dev,
    async start(onPacket: (r: Received) => void): Promise<void> {
      const ifa = ifaceIPv4(spec.dev);
      toSelf = localIPv4().has(spec.peer);
      const r = acquire(ifa.address, spec.port, spec.dev, opts.onError);
      listener = { peer: spec.peer, toSelf, deliver: onPacket };
      r.listeners.add(listener);
      recv = r;
      try {
        await r.ready;
      } catch (e) {
        r.listeners.delete(listener);
        throw e;
      }
      send = udpSocket();
      await bindSocket(send, ifa.address, 0, `ucast ${spec.dev}`);
      send.on('error', (e) => opts.onError?.(e));
      self = `${ifa.address}:${send.address().port}`;
      r.selves.add(self);
    },
    send(packet: Buffer): void {
      if (toSelf) return;
      if (send) sendTracked(send, packet, spec.port, spec.peer, opts.onError);
    },
    async close(): Promise<void> {
      const s = send;
      send = undefined;
      if (recv && listener) {
        recv.listeners.delete(listener);
        recv.selves.delete(self);
        if (recv.listeners.size === 0) {
          for (const [k, v] of shared) if (v === recv) shared.delete(k);
          await closeSocket(recv.sock);
        }
      }
      recv = undefined;
      listener = undefined;
      await closeSocket(s);
    },
  };
}
