/**
 * The heartbeat 3.0.6 wire format (reference/heartbeat.md §5), byte for byte:
 *
 *   "###\n" { len ":" "(" type ")" name "=" value "," }* "%%%\n" len ":" N " " digest ","
 *
 * One datagram (or one serial frame) carries one message. The trailer digest is over every byte from
 * "###\n" through "%%%\n"; the optional inner `auth` field (msgfmt classic) is over the classic text
 * of the other fields. Decoding never throws: it returns a result with a reason, because its input is
 * whatever the network delivers.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { Metrics } from '@tandem/core';
import type { AuthKeys, AuthMethod, HbFields } from './types.ts';

/** Field type digits as heartbeat writes them in `(t)`. */
export const FT_STRING = 0;
export const FT_BINARY = 1;
export const FT_STRUCT = 2;
export const FT_LIST = 3;
export const FT_COMPRESS = 4;
export const FT_UNCOMPRESS = 5;

/** One field exactly as on the wire: the value is raw bytes (a nested message stays unparsed). */
export interface WireField {
  name: string;
  type: number;
  value: Buffer;
}

export interface Trailer {
  keyNum: number;
  digest: string;
}

/** A structurally valid packet. Nothing in it is authenticated yet: pass it through `verify`. */
export interface DecodedPacket {
  /** `netstring` on UDP; `classic` (`>>>`...`<<<` text) on serial links. */
  format: 'netstring' | 'classic';
  fields: WireField[];
  /** Bytes 0 .. end of "%%%\n": what the trailer digest covers. */
  signed: Buffer;
  trailer: Trailer;
}

export type DecodeResult = { ok: true; packet: DecodedPacket } | { ok: false; reason: 'malformed'; detail: string };

const HEAD = Buffer.from('###\n');
const TAIL = Buffer.from('%%%\n');
/** A UDP datagram cannot be larger; heartbeat's own limit (MAXMSG) is smaller. */
export const MAX_PACKET = 65_535;
const MAX_FIELDS = 4096;
const MAX_LEN_DIGITS = 6;

/** Reads a decimal netstring length ending in ':' at `pos`; returns [length, position after ':'] or undefined. */
function readLength(buf: Buffer, pos: number): [number, number] | undefined {
  let n = 0;
  let i = pos;
  while (i < buf.length && i - pos <= MAX_LEN_DIGITS) {
    const c = buf[i]!;
    if (c === 0x3a) {
      if (i === pos) return undefined;
      return [n, i + 1];
    }
    if (c < 0x30 || c > 0x39) return undefined;
    n = n * 10 + (c - 0x30);
    i++;
  }
  return undefined;
}

function fail(detail: string): DecodeResult {
  return { ok: false, reason: 'malformed', detail };
}

/** Parses the framing. Accepts exactly one message and nothing after the trailer. */
export function decodePacket(buf: Buffer): DecodeResult {
  if (!Buffer.isBuffer(buf)) return fail('not a buffer');
  if (buf.length > MAX_PACKET) return fail(`packet of ${buf.length} bytes is too large`);
  if (buf.length < HEAD.length + TAIL.length || !buf.subarray(0, 4).equals(HEAD)) return fail('does not start with "###\\n"');
  const fields: WireField[] = [];
  let pos = HEAD.length;
  for (;;) {
    if (pos + TAIL.length <= buf.length && buf[pos] === 0x25 && buf.subarray(pos, pos + 4).equals(TAIL)) {
      pos += TAIL.length;
      break;
    }
    if (fields.length >= MAX_FIELDS) return fail('too many fields');
    const len = readLength(buf, pos);
    if (!len) return fail(`bad field length at byte ${pos}`);
    const [n, start] = len;
    const end = start + n;
    if (end >= buf.length || buf[end] !== 0x2c) return fail(`field at byte ${pos} overruns the packet or lacks its ","`);
    // "(t)name=value": the type is one digit in parentheses.
    if (n < 5 || buf[start] !== 0x28 || buf[start + 2] !== 0x29) return fail(`field at byte ${pos} has no "(type)"`);
    const type = buf[start + 1]! - 0x30;
    if (type < FT_STRING || type > FT_UNCOMPRESS) return fail(`field at byte ${pos} has unknown type`);
    const eq = buf.indexOf(0x3d, start + 3);
    if (eq < 0 || eq >= end || eq === start + 3) return fail(`field at byte ${pos} has no name=`);
    const name = buf.toString('latin1', start + 3, eq);
    fields.push({ name, type, value: Buffer.from(buf.subarray(eq + 1, end)) });
    pos = end + 1;
  }
  const signed = buf.subarray(0, pos);
  const len = readLength(buf, pos);
  if (!len) return fail('no auth trailer after "%%%\\n"');
  const [n, start] = len;
  const end = start + n;
  if (end !== buf.length - 1 || buf[end] !== 0x2c) return fail('auth trailer length does not match the packet');
  const m = /^(\d{1,2}) ([0-9a-f]{1,128})$/.exec(buf.toString('latin1', start, end));
  if (!m) return fail('auth trailer is not "N digest"');
  return { ok: true, packet: { format: 'netstring', fields, signed: Buffer.from(signed), trailer: { keyNum: Number(m[1]), digest: m[2]! } } };
}

