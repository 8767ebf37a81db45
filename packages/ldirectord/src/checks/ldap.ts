import type { CheckSpec, Verdict } from './types.ts';
import { type Conversation, converse } from './conn.ts';
import { CheckFailed, matchReceive, stripSlash, verdictOf } from './util.ts';

/**
 * service=ldap and ldaps (TLS from the first byte), as ldirectord's Net::LDAP check: a simple bind
 * (anonymous without login, else login as bind DN with passwd), a base-scope search of the request
 * (the base DN, without the leading `/`) with filter (objectClass=*), and up when exactly one entry
 * comes back and its DN matches receive (any DN when receive is empty). The few BER messages this
 * needs are encoded here (RFC 4511) rather than pulling in an LDAP client library.
 */
function len(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  if (n < 0x100) return Buffer.from([0x81, n]);
  if (n < 0x10000) return Buffer.from([0x82, n >> 8, n & 0xff]);
  const b = Buffer.alloc(5);
  b[0] = 0x84;
  b.writeUInt32BE(n, 1);
  return b;
}

export function tlv(tag: number, content: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), len(content.length), content]);
}

function int(tag: number, n: number): Buffer {
  const bytes: number[] = [];
  let v = n;
  do {
    bytes.unshift(v & 0xff);
    v >>= 8;
  } while (v > 0);
  if (bytes[0]! & 0x80) bytes.unshift(0);
  return tlv(tag, Buffer.from(bytes));
}

const str = (tag: number, s: string): Buffer => tlv(tag, Buffer.from(s, 'utf8'));
const seq = (tag: number, ...parts: Buffer[]): Buffer => tlv(tag, Buffer.concat(parts));

export function bindRequest(id: number, dn: string, password: string): Buffer {
  return seq(0x30, int(0x02, id), seq(0x60, int(0x02, 3), str(0x04, dn), str(0x80, password)));
}

export function searchRequest(id: number, base: string): Buffer {
  return seq(
    0x30,
    int(0x02, id),
    seq(
      0x63,
      str(0x04, base),
      int(0x0a, 0), // scope base
      int(0x0a, 0), // never deref aliases
      int(0x02, 0),
      int(0x02, 0),
      tlv(0x01, Buffer.from([0])),
      str(0x87, 'objectClass'), // present filter
      seq(0x30, str(0x04, '1.1')), // no attributes: only the DN matters
    ),
  );
}

export interface Element {
  tag: number;
  content: Buffer;
}

/** Splits a constructed element's content into its children. */
export function children(buf: Buffer): Element[] {
  const out: Element[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const tag = buf[pos]!;
    let n = buf[pos + 1]!;
    let p = pos + 2;
    if (n & 0x80) {
      const k = n & 0x7f;
      n = 0;
      for (let i = 0; i < k; i++) n = n * 256 + buf[p + i]!;
      p += k;
    }
    if (p + n > buf.length) throw new CheckFailed('truncated LDAP element');
    out.push({ tag, content: buf.subarray(p, p + n) });
    pos = p + n;
  }
  return out;
}

function intOf(b: Buffer): number {
  let n = 0;
  for (const x of b) n = n * 256 + x;
  return n;
}

/** Reads one LDAPMessage: returns its protocolOp element. */
async function readMessage(c: Conversation): Promise<Element> {
  const head = await c.readBytes(2);
  if (head[0] !== 0x30) throw new CheckFailed(`not an LDAP message (tag 0x${head[0]!.toString(16)})`);
  let n = head[1]!;
  if (n & 0x80) {
    const k = n & 0x7f;
    if (k < 1 || k > 4) throw new CheckFailed('bad LDAP length');
    n = intOf(await c.readBytes(k));
  }
  if (n > 1 << 20) throw new CheckFailed('LDAP message too large');
  const parts = children(await c.readBytes(n));
  if (parts.length < 2) throw new CheckFailed('short LDAP message');
  return parts[1]!;
}

function result(op: Element): { code: number; message: string } {
  const [code, , diag] = children(op.content);
  return { code: code ? intOf(code.content) : -1, message: diag ? diag.content.toString('utf8') : '' };
}

export function checkLdap(spec: CheckSpec, signal: AbortSignal): Promise<Verdict> {
  const started = performance.now();
  const timeout = Math.min(spec.negotiateTimeoutMs, spec.checkTimeoutMs);
  return verdictOf(started, timeout, signal, (s) =>
    converse({ host: spec.host, port: spec.port, signal: s, tls: spec.service === 'ldaps', servername: spec.virtualHost }, async (c) => {
      c.write(bindRequest(1, spec.login ?? '', spec.passwd ?? ''));
      const bind = await readMessage(c);
      if (bind.tag !== 0x61) throw new CheckFailed(`unexpected answer to bind (tag 0x${bind.tag.toString(16)})`);
      const br = result(bind);
      if (br.code !== 0) throw new CheckFailed(`bind${spec.login ? ` as ${spec.login}` : ' (anonymous)'} failed: result ${br.code}${br.message ? ` ${br.message}` : ''}`);
      const base = stripSlash(spec.request);
      c.write(searchRequest(2, base));
      const dns: string[] = [];
      for (let i = 0; i < 10_000; i++) {
        const op = await readMessage(c);
        if (op.tag === 0x64) dns.push(children(op.content)[0]?.content.toString('utf8') ?? '');
        else if (op.tag === 0x65) {
          const sr = result(op);
          if (sr.code !== 0) throw new CheckFailed(`search "${base}" failed: result ${sr.code}${sr.message ? ` ${sr.message}` : ''}`);
          break;
        }
      }
      c.write(Buffer.from([0x30, 0x05, 0x02, 0x01, 0x03, 0x42, 0x00])); // unbind
      if (dns.length !== 1) throw new CheckFailed(`search "${base}" returned ${dns.length} entries, need exactly 1`);
      const m = matchReceive(spec, dns[0]!);
      if (m !== true) throw new CheckFailed(`entry ${dns[0]}: ${m}`);
      return `entry ${dns[0]}`;
    }),
  );
}
