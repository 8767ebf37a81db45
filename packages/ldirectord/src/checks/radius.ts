import { createHash, randomBytes, randomInt } from 'node:crypto';
import os from 'node:os';
import type { CheckSpec, Verdict } from './types.ts';
import { udpExchange } from './udp.ts';
import { CheckFailed, verdictOf } from './util.ts';

/**
 * service=radius, as ldirectord's Authen::Radius check: an Access-Request with User-Name = login
 * and User-Password = passwd hidden with the shared secret (RFC 2865 §5.2). Like ldirectord, any
 * valid reply counts as up — Access-Accept, and also Access-Reject and Access-Challenge: the check
 * shows that the RADIUS server answers, not that the credentials are right. "Valid" means the reply
 * carries the request's identifier and a Response Authenticator computed with the same secret;
 * a reply signed with another secret is down (the server would not accept our requests either).
 */
const CODES: Record<number, string> = { 2: 'Access-Accept', 3: 'Access-Reject', 11: 'Access-Challenge' };

function attr(type: number, value: Buffer): Buffer {
  return Buffer.concat([Buffer.from([type, value.length + 2]), value]);
}

export function hidePassword(password: string, secret: string, authenticator: Buffer): Buffer {
  const p = Buffer.from(password, 'utf8');
  const len = Math.max(16, Math.ceil(p.length / 16) * 16);
  const padded = Buffer.alloc(Math.min(len, 128));
  p.copy(padded, 0, 0, padded.length);
  const out = Buffer.alloc(padded.length);
  let prev = authenticator;
  for (let i = 0; i < padded.length; i += 16) {
    const b = createHash('md5').update(secret).update(prev).digest();
    for (let j = 0; j < 16; j++) out[i + j] = padded[i + j]! ^ b[j]!;
    prev = out.subarray(i, i + 16);
  }
  return out;
}

export function accessRequest(id: number, authenticator: Buffer, login: string, password: string, secret: string): Buffer {
  const attrs = Buffer.concat([
    attr(1, Buffer.from(login, 'utf8')),
    attr(2, hidePassword(password, secret, authenticator)),
    attr(32, Buffer.from(os.hostname() || 'tandem', 'utf8')),
  ]);
  const head = Buffer.alloc(20);
  head[0] = 1;
  head[1] = id;
  head.writeUInt16BE(20 + attrs.length, 2);
  authenticator.copy(head, 4);
  return Buffer.concat([head, attrs]);
}

export function replyValid(reply: Buffer, id: number, requestAuth: Buffer, secret: string): boolean {
  if (reply.length < 20 || reply[1] !== id) return false;
  const len = reply.readUInt16BE(2);
  if (len < 20 || len > reply.length) return false;
  const h = createHash('md5');
  h.update(reply.subarray(0, 4));
  h.update(requestAuth);
  h.update(reply.subarray(20, len));
  h.update(secret);
  return h.digest().equals(reply.subarray(4, 20));
}

export function checkRadius(spec: CheckSpec, signal: AbortSignal): Promise<Verdict> {
  const started = performance.now();
  const timeout = Math.min(spec.negotiateTimeoutMs, spec.checkTimeoutMs);
  return verdictOf(started, timeout, signal, async (s) => {
    if (!spec.secret) throw new CheckFailed('radius needs secret= (the shared secret)');
    const id = randomInt(256);
    const auth = randomBytes(16);
    const req = accessRequest(id, auth, spec.login ?? '', spec.passwd ?? '', spec.secret);
    const reply = await udpExchange(spec.host, spec.port, req, s, (m) => m.length >= 20 && m[1] === id);
    if (!replyValid(reply, id, auth, spec.secret)) throw new CheckFailed('reply not signed with the configured secret');
    return CODES[reply[0]!] ?? `RADIUS code ${reply[0]}`;
  });
}
