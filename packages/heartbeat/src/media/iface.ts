/**
 * What the UDP media need to know about an interface. Node has no SO_BINDTODEVICE, so a medium is
 * tied to its interface by addresses instead: the send socket is bound to the interface's own
 * address (the source heartbeat peers see), and the receive socket to the address that only that
 * interface's traffic is sent to (its broadcast address, the multicast group joined on it, or its
 * own unicast address).
 */
import { networkInterfaces } from 'node:os';
import { TandemError } from '@tandem/core';

export interface IfaceAddress {
  dev: string;
  address: string;
  netmask: string;
  /** Directed broadcast address of the subnet (address | ~netmask). */
  broadcast: string;
  prefix: number;
}

function toInt(a: string): number {
  return a.split('.').reduce((n, o) => ((n << 8) | Number(o)) >>> 0, 0);
}
function toDotted(n: number): string {
  return [24, 16, 8, 0].map((s) => (n >>> s) & 0xff).join('.');
}

export function broadcastOf(address: string, netmask: string): string {
  return toDotted((toInt(address) | (~toInt(netmask) >>> 0)) >>> 0);
}

/** The first IPv4 address of `dev`; throws E_MEDIA_INTERFACE when there is none. */
export function ifaceIPv4(dev: string): IfaceAddress {
  const all = networkInterfaces();
  const list = all[dev];
  const v4 = list?.find((a) => a.family === 'IPv4');
  if (!v4) {
    throw new TandemError('E_MEDIA_INTERFACE', list ? `interface ${dev} has no IPv4 address` : `interface ${dev} does not exist or is down`, {
      hint: `interfaces with addresses here: ${Object.keys(all).join(', ') || 'none'}`,
      details: { dev },
    });
  }
  const prefix = Number((v4.cidr ?? '/32').split('/')[1]);
  return { dev, address: v4.address, netmask: v4.netmask, broadcast: broadcastOf(v4.address, v4.netmask), prefix };
}

/** Every local IPv4 address, to recognise packets a node sent itself. */
export function localIPv4(): Set<string> {
  const out = new Set<string>();
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) if (a.family === 'IPv4') out.add(a.address);
  return out;
}
