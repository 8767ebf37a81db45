import { createHash } from 'node:crypto';
import type { CheckSpec, Verdict } from './types.ts';
import { type Conversation, converse } from './conn.ts';
import { CheckFailed, stripSlash, verdictOf } from './util.ts';

/**
 * service=mysql, as ldirectord's DBI check: connect to the database with login/passwd, run the
 * request as a query, up when it returns at least one row. login and request are required, as in
 * ldirectord. The MySQL/MariaDB client protocol is spoken here directly (handshake v10,
 * mysql_native_password, caching_sha2_password's fast path, COM_QUERY text result sets): a check
 * needs a handful of packets, and unlike ldirectord (no timeout at all for SQL checks, and a
 * missing DBD driver kills the daemon) it runs under negotiatetimeout.
 */
const CLIENT_LONG_PASSWORD = 0x1;
const CLIENT_CONNECT_WITH_DB = 0x8;
const CLIENT_PROTOCOL_41 = 0x200;
const CLIENT_TRANSACTIONS = 0x2000;
const CLIENT_SECURE_CONNECTION = 0x8000;
const CLIENT_PLUGIN_AUTH = 0x80000;

const sha1 = (...b: Buffer[]): Buffer => b.reduce((h, x) => h.update(x), createHash('sha1')).digest();
const sha256 = (...b: Buffer[]): Buffer => b.reduce((h, x) => h.update(x), createHash('sha256')).digest();

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.alloc(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i % b.length]!;
  return out;
}

export function nativePassword(password: string, scramble: Buffer): Buffer {
  if (!password) return Buffer.alloc(0);
  const p1 = sha1(Buffer.from(password, 'utf8'));
  return xor(p1, sha1(scramble.subarray(0, 20), sha1(p1)));
}

export function cachingSha2Password(password: string, scramble: Buffer): Buffer {
  if (!password) return Buffer.alloc(0);
  const p1 = sha256(Buffer.from(password, 'utf8'));
  return xor(p1, sha256(sha256(p1), scramble.subarray(0, 20)));
}

function authFor(plugin: string, password: string, scramble: Buffer): Buffer {
  if (plugin === 'mysql_native_password') return nativePassword(password, scramble);
  if (plugin === 'caching_sha2_password') return cachingSha2Password(password, scramble);
  throw new CheckFailed(`authentication plugin ${plugin} is not supported (use mysql_native_password)`);
}

class Packets {
  readonly c: Conversation;
  seq = 0;
  constructor(c: Conversation) {
    this.c = c;
  }
  async read(): Promise<Buffer> {
    const h = await this.c.readBytes(4);
    const n = h[0]! | (h[1]! << 8) | (h[2]! << 16);
    this.seq = (h[3]! + 1) & 0xff;
    return this.c.readBytes(n);
  }
  write(payload: Buffer): void {
    const h = Buffer.from([payload.length & 0xff, (payload.length >> 8) & 0xff, (payload.length >> 16) & 0xff, this.seq]);
    this.seq = (this.seq + 1) & 0xff;
    this.c.write(Buffer.concat([h, payload]));
  }
}

function errorText(p: Buffer): string {
  const code = p.readUInt16LE(1);
  const msg = p.toString('utf8', p[3] === 0x23 ? 9 : 3);
  return `error ${code}: ${msg}`;
}

function cstr(b: Buffer, pos: number): { s: string; next: number } {
  const end = b.indexOf(0, pos);
  const e = end < 0 ? b.length : end;
  return { s: b.toString('latin1', pos, e), next: e + 1 };
}

export function parseHandshake(p: Buffer): { scramble: Buffer; plugin: string; capabilities: number; version: string } {
  if (p[0] === 0xff) throw new CheckFailed(errorText(p));
  if (p[0] !== 10) throw new CheckFailed(`unsupported MySQL protocol version ${p[0]}`);
  const ver = cstr(p, 1);
  let pos = ver.next + 4;
  const part1 = p.subarray(pos, pos + 8);
  pos += 9;
  let caps = p.readUInt16LE(pos);
  pos += 2;
  if (pos >= p.length) return { scramble: part1, plugin: 'mysql_native_password', capabilities: caps, version: ver.s };
  pos += 3;
  caps |= p.readUInt16LE(pos) << 16;
  pos += 2;
  const authLen = p[pos]!;
  pos += 11;
  const n2 = Math.max(13, authLen - 8);
  const part2 = p.subarray(pos, pos + n2 - 1); // last byte is a NUL
  pos += n2;
  const plugin = caps & CLIENT_PLUGIN_AUTH ? cstr(p, pos).s : 'mysql_native_password';
  return { scramble: Buffer.concat([part1, part2]), plugin: plugin || 'mysql_native_password', capabilities: caps >>> 0, version: ver.s };
}

