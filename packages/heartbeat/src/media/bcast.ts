/**
 * bcast: status packets to the interface's broadcast address on udpport, as heartbeat's bcast
 * plugin does. The receive socket is bound to that broadcast address, so it hears only broadcasts
 * of this interface's subnet (the stand-in for SO_BINDTODEVICE); our own packets, looped back by
 * the kernel, are recognised by source address and port and dropped.
 */
import type { Socket } from 'node:dgram';
import type { Medium, Received } from '../types.ts';
import { ifaceIPv4 } from './iface.ts';
import { bindSocket, closePair, udpSocket, wirePair, type MediumOptions, sendTracked } from './udp.ts';

export interface BcastSpec { dev: string; port: number }

export function createBcastMedium(spec: BcastSpec, opts: MediumOptions = {}): Medium {
  let recv: Socket | undefined;
  let send: Socket | undefined;
  let target = '';
  return {
    type: 'bcast',
    link: spec.dev,
    async start(onPacket: (r: Received) => void): Promise<void> {
      const ifa = ifaceIPv4(spec.dev);
      target = ifa.broadcast;
      recv = udpSocket();
      send = udpSocket();
      await bindSocket(recv, ifa.broadcast, spec.port, `bcast ${spec.dev}`);
      await bindSocket(send, ifa.address, 0, `bcast ${spec.dev}`);
      send.setBroadcast(true);
      wirePair(recv, send, ifa.address, spec.dev, onPacket, opts);
    },
    send(packet: Buffer): void {
      if (send) sendTracked(send, packet, spec.port, target, opts.onError);
    },
    async close(): Promise<void> {
      const r = recv, s = send;
      recv = send = undefined;
      await closePair(r, s);
    },
  };
}