const CLASSIC_HEAD = Buffer.from('>>>\n');
const CLASSIC_TAIL = Buffer.from('<<<\n');

/**
 * The classic text form heartbeat writes on serial links: ">>>\n", one `[(t)]name=value` line per
 * field (binary in base64), the `auth=N digest` line, "<<<\n". The auth digest covers the other
 * lines, which is the same computation as the inner auth field of the netstring form.
 */
export function decodeClassic(buf: Buffer): DecodeResult {
  if (!Buffer.isBuffer(buf)) return fail('not a buffer');
  if (buf.length > MAX_PACKET) return fail(`packet of ${buf.length} bytes is too large`);
  if (buf.length < 8 || !buf.subarray(0, 4).equals(CLASSIC_HEAD) || !buf.subarray(buf.length - 4).equals(CLASSIC_TAIL)) {
    return fail('not a ">>>" ... "<<<" message');
  }
  const lines = buf.toString('latin1', 4, buf.length - 4).split('\n');
  if (lines.pop() !== '') return fail('last line is not terminated');
  if (lines.length > MAX_FIELDS) return fail('too many fields');
  const fields: WireField[] = [];
  let auth: WireField | undefined;
  for (const line of lines) {
    const m = /^(?:\(([0-5])\))?([^=()]+)=(.*)$/s.exec(line);
    if (!m) return fail(`bad classic line [${line.slice(0, 40)}]`);
    const type = m[1] === undefined ? FT_STRING : Number(m[1]);
    let value: Buffer;
    if (type === FT_BINARY) {
      value = Buffer.from(m[3]!, 'base64');
      // Only the canonical form: the signature covers the re-encoded text.
      if (value.toString('base64') !== m[3]) return fail(`field ${m[2]} is not canonical base64`);
    } else value = Buffer.from(m[3]!, 'latin1');
    const f = { name: m[2]!, type, value };
    if (f.name === 'auth') auth = f;
    else fields.push(f);
  }
  if (!auth) return fail('classic message without auth line');
  const a = /^(\d{1,2}) ([0-9a-f]{1,128})$/.exec(auth.value.toString('latin1'));
  if (!a) return fail('auth line is not "N digest"');
  return {
    ok: true,
    packet: { format: 'classic', fields: [...fields, auth], signed: classicText(fields), trailer: { keyNum: Number(a[1]), digest: a[2]! } },
  };
}

/** Either wire form, by its first bytes. */
export function decodeAny(buf: Buffer): DecodeResult {
  if (Buffer.isBuffer(buf) && buf.length >= 4 && buf[0] === 0x3e) return decodeClassic(buf);
  return decodePacket(buf);
}

// ---------------------------------------------------------------------------------------------
// Digests

let crcTable: Uint32Array | undefined;
function table(): Uint32Array {
  if (crcTable) return crcTable;
  crcTable = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 24;
    for (let k = 0; k < 8; k++) c = c & 0x80000000 ? (c << 1) ^ 0x04c11db7 : c << 1;
    crcTable[i] = c >>> 0;
  }
  return crcTable;
}

/** heartbeat's crc: MSB-first CRC-32, polynomial 0x04C11DB7, init 0, no length, final complement, `%lx`. */
export function crc32hb(data: Buffer): string {
  const t = table();
  let crc = 0;
  for (let i = 0; i < data.length; i++) crc = ((crc << 8) ^ t[((crc >>> 24) ^ data[i]!) & 0xff]!) >>> 0;
  return ((~crc) >>> 0).toString(16);
}

export interface SignKey {
  num: number;
  method: AuthMethod;
  secret: string;
}

export function digest(method: AuthMethod, secret: string, data: Buffer): string {
  if (method === 'crc') return crc32hb(data);
  // Standard HMAC; node hashes keys longer than the block size itself, as heartbeat does.
  return createHmac(method, Buffer.from(secret, 'latin1')).update(data).digest('hex');
}

