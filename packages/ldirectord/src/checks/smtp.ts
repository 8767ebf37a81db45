import os from 'node:os';
import type { CheckSpec, Verdict } from './types.ts';
import { converse, expectCode, readCodeReply } from './conn.ts';
import { verdictOf } from './util.ts';

/**
 * service=smtp and submission, as Net::SMTP's constructor in ldirectord: a 2xx greeting, then EHLO
 * (HELO if the server refuses EHLO) answered with 2xx, then QUIT. request/receive are unused.
 */
export function checkSmtp(spec: CheckSpec, signal: AbortSignal): Promise<Verdict> {
  const started = performance.now();
  return verdictOf(started, spec.negotiateTimeoutMs, signal, (s) =>
    converse({ host: spec.host, port: spec.port, signal: s }, async (c) => {
      const greeting = await readCodeReply(c);
      expectCode(greeting, (code) => code >= 200 && code < 300, 'greeting');
      const me = os.hostname() || 'localhost';
      c.write(`EHLO ${me}\r\n`);
      let hello = await readCodeReply(c);
      if (hello.code >= 500) {
        c.write(`HELO ${me}\r\n`);
        hello = await readCodeReply(c);
      }
      expectCode(hello, (code) => code >= 200 && code < 300, 'EHLO/HELO');
      c.write('QUIT\r\n');
      return `SMTP ${greeting.text.split('\n')[0]!.slice(0, 80)}`;
    }),
  );
}
