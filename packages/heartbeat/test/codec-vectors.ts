/**
 * Loads the captures of real heartbeat 3.0.6 traffic (reference/heartbeat-wire/) as test vectors:
 * the raw packets from the pcap files and the decoded fields and auth strings from *-decoded.txt.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { AuthMethod } from '../src/types.ts';
import { FT_BINARY, type WireField } from '../src/codec.ts';
import { FIXTURES } from '../../../test/fixtures/paths.ts';

export const WIRE_DIR = `${FIXTURES}/reference/heartbeat-wire`;

export interface Vector {
  capture: string;
  index: number;
  fields: WireField[];
  trailer: string;
  /** The recomputed inner auth the capture tool printed ('' when the packet has none). */
  inner: string;
  bytes: Buffer;
}

export interface Capture {
  name: string;
  key: { num: number; method: AuthMethod; secret: string };
  innerAuth: boolean;
  vectors: Vector[];
}

/** UDP/ICMP payloads of an Ethernet pcap, in file order. */
export function pcapPayloads(file: string): Buffer[] {
  const b = readFileSync(file);
  if (b.readUInt32LE(0) !== 0xa1b2c3d4) throw new Error(`${file}: not a little-endian pcap`);
  const out: Buffer[] = [];
  for (let pos = 24; pos + 16 <= b.length;) {
    const incl = b.readUInt32LE(pos + 8);
    const frame = b.subarray(pos + 16, pos + 16 + incl);
    pos += 16 + incl;
    if (frame.readUInt16BE(12) !== 0x0800) continue;
    const ip = frame.subarray(14);
    const ihl = (ip[0]! & 0x0f) * 4;
    const proto = ip[9]!;
    if (proto !== 17 && proto !== 1) continue;
    const payload = ip.subarray(ihl + 8, ip.readUInt16BE(2));
    if (payload.subarray(0, 4).toString('latin1') === '###\n') out.push(Buffer.from(payload));
  }
  return out;
}

export function loadCapture(name: string): Capture {
  const text = readFileSync(join(WIRE_DIR, `${name}-decoded.txt`), 'utf8');
  const auth = /authkeys: (?:auth \d+ \/ )?(\d+) (crc|md5|sha1)(?: (\S+))?/.exec(text);
  const km = /authkeys: (?:auth \d+ \/ \d+ )?(crc|md5|sha1)\s*(\S*)/.exec(text);
  let key: Capture['key'];
  if (auth) key = { num: Number(auth[1]), method: auth[2] as AuthMethod, secret: auth[3] ?? '' };
  else if (km) key = { num: 1, method: km[1] as AuthMethod, secret: km[2] ?? '' };
  else throw new Error(`${name}: no authkeys header`);
  const vectors: Vector[] = [];
  let cur: Vector | undefined;
  for (const line of text.split('\n')) {
    const head = /^#(\d+) /.exec(line);
    if (head) {
      cur = { capture: name, index: Number(head[1]), fields: [], trailer: '', inner: '', bytes: Buffer.alloc(0) };
      vectors.push(cur);
      continue;
    }
    if (!cur) continue;
    const f = /^  \((\d)\)([^=]+)=(.*)$/.exec(line);
    if (f) {
      const type = Number(f[1]);
      let value = f[3]!;
      if (type === FT_BINARY) {
        const hex = /\[binary \d+ bytes: ([0-9a-f]*)\]$/.exec(value);
        if (!hex) throw new Error(`${name} #${cur.index}: binary field without hex`);
        cur.fields.push({ name: f[2]!, type, value: Buffer.from(hex[1]!, 'hex') });
      } else {
        value = value.replace(/ {3}\[hex -> [^\]]*\]$/, '');
        cur.fields.push({ name: f[2]!, type, value: Buffer.from(value, 'latin1') });
      }
      continue;
    }
    const t = /^  trailer auth "([^"]+)"/.exec(line);
    if (t) cur.trailer = t[1]!;
    const i = /recomputed (\S+) inner OK/.exec(line);
    if (i) cur.inner = i[1]!;
  }
  const packets = pcapPayloads(join(WIRE_DIR, `${name}.pcap`));
  // The pcap may hold more packets than were decoded (ping): pair them by their trailer.
  const byTrailer = new Map<string, Buffer>();
  for (const p of packets) {
    const m = /%%%\n\d+:([^,]+),$/.exec(p.toString('latin1'));
    if (m) byTrailer.set(m[1]!, p);
  }
  for (const v of vectors) {
    const p = byTrailer.get(v.trailer);
    if (!p) throw new Error(`${name} #${v.index}: no packet with trailer ${v.trailer} in the pcap`);
    v.bytes = p;
  }
  return { name, key, innerAuth: !name.includes('msgfmt-netstring'), vectors };
}

export function captureNames(): string[] {
  return readdirSync(WIRE_DIR).filter((f) => f.endsWith('-decoded.txt')).map((f) => f.replace(/-decoded\.txt$/, '')).sort();
}

/** Payloads of the tcpdump -X hex dumps (`*-X.txt`), in order. */
export function hexDumpPayloads(name: string): Buffer[] {
  const out: Buffer[] = [];
  let cur: number[] | undefined;
  const flush = (): void => {
    if (!cur) return;
    const ip = Buffer.from(cur);
    const ihl = (ip[0]! & 0x0f) * 4;
    out.push(Buffer.from(ip.subarray(ihl + 8, ip.readUInt16BE(2))));
    cur = undefined;
  };
  for (const line of readFileSync(join(WIRE_DIR, `${name}-X.txt`), 'latin1').split('\n')) {
    const m = /^\t0x[0-9a-f]{4}:  ((?:[0-9a-f]{2,4} ?)+)/.exec(line);
    if (m) {
      cur ??= [];
      for (const h of m[1]!.trim().split(/\s+/)) for (let i = 0; i < h.length; i += 2) cur.push(parseInt(h.slice(i, i + 2), 16));
    } else flush();
  }
  flush();
  return out;
}