function keyFor(keys: AuthKeys, num: number): SignKey | undefined {
  const k = keys.keys.get(num);
  return k ? { num, method: k.method, secret: k.secret } : undefined;
}

export function activeKey(keys: AuthKeys): SignKey {
  const k = keyFor(keys, keys.active);
  if (!k) throw new Error(`authkeys: active key ${keys.active} is not defined`);
  return k;
}

/**
 * The classic text that the inner `auth` field signs: `name=value\n` per field in order, the
 * `(t)` prefix only for non-strings, binary values in base64. The auth field itself is left out.
 */
export function classicText(fields: readonly WireField[]): Buffer {
  const parts: Buffer[] = [];
  for (const f of fields) {
    if (f.name === 'auth') continue;
    const prefix = f.type === FT_STRING ? '' : `(${f.type})`;
    const value = f.type === FT_BINARY ? Buffer.from(f.value.toString('base64'), 'latin1') : f.value;
    parts.push(Buffer.from(`${prefix}${f.name}=`, 'latin1'), value, Buffer.from('\n'));
  }
  return Buffer.concat(parts);
}

export interface EncodeOptions {
  /** Add the inner `auth` field (msgfmt classic, heartbeat's default). */
  innerAuth: boolean;
}

function fieldBytes(f: WireField): Buffer {
  const body = Buffer.concat([Buffer.from(`(${f.type})${f.name}=`, 'latin1'), f.value]);
  return Buffer.concat([Buffer.from(`${body.length}:`, 'latin1'), body, Buffer.from(',')]);
}

/** Encodes fields (without `auth`) to the exact bytes heartbeat sends, signed with `key`. */
export function encodePacket(fields: readonly WireField[], key: SignKey, opts: EncodeOptions = { innerAuth: true }): Buffer {
  const own = fields.filter((f) => f.name !== 'auth');
  const all = [...own];
  if (opts.innerAuth) all.push(str('auth', `${key.num} ${digest(key.method, key.secret, classicText(own))}`));
  const signed = Buffer.concat([HEAD, ...all.map(fieldBytes), TAIL]);
  const auth = `${key.num} ${digest(key.method, key.secret, signed)}`;
  return Buffer.concat([signed, Buffer.from(`${auth.length}:${auth},`, 'latin1')]);
}

/** The classic (serial) form of fields, signed with `key`. */
export function encodeClassic(fields: readonly WireField[], key: SignKey): Buffer {
  const own = fields.filter((f) => f.name !== 'auth');
  const text = classicText(own);
  return Buffer.concat([CLASSIC_HEAD, text, Buffer.from(`auth=${key.num} ${digest(key.method, key.secret, text)}\n`, 'latin1'), CLASSIC_TAIL]);
}

/**
 * Re-frames a netstring packet as classic text for a serial link, as heartbeat's serial plugin does.
 * The inner auth field already is the classic signature; without one (msgfmt netstring) `key` signs.
 */
export function netstringToClassic(packet: Buffer, key?: SignKey): Buffer | undefined {
  const d = decodePacket(packet);
  if (!d.ok) return undefined;
  const inner = d.packet.fields.find((f) => f.name === 'auth');
  const own = d.packet.fields.filter((f) => f.name !== 'auth');
  if (inner) return Buffer.concat([CLASSIC_HEAD, classicText(own), Buffer.from('auth='), inner.value, Buffer.from('\n'), CLASSIC_TAIL]);
  return key ? encodeClassic(own, key) : undefined;
}

/** A string field. */
export function str(name: string, value: string): WireField {
  return { name, type: FT_STRING, value: Buffer.from(value, 'utf8') };
}

/** A binary field. */
export function bin(name: string, value: Buffer): WireField {
  return { name, type: FT_BINARY, value };
}

/** The control fields heartbeat appends after a message's own fields, in its order. */
export interface ControlFields {
  src: string;
  /** The sender's 16-byte UUID. */
  srcuuid: Buffer;
  /** Omitted for `NS_*` types. */
  seq?: number;
  /** Generation (`hg`). */
  hg: number;
  /** Unix seconds (`ts`). */
  ts: number;
  /** `/proc/loadavg` text; heartbeat omits it on some `NS_*` messages. */
  ld?: string;
  ttl: number;
  /** Set for messages to one node; goes before `src` as in heartbeat. */
  destuuid?: Buffer;
}

/**
 * Message fields (`t` first, then the type's own) followed by the control fields in heartbeat's
 * order: destuuid, src, srcuuid, seq, hg, ts, ld, ttl.
 */
