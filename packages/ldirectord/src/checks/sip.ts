import { randomBytes } from 'node:crypto';
import net from 'node:net';
import os from 'node:os';
import type { CheckSpec, Verdict } from './types.ts';
import { converse } from './conn.ts';
import { udpExchange } from './udp.ts';
import { bracket, CheckFailed, verdictOf } from './util.ts';

/**
 * service=sip, as ldirectord: an `OPTIONS sip:<login>` request over udp or tcp (the virtual's
 * protocol); up when the first line of the answer is `SIP/2.0 200 OK`. login defaults to
 * ldirectord@HOSTNAME as in ldirectord.
 */
export function sipOptions(spec: CheckSpec, transport: 'UDP' | 'TCP', local: string, localPort: number): string {
  const login = spec.login || `ldirectord@${os.hostname()}`;
  const tag = randomBytes(6).toString('hex');
  const branch = `z9hG4bK${randomBytes(8).toString('hex')}`;
  return [
    `OPTIONS sip:${login} SIP/2.0`,
    `Via: SIP/2.0/${transport} ${bracket(local)}:${localPort};branch=${branch};rport`,
    `From: sip:${login};tag=${tag}`,
    `To: sip:${login}`,
    `Call-ID: ${randomBytes(10).toString('hex')}@${local}`,
    'CSeq: 1 OPTIONS',
    `Contact: sip:${login}`,
    'Max-Forwards: 70',
    'User-Agent: tandem-ldirectord',
    'Accept: application/sdp',
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}

function judge(first: string): string {
  if (!/^SIP\/2\.0 200 OK/.test(first)) throw new CheckFailed(`reply: ${first.slice(0, 120) || '(empty)'}`);
  return first;
}

export function checkSip(spec: CheckSpec, signal: AbortSignal): Promise<Verdict> {
  const started = performance.now();
  return verdictOf(started, spec.negotiateTimeoutMs, signal, async (s) => {
    if (spec.protocol === 'tcp') {
      return converse({ host: spec.host, port: spec.port, signal: s }, async (c) => {
        c.write(sipOptions(spec, 'TCP', c.socket.localAddress ?? '127.0.0.1', c.socket.localPort ?? 5060));
        return judge(await c.readLine());
      });
    }
    const local = net.isIPv6(spec.host) ? '::1' : '127.0.0.1';
    const reply = await udpExchange(spec.host, spec.port, Buffer.from(sipOptions(spec, 'UDP', local, 5060)), s, (m) => m.toString('latin1').startsWith('SIP/2.0'));
    return judge(reply.toString('latin1').split(/\r?\n/)[0] ?? '');
  });
}
