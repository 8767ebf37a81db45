/**
 * The kernel schedulers' address hashing, bit for bit: the address folded to 32 bits in host
 * order (IPv6: the four words XORed), hash_32 (golden ratio multiply), the dh multiplier, and
 * hsiphash as a 64-bit kernel computes it (SipHash-1-3, 64-bit key words, result truncated to 32
 * bits).
 */
import { isIPv4 } from 'node:net';

/** ntohl(addr_fold) of ip_vs_{dh,sh,mh}_hashkey. Accepts IPv4-mapped IPv6 (::ffff:a.b.c.d). */
export function addrFold(address: string): number {
  if (address.startsWith('::ffff:') && isIPv4(address.slice(7))) address = address.slice(7);
  if (!address.includes(':')) {
    let v = 0;
    let part = 0;
    for (let i = 0; i < address.length; i++) {
      const c = address.charCodeAt(i);
      if (c === 46) {
        v = (v * 256 + part) >>> 0;
        part = 0;
      } else part = part * 10 + (c - 48);
    }
    return (v * 256 + part) >>> 0;
  }
  const w = ipv6Words(address);
  return (w[0] ^ w[1] ^ w[2] ^ w[3]) >>> 0;
}

/** An IPv6 address as four 32-bit words (network order of words, host value of each). */
export function ipv6Words(address: string): [number, number, number, number] {
  const groups = ipv6Groups(address);
  return [
    ((groups[0] << 16) | groups[1]) >>> 0,
    ((groups[2] << 16) | groups[3]) >>> 0,
    ((groups[4] << 16) | groups[5]) >>> 0,
    ((groups[6] << 16) | groups[7]) >>> 0,
  ];
}

/** Eight 16-bit groups of an IPv6 address (handles ::, and an embedded IPv4 tail). */
export function ipv6Groups(address: string): number[] {
  let a = address;
  const pct = a.indexOf('%');
  if (pct >= 0) a = a.slice(0, pct);
  let tail: number[] = [];
  const lastColon = a.lastIndexOf(':');
  const last = a.slice(lastColon + 1);
  if (last.includes('.')) {
    const v4 = addrFold(last);
    tail = [v4 >>> 16, v4 & 0xffff];
    a = a.slice(0, lastColon + 1) + '0';
  }
  const [head, rest] = a.includes('::') ? a.split('::') as [string, string] : [a, undefined];
  const parse = (s: string) => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16) & 0xffff));
  const h = parse(head);
  let groups: number[];
  if (rest === undefined) groups = h;
  else {
    const r = parse(rest);
    groups = [...h, ...new Array(Math.max(0, 8 - h.length - r.length)).fill(0), ...r];
  }
  if (tail.length) groups = [...groups.slice(0, groups.length - 1), ...tail];
  while (groups.length < 8) groups.push(0);
  return groups.slice(0, 8);
}

/** hash_32(val, bits) of include/linux/hash.h. */
export function hash32(val: number, bits: number): number {
  return Math.imul(val >>> 0, 0x61c88647) >>> (32 - bits);
}

/** (a * 2654435761) & mask, as ip_vs_dh_hashkey (the low bits of the product). */
export function multHash(val: number, mask: number): number {
  return Math.imul(val >>> 0, 2654435761 | 0) & mask;
}

const M64 = (1n << 64n) - 1n;
const rol = (x: bigint, b: bigint) => ((x << b) | (x >> (64n - b))) & M64;

/** hsiphash(&v, 4, {k0, k1}) on a 64-bit kernel. */
export function hsiphash32(v: number, k0: bigint, k1: bigint): number {
  let v0 = 0x736f6d6570736575n ^ k0;
  let v1 = 0x646f72616e646f6dn ^ k1;
  let v2 = 0x6c7967656e657261n ^ k0;
  let v3 = 0x7465646279746573n ^ k1;
  const b = (4n << 56n) | BigInt(v >>> 0);
  const round = () => {
    v0 = (v0 + v1) & M64; v1 = rol(v1, 13n); v1 ^= v0; v0 = rol(v0, 32n);
    v2 = (v2 + v3) & M64; v3 = rol(v3, 16n); v3 ^= v2;
    v0 = (v0 + v3) & M64; v3 = rol(v3, 21n); v3 ^= v0;
    v2 = (v2 + v1) & M64; v1 = rol(v1, 17n); v1 ^= v2; v2 = rol(v2, 32n);
  };
  v3 ^= b;
  round();
  v0 ^= b;
  v2 ^= 0xffn;
  round();
  round();
  round();
  return Number((v0 ^ v1 ^ v2 ^ v3) & 0xffffffffn);
}