export function buildFields(own: ReadonlyArray<readonly [string, string]>, ctl: ControlFields): WireField[] {
  const out = own.map(([n, v]) => str(n, v));
  if (ctl.destuuid) out.push(bin('destuuid', ctl.destuuid));
  out.push(str('src', ctl.src), bin('srcuuid', ctl.srcuuid));
  if (ctl.seq !== undefined) out.push(str('seq', ctl.seq.toString(16)));
  out.push(str('hg', ctl.hg.toString(16)), str('ts', Math.floor(ctl.ts).toString(16)));
  if (ctl.ld !== undefined) out.push(str('ld', ctl.ld));
  out.push(str('ttl', String(ctl.ttl)));
  return out;
}

/**
 * Fields as a map for the state machines: strings as text, binary values in base64 (heartbeat's
 * classic form). The first occurrence of a name wins.
 */
export function toHbFields(fields: readonly WireField[]): HbFields {
  const m: HbFields = new Map();
  for (const f of fields) {
    if (m.has(f.name)) continue;
    m.set(f.name, f.type === FT_BINARY ? f.value.toString('base64') : f.value.toString('utf8'));
  }
  return m;
}

/** The inner auth field, recomputed: true when present and matching, false when present and wrong, undefined when absent. */
export function checkInnerAuth(fields: readonly WireField[], keys: AuthKeys): boolean | undefined {
  const a = fields.find((f) => f.name === 'auth');
  if (!a) return undefined;
  const m = /^(\d{1,2}) ([0-9a-f]+)$/i.exec(a.value.toString('latin1'));
  if (!m) return false;
  const key = keyFor(keys, Number(m[1]));
  if (!key) return false;
  return digest(key.method, key.secret, classicText(fields)) === m[2]!.toLowerCase();
}

function sameDigest(a: string, b: string): boolean {
  const x = Buffer.from(a, 'latin1');
  const y = Buffer.from(b, 'latin1');
  // Compare hashes so the comparison takes the same time whatever the lengths.
  return x.length === y.length && timingSafeEqual(createHash('sha256').update(x).digest(), createHash('sha256').update(y).digest());
}

// ---------------------------------------------------------------------------------------------
// The authentication gate

/** A message that passed the gate. */
export interface HbMessage {
  /** `t`. */
  type: string;
  src: string;
  /** Undefined for NS_* messages, which carry none. */
  seq: number | undefined;
  /** Generation; undefined on the few NS_* messages without one (ping `NS_st`). */
  hg: number | undefined;
  fields: HbFields;
  wire: WireField[];
  keyNum: number;
}

export type DropReason = 'malformed' | 'bad_auth' | 'unknown_node' | 'replay';

export type Verdict =
  /**
   * `duplicate`: authentic, but this sequence number was already accepted (another medium delivered
   * it first, or a retransmission). It proves the link works; it must not be processed again.
   */
  | { ok: true; duplicate: boolean; msg: HbMessage }
  | { ok: false; reason: DropReason; detail: string; src?: string };

/** How many recent sequence numbers per node are remembered for duplicate detection. */
export const REPLAY_WINDOW = 256;

interface NodeSeqState {
  hg: number;
  maxSeq: number;
  /** Sequence numbers accepted in (maxSeq - REPLAY_WINDOW, maxSeq]. */
  seen: Set<number>;
}

/**
 * Per-node (generation, sequence) memory. A higher generation is a restart and resets the window; a
 * lower one is a replay; within a generation a sequence number is accepted once, and one older than
 * the window is a replay. Heartbeat itself accepts late packets that fill gaps; so does this.
 */
export class ReplayGuard {
  readonly #nodes = new Map<string, NodeSeqState>();

  /** Generation last accepted from a node, for "restarted" detection. */
  generation(node: string): number | undefined {
    return this.#nodes.get(node)?.hg;
  }

  /** Forget a node (it was deleted from the cluster). */
  forget(node: string): void {
    this.#nodes.delete(node);
  }

  /** Classifies without recording. */
  check(node: string, hg: number | undefined, seq: number | undefined): 'fresh' | 'duplicate' | 'replay' | 'restart' {
    const s = this.#nodes.get(node);
    if (!s || hg === undefined) return 'fresh';
    if (hg < s.hg) return 'replay';
    if (hg > s.hg) return 'restart';
    if (seq === undefined) return 'fresh';
    if (seq > s.maxSeq) return 'fresh';
    if (seq <= s.maxSeq - REPLAY_WINDOW) return 'replay';
    return s.seen.has(seq) ? 'duplicate' : 'fresh';
  }