function lenenc(b: Buffer, pos: number): { n: number; next: number } {
  const f = b[pos]!;
  if (f < 0xfb) return { n: f, next: pos + 1 };
  if (f === 0xfc) return { n: b.readUInt16LE(pos + 1), next: pos + 3 };
  if (f === 0xfd) return { n: b.readUIntLE(pos + 1, 3), next: pos + 4 };
  return { n: Number(b.readBigUInt64LE(pos + 1)), next: pos + 9 };
}

const isEof = (p: Buffer): boolean => p[0] === 0xfe && p.length < 9;

export function checkMysql(spec: CheckSpec, signal: AbortSignal): Promise<Verdict> {
  const started = performance.now();
  return verdictOf(started, spec.negotiateTimeoutMs, signal, async (s) => {
    const query = stripSlash(spec.request);
    if (!spec.login) throw new CheckFailed('mysql check needs login=');
    if (!query) throw new CheckFailed('mysql check needs request= (the SQL query)');
    return converse({ host: spec.host, port: spec.port, signal: s }, async (c) => {
      const io = new Packets(c);
      const hs = parseHandshake(await io.read());
      let caps = CLIENT_LONG_PASSWORD | CLIENT_PROTOCOL_41 | CLIENT_TRANSACTIONS | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH;
      if (spec.database) caps |= CLIENT_CONNECT_WITH_DB;
      const password = spec.passwd ?? '';
      const auth = authFor(hs.plugin, password, hs.scramble);
      const fixed = Buffer.alloc(32);
      fixed.writeUInt32LE(caps >>> 0, 0);
      fixed.writeUInt32LE(1 << 24, 4);
      fixed[8] = 45; // utf8mb4_general_ci
      io.write(
        Buffer.concat([
          fixed,
          Buffer.from(`${spec.login}\0`, 'utf8'),
          Buffer.from([auth.length]),
          auth,
          spec.database ? Buffer.from(`${spec.database}\0`, 'utf8') : Buffer.alloc(0),
          Buffer.from(`${hs.plugin}\0`, 'latin1'),
        ]),
      );
      let plugin = hs.plugin;
      for (let round = 0; ; round++) {
        if (round > 5) throw new CheckFailed('authentication did not finish');
        const p = await io.read();
        if (p[0] === 0x00) break;
        if (p[0] === 0xff) throw new CheckFailed(errorText(p));
        if (p[0] === 0xfe) {
          const name = cstr(p, 1);
          plugin = name.s;
          let data = p.subarray(name.next);
          if (data.length && data[data.length - 1] === 0) data = data.subarray(0, -1);
          io.write(authFor(plugin, password, data));
        } else if (p[0] === 0x01 && plugin === 'caching_sha2_password') {
          if (p[1] === 0x03) continue; // fast authentication succeeded; OK follows
          throw new CheckFailed('caching_sha2_password needs full authentication (TLS or RSA); not supported by this check');
        } else throw new CheckFailed(`unexpected packet 0x${p[0]!.toString(16)} during authentication`);
      }
      io.seq = 0;
      io.write(Buffer.concat([Buffer.from([0x03]), Buffer.from(query, 'utf8')]));
      const first = await io.read();
      if (first[0] === 0xff) throw new CheckFailed(`query failed: ${errorText(first)}`);
      if (first[0] === 0x00) throw new CheckFailed('query returned no result set');
      const columns = lenenc(first, 0).n;
      for (let i = 0; i < columns; i++) await io.read();
      const eof = await io.read();
      if (!isEof(eof)) throw new CheckFailed('malformed result set');
      let rows = 0;
      for (let i = 0; i < 1_000_000; i++) {
        const p = await io.read();
        if (p[0] === 0xff) throw new CheckFailed(`query failed: ${errorText(p)}`);
        if (isEof(p)) break;
        rows++;
      }
      io.seq = 0;
      io.write(Buffer.from([0x01]));
      if (rows < 1) throw new CheckFailed('query returned 0 rows');
      return `${rows} row(s) from ${hs.version}`;
    });
  });
}
