import { isIPv4, isIPv6 } from 'node:net';

/** Address helpers shared by the table, the rule parser and the listings. */

export type Family = 'inet' | 'inet6';

/**
 * Canonical text of an IP address (IPv6 lower-case and compressed), or undefined if it is none.
 * Memoized by text: diffs and table checks ask for the same few thousand addresses on every pass.
 */
export function canonicalAddress(text: string): string | undefined {
  const hit = canonicalCache.get(text);
  if (hit !== undefined || canonicalCache.has(text)) return hit;
  const out = computeCanonical(text);
  // Bounded: a process fed endless distinct strings starts over rather than growing without end.
  if (canonicalCache.size >= CANONICAL_CACHE_MAX) canonicalCache.clear();
  canonicalCache.set(text, out);
  return out;
}

const CANONICAL_CACHE_MAX = 100_000;
const canonicalCache = new Map<string, string | undefined>();

function computeCanonical(text: string): string | undefined {
  if (isIPv4(text)) return text.split('.').map((o) => String(Number(o))).join('.');
  if (isIPv6(text)) {
    try {
      // The WHATWG URL parser prints IPv6 in RFC 5952 form, which is what inet_ntop prints too.
      const host = new URL(`http://[${text}]/`).hostname;
      return host.slice(1, -1);
    } catch {
      return undefined;
    }
  }
  return undefined;
}

export function familyOf(address: string): Family {
  return address.includes(':') ? 'inet6' : 'inet';
}

/** An IPv4 address as an unsigned 32-bit number. */
export function ipv4Number(a: string): number {
  // By hand, without split: sorting a listing of 10,000 reals calls this ~300,000 times.
  let n = 0;
  let octet = 0;
  let dots = 0;
  for (let i = 0; i < a.length; i++) {
    const c = a.charCodeAt(i);
    if (c === 46) {
      n = n * 256 + octet;
      octet = 0;
      dots++;
    } else if (c >= 48 && c <= 57) {
      octet = octet * 10 + (c - 48);
    } else {
      return ipv4NumberSlow(a);
    }
  }
  return dots === 3 ? n * 256 + octet : ipv4NumberSlow(a);
}

function ipv4NumberSlow(a: string): number {
  const p = a.split('.').map(Number);
  return ((p[0]! << 24) >>> 0) + (p[1]! << 16) + (p[2]! << 8) + p[3]!;
}

/** An IPv6 address as its 16 bytes. */
export function ipv6Bytes(a: string): number[] {
  const [head, tail] = a.includes('::') ? a.split('::') : [a, undefined];
  const words = (s: string | undefined): string[] => (s ? s.split(':') : []);
  const h = words(head);
  const t = tail === undefined ? [] : words(tail);
  const expand = (ws: string[]): number[] =>
    ws.flatMap((w) => {
      if (w.includes('.')) {
        const n = ipv4Number(w);
        return [(n >>> 16) & 0xffff, n & 0xffff];
      }
      return [parseInt(w, 16)];
    });
  const hw = expand(h);
  const tw = expand(t);
  const zeros = tail === undefined ? [] : new Array<number>(8 - hw.length - tw.length).fill(0);
  return [...hw, ...zeros, ...tw].flatMap((w) => [w >> 8, w & 0xff]);
}

/** Orders two addresses the way ipvsadm sorts them: by family, then numerically. */
export function compareAddress(a: string, b: string): number {
  const fa = familyOf(a);
  const fb = familyOf(b);
  if (fa !== fb) return fa === 'inet' ? -1 : 1;
  if (fa === 'inet') return ipv4Number(a) - ipv4Number(b);
  const x = ipv6Bytes(a);
  const y = ipv6Bytes(b);
  for (let i = 0; i < 16; i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return 0;
}

/** A dotted IPv4 netmask as a prefix length, or undefined when the bits are not contiguous. */
export function maskPrefix(mask: string): number | undefined {
  if (!isIPv4(mask)) return undefined;
  const n = ipv4Number(mask);
  let len = 0;
  while (len < 32 && (n & (1 << (31 - len))) !== 0) len++;
  const rebuilt = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  return rebuilt === n ? len : undefined;
}