  /** Records an authenticated, accepted message. */
  record(node: string, hg: number | undefined, seq: number | undefined): void {
    if (hg === undefined) return;
    let s = this.#nodes.get(node);
    if (!s || hg > s.hg) {
      s = { hg, maxSeq: 0, seen: new Set() };
      this.#nodes.set(node, s);
    }
    if (hg < s.hg || seq === undefined) return;
    s.seen.add(seq);
    if (seq > s.maxSeq) {
      s.maxSeq = seq;
      if (s.seen.size > REPLAY_WINDOW * 2) for (const q of s.seen) if (q <= seq - REPLAY_WINDOW) s.seen.delete(q);
    }
  }
}

export interface GateContext {
  keys: AuthKeys;
  /** Lower-case node names allowed to talk (node lines, plus ping addresses for NS_st). Undefined = anyone (autojoin any). */
  knownNodes: ReadonlySet<string> | undefined;
  replay: ReplayGuard;
  metrics?: Metrics;
}

const DROPPED = 'tandem_heartbeat_packets_dropped_total';
const ACCEPTED = 'tandem_heartbeat_packets_accepted_total';

function parseHex(text: string | undefined): number | undefined | null {
  if (text === undefined) return undefined;
  if (!/^[0-9a-f]{1,12}$/i.test(text)) return null;
  return parseInt(text, 16);
}

/**
 * The one gate between the network and the state machines: frame, authenticate (trailer with the key
 * the packet names), check the sender is a configured node, then the replay window. Only then is the
 * message handed on. Every drop is counted per reason in `metrics`.
 */
export function verify(packet: Buffer, ctx: GateContext): Verdict {
  const v = verifyInner(packet, ctx);
  if (ctx.metrics) {
    if (v.ok) ctx.metrics.inc(ACCEPTED, 'heartbeat packets that passed the gate', { duplicate: String(v.duplicate) });
    else ctx.metrics.inc(DROPPED, 'heartbeat packets dropped by the gate, by reason', { reason: v.reason });
  }
  return v;
}

function verifyInner(packet: Buffer, ctx: GateContext): Verdict {
  const d = decodeAny(packet);
  if (!d.ok) return { ok: false, reason: 'malformed', detail: d.detail };
  const { fields, signed, trailer } = d.packet;
  const key = keyFor(ctx.keys, trailer.keyNum);
  if (!key) return { ok: false, reason: 'bad_auth', detail: `packet signed with key ${trailer.keyNum}, which authkeys does not define` };
  if (!sameDigest(digest(key.method, key.secret, signed), trailer.digest)) {
    return { ok: false, reason: 'bad_auth', detail: `bad ${key.method} signature (key ${trailer.keyNum})` };
  }
  // Authentic from here on: the rest is checked for sense, not for forgery.
  const once = new Map<string, WireField>();
  for (const f of fields) {
    if (['t', 'src', 'seq', 'hg'].includes(f.name)) {
      if (once.has(f.name)) return { ok: false, reason: 'malformed', detail: `field ${f.name} appears twice` };
      once.set(f.name, f);
    }
  }
  const t = once.get('t');
  const s = once.get('src');
  if (!t || t.type !== FT_STRING) return { ok: false, reason: 'malformed', detail: 'no t= field' };
  if (!s || s.type !== FT_STRING || s.value.length === 0) return { ok: false, reason: 'malformed', detail: 'no src= field' };
  const src = s.value.toString('utf8').toLowerCase();
  const seq = parseHex(once.get('seq')?.value.toString('latin1'));
  const hg = parseHex(once.get('hg')?.value.toString('latin1'));
  if (seq === null || hg === null) return { ok: false, reason: 'malformed', detail: 'seq or hg is not hex', src };
  if (ctx.knownNodes && !ctx.knownNodes.has(src)) return { ok: false, reason: 'unknown_node', detail: `node ${src} is not in a node line`, src };
  const r = ctx.replay.check(src, hg, seq);
  if (r === 'replay') return { ok: false, reason: 'replay', detail: `old generation/sequence (hg=${hg?.toString(16)} seq=${seq?.toString(16)})`, src };
  const msg: HbMessage = { type: t.value.toString('utf8'), src, seq, hg, fields: toHbFields(fields), wire: fields, keyNum: trailer.keyNum };
  if (r === 'duplicate') return { ok: true, duplicate: true, msg };
  ctx.replay.record(src, hg, seq);
  return { ok: true, duplicate: false, msg };
}
