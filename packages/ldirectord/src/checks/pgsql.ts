import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import type { CheckSpec, Verdict } from './types.ts';
import { type Conversation, converse } from './conn.ts';
import { CheckFailed, stripSlash, verdictOf } from './util.ts';

/**
 * service=pgsql, as ldirectord's DBI check: connect with login/passwd to database (default: the
 * login's name, as libpq), run the request as a simple query, up when it returns at least one row.
 * The PostgreSQL v3 protocol is spoken here directly: startup, trust / cleartext / md5 /
 * SCRAM-SHA-256 authentication, one simple query. Unlike ldirectord's DBI check it runs under
 * negotiatetimeout.
 */
interface Msg {
  type: string;
  body: Buffer;
}

async function readMsg(c: Conversation): Promise<Msg> {
  const h = await c.readBytes(5);
  const n = h.readUInt32BE(1);
  if (n < 4 || n > 1 << 24) throw new CheckFailed('malformed PostgreSQL message');
  return { type: String.fromCharCode(h[0]!), body: n > 4 ? await c.readBytes(n - 4) : Buffer.alloc(0) };
}

function msg(type: string, body: Buffer): Buffer {
  const h = Buffer.alloc(5);
  h[0] = type.charCodeAt(0);
  h.writeUInt32BE(body.length + 4, 1);
  return Buffer.concat([h, body]);
}

export function errorFields(body: Buffer): string {
  const fields: Record<string, string> = {};
  let pos = 0;
  while (pos < body.length && body[pos] !== 0) {
    const end = body.indexOf(0, pos + 1);
    fields[String.fromCharCode(body[pos]!)] = body.toString('utf8', pos + 1, end);
    pos = end + 1;
  }
  return `${fields.S ?? 'ERROR'} ${fields.C ?? ''}: ${fields.M ?? ''}`.trim();
}

const md5hex = (s: string | Buffer): string => createHash('md5').update(s).digest('hex');

export function md5Password(user: string, password: string, salt: Buffer): string {
  return `md5${md5hex(Buffer.concat([Buffer.from(md5hex(password + user)), salt]))}`;
}

/** The SCRAM-SHA-256 client (RFC 5802/7677) as PostgreSQL uses it (no channel binding). */
export class Scram {
  readonly nonce = randomBytes(18).toString('base64');
  readonly clientFirstBare = `n=,r=${this.nonce}`;
  #serverSignature: Buffer | undefined;

  clientFirst(): string {
    return `n,,${this.clientFirstBare}`;
  }

  clientFinal(password: string, serverFirst: string): string {
    const attrs = Object.fromEntries(serverFirst.split(',').map((kv) => [kv[0], kv.slice(2)]));
    const r = attrs.r ?? '';
    if (!r.startsWith(this.nonce)) throw new CheckFailed('SCRAM: server nonce does not extend ours');
    const salt = Buffer.from(attrs.s ?? '', 'base64');
    const iterations = Number(attrs.i);
    if (!Number.isInteger(iterations) || iterations < 1 || iterations > 1_000_000) throw new CheckFailed('SCRAM: bad iteration count');
    const salted = pbkdf2Sync(password.normalize('NFKC'), salt, iterations, 32, 'sha256');
    const clientKey = createHmac('sha256', salted).update('Client Key').digest();
    const storedKey = createHash('sha256').update(clientKey).digest();
    const withoutProof = `c=biws,r=${r}`;
    const authMessage = `${this.clientFirstBare},${serverFirst},${withoutProof}`;
    const signature = createHmac('sha256', storedKey).update(authMessage).digest();
    const proof = Buffer.alloc(32);
    for (let i = 0; i < 32; i++) proof[i] = clientKey[i]! ^ signature[i]!;
    const serverKey = createHmac('sha256', salted).update('Server Key').digest();
    this.#serverSignature = createHmac('sha256', serverKey).update(authMessage).digest();
    return `${withoutProof},p=${proof.toString('base64')}`;
  }

  verify(serverFinal: string): void {
    const v = /(?:^|,)v=([^,]+)/.exec(serverFinal)?.[1];
    if (!v || !this.#serverSignature || !Buffer.from(v, 'base64').equals(this.#serverSignature)) throw new CheckFailed('SCRAM: server signature does not verify');
  }
}

function cstring(s: string): Buffer {
  return Buffer.from(`${s}\0`, 'utf8');
}

export function checkPgsql(spec: CheckSpec, signal: AbortSignal): Promise<Verdict> {
  const started = performance.now();
  return verdictOf(started, spec.negotiateTimeoutMs, signal, async (s) => {
    const query = stripSlash(spec.request);
    if (!spec.login) throw new CheckFailed('pgsql check needs login=');
    if (!query) throw new CheckFailed('pgsql check needs request= (the SQL query)');
    const user = spec.login;
    const password = spec.passwd ?? '';
    return converse({ host: spec.host, port: spec.port, signal: s }, async (c) => {
      const params = Buffer.concat([cstring('user'), cstring(user), cstring('database'), cstring(spec.database || user), cstring('application_name'), cstring('tandem-ldirectord'), Buffer.from([0])]);
      const startup = Buffer.alloc(8);
      startup.writeUInt32BE(8 + params.length, 0);
      startup.writeUInt32BE(196608, 4);
      c.write(Buffer.concat([startup, params]));
      let scram: Scram | undefined;
      for (let i = 0; i < 1000; i++) {
        const m = await readMsg(c);
        if (m.type === 'E') throw new CheckFailed(errorFields(m.body));
        if (m.type === 'Z') break;
        if (m.type !== 'R') continue;
        const kind = m.body.readUInt32BE(0);
        if (kind === 0) continue;
        if (kind === 3) c.write(msg('p', cstring(password)));
        else if (kind === 5) c.write(msg('p', cstring(md5Password(user, password, m.body.subarray(4, 8)))));
        else if (kind === 10) {
          const mechs = m.body.toString('utf8', 4).split('\0');
          if (!mechs.includes('SCRAM-SHA-256')) throw new CheckFailed(`no supported SASL mechanism in ${mechs.filter(Boolean).join(', ')}`);
          scram = new Scram();
          const first = Buffer.from(scram.clientFirst(), 'utf8');
          const len = Buffer.alloc(4);
          len.writeInt32BE(first.length);
          c.write(msg('p', Buffer.concat([cstring('SCRAM-SHA-256'), len, first])));
        } else if (kind === 11 && scram) c.write(msg('p', Buffer.from(scram.clientFinal(password, m.body.toString('utf8', 4)), 'utf8')));
        else if (kind === 12 && scram) scram.verify(m.body.toString('utf8', 4));
        else throw new CheckFailed(`authentication method ${kind} is not supported`);
      }
      c.write(msg('Q', cstring(query)));
      let rows = 0;
      let error: string | undefined;
      for (let i = 0; i < 1_000_000; i++) {
        const m = await readMsg(c);
        if (m.type === 'D') rows++;
        else if (m.type === 'E') error = errorFields(m.body);
        else if (m.type === 'Z') break;
      }
      c.write(msg('X', Buffer.alloc(0)));
      if (error) throw new CheckFailed(`query failed: ${error}`);
      if (rows < 1) throw new CheckFailed('query returned 0 rows');
      return `${rows} row(s)`;
    });
  });
}
