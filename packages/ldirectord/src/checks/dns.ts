import { randomInt } from 'node:crypto';
import net from 'node:net';
import type { CheckSpec, Verdict } from './types.ts';
import { converse } from './conn.ts';
import { udpExchange } from './udp.ts';
import { CheckFailed, receiveRegex, stripSlash, verdictOf } from './util.ts';

/**
 * service=dns, as ldirectord's Net::DNS check pointed at the real server: query the request name
 * for A records (PTR when the request is an IP address), over TCP when the virtual is tcp, else
 * UDP; up when some A address (or PTR name) matches receive. As in ldirectord an empty receive is
 * always down: there is nothing to compare the answer with.
 */
const TYPE_A = 1;
const TYPE_PTR = 12;
const TYPE_AAAA = 28;

export function queryName(request: string): { name: string; type: number } {
  const r = stripSlash(request);
  if (net.isIPv4(r)) return { name: `${r.split('.').reverse().join('.')}.in-addr.arpa`, type: TYPE_PTR };
  if (net.isIPv6(r)) {
    const full = expand6(r);
    return { name: `${full.split('').reverse().join('.')}.ip6.arpa`, type: TYPE_PTR };
  }
  return { name: r.replace(/\.$/, ''), type: TYPE_A };
}

function expand6(a: string): string {
  const [head, tail] = a.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const mid = tail === undefined ? [] : new Array(8 - h.length - t.length).fill('0');
  return [...h, ...mid, ...t].map((g) => g.padStart(4, '0')).join('');
}

export function encodeQuery(id: number, name: string, type: number): Buffer {
  const labels = name.split('.').filter(Boolean).map((l) => {
    const b = Buffer.from(l, 'latin1');
    if (b.length > 63) throw new CheckFailed(`dns label too long: ${l}`);
    return Buffer.concat([Buffer.from([b.length]), b]);
  });
  const head = Buffer.alloc(12);
  head.writeUInt16BE(id, 0);
  head.writeUInt16BE(0x0100, 2); // recursion desired
  head.writeUInt16BE(1, 4);
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(type, 0);
  tail.writeUInt16BE(1, 2);
  return Buffer.concat([head, ...labels, Buffer.from([0]), tail]);
}

function readName(msg: Buffer, start: number): { name: string; next: number } {
  const labels: string[] = [];
  let pos = start;
  let next = -1;
  for (let hops = 0; hops < 64; hops++) {
    const len = msg[pos];
    if (len === undefined) throw new CheckFailed('truncated dns name');
    if (len === 0) {
      if (next < 0) next = pos + 1;
      return { name: labels.join('.'), next };
    }
    if ((len & 0xc0) === 0xc0) {
      if (next < 0) next = pos + 2;
      pos = ((len & 0x3f) << 8) | msg[pos + 1]!;
      continue;
    }
    labels.push(msg.toString('latin1', pos + 1, pos + 1 + len));
    pos += 1 + len;
  }
  throw new CheckFailed('dns name compression loop');
}

export interface DnsAnswer {
  rcode: number;
  values: string[];
}

/** The A/AAAA addresses and PTR names of the answer section. */
export function decodeAnswer(msg: Buffer, id: number): DnsAnswer {
  if (msg.length < 12 || msg.readUInt16BE(0) !== id) throw new CheckFailed('dns reply with a wrong id');
  const flags = msg.readUInt16BE(2);
  const rcode = flags & 0xf;
  const qd = msg.readUInt16BE(4);
  const an = msg.readUInt16BE(6);
  let pos = 12;
  for (let i = 0; i < qd; i++) pos = readName(msg, pos).next + 4;
  const values: string[] = [];
  for (let i = 0; i < an; i++) {
    pos = readName(msg, pos).next;
    const type = msg.readUInt16BE(pos);
    const rdlen = msg.readUInt16BE(pos + 8);
    const rd = pos + 10;
    if (type === TYPE_A && rdlen === 4) values.push(`${msg[rd]}.${msg[rd + 1]}.${msg[rd + 2]}.${msg[rd + 3]}`);
    else if (type === TYPE_AAAA && rdlen === 16) {
      const g: string[] = [];
      for (let j = 0; j < 16; j += 2) g.push(msg.readUInt16BE(rd + j).toString(16));
      values.push(g.join(':'));
    } else if (type === TYPE_PTR) values.push(readName(msg, rd).name);
    pos = rd + rdlen;
  }
  return { rcode, values };
}

const RCODES: Record<number, string> = { 1: 'FORMERR', 2: 'SERVFAIL', 3: 'NXDOMAIN', 4: 'NOTIMP', 5: 'REFUSED' };

export function checkDns(spec: CheckSpec, signal: AbortSignal): Promise<Verdict> {
  const started = performance.now();
  return verdictOf(started, spec.negotiateTimeoutMs, signal, async (s) => {
    if (!spec.receive) throw new CheckFailed('dns check needs receive= (as in ldirectord, an empty receive is always down)');
    const re = receiveRegex(spec.receive);
    if (re instanceof Error) throw new CheckFailed(re.message);
    const { name, type } = queryName(spec.request ?? '');
    if (!name) throw new CheckFailed('dns check needs request= (the name to resolve)');
    const id = randomInt(65536);
    const query = encodeQuery(id, name, type);
    let reply: Buffer;
    if (spec.protocol === 'tcp') {
      reply = await converse({ host: spec.host, port: spec.port, signal: s }, async (c) => {
        const len = Buffer.alloc(2);
        len.writeUInt16BE(query.length);
        c.write(Buffer.concat([len, query]));
        const n = (await c.readBytes(2)).readUInt16BE(0);
        return c.readBytes(n);
      });
    } else {
      reply = await udpExchange(spec.host, spec.port, query, s, (m) => m.length >= 12 && m.readUInt16BE(0) === id);
    }
    const ans = decodeAnswer(reply, id);
    const what = `${type === TYPE_PTR ? 'PTR' : 'A'} ${name}`;
    if (ans.rcode !== 0) throw new CheckFailed(`${what}: ${RCODES[ans.rcode] ?? `rcode ${ans.rcode}`}`);
    if (ans.values.length === 0) throw new CheckFailed(`${what}: no answer`);
    const hit = ans.values.find((v) => re.test(v));
    if (hit === undefined) throw new CheckFailed(`${what}: ${ans.values.join(', ')} did not match /${spec.receive}/`);
    return `${what} = ${hit}`;
  });
}
