/**
 * mcast: `mcast dev group port ttl loop`. The receive socket is bound to group:port and joins the
 * group on the interface's address (IP_ADD_MEMBERSHIP on dev); the send socket is bound to the
 * interface's address with IP_MULTICAST_IF, IP_MULTICAST_TTL and IP_MULTICAST_LOOP as configured.
 * With loop 1 our own packets come back; they are dropped by source address and port.
 */
import type { Socket } from 'node:dgram';
import type { Medium, Received } from '../types.ts';
import { ifaceIPv4 } from './iface.ts';
import { bindSocket, closePair, udpSocket, wirePair, type MediumOptions, sendTracked } from './udp.ts';

export interface McastSpec { dev: string; group: string; port: number; ttl: number; loop: boolean }

export function createMcastMedium(spec: McastSpec, opts: MediumOptions = {}): Medium {
  let recv: Socket | undefined;
  let send: Socket | undefined;
  return {
    type: 'mcast',
    link: spec.dev,
    async start(onPacket: (r: Received) => void): Promise<void> {
      const ifa = ifaceIPv4(spec.dev);
      recv = udpSocket();
      send = udpSocket();
      await bindSocket(recv, spec.group, spec.port, `mcast ${spec.dev}`);
      recv.addMembership(spec.group, ifa.address);
      await bindSocket(send, ifa.address, 0, `mcast ${spec.dev}`);
      send.setMulticastInterface(ifa.address);
      send.setMulticastTTL(spec.ttl);
      send.setMulticastLoopback(spec.loop);
      wirePair(recv, send, ifa.address, spec.dev, onPacket, opts);
    },
    send(packet: Buffer): void {
      if (send) sendTracked(send, packet, spec.port, spec.group, opts.onError);
    },
    async close(): Promise<void> {
      const r = recv, s = send;
      recv = send = undefined;
      await closePair(r, s);
    },
  };
}
