import type { CheckSpec, Verdict } from './types.ts';
import { converse } from './conn.ts';
import { CheckFailed, verdictOf } from './util.ts';

/**
 * service=imap and imaps (TLS from the first byte), as Net::IMAP::Simple in ldirectord: the
 * connection must greet with `* OK` (or `* PREAUTH`); with login set, LOGIN must answer OK.
 */
function quote(s: string): string {
  return `"${s.replace(/[\\"]/g, (ch) => `\\${ch}`)}"`;
}

export function checkImap(spec: CheckSpec, signal: AbortSignal): Promise<Verdict> {
  const started = performance.now();
  return verdictOf(started, spec.negotiateTimeoutMs, signal, (s) =>
    converse({ host: spec.host, port: spec.port, signal: s, tls: spec.service === 'imaps', servername: spec.virtualHost }, async (c) => {
      const greeting = await c.readLine();
      if (!/^\* (OK|PREAUTH)\b/i.test(greeting)) throw new CheckFailed(`greeting: ${greeting.slice(0, 120)}`);
      let how = 'IMAP greeting OK';
      if (spec.login) {
        c.write(`a1 LOGIN ${quote(spec.login)} ${quote(spec.passwd ?? '')}\r\n`);
        for (let i = 0; i < 100; i++) {
          const line = await c.readLine();
          if (line.startsWith('* ')) continue;
          if (/^a1 OK\b/i.test(line)) break;
          throw new CheckFailed(`LOGIN: ${line.slice(0, 120)}`);
        }
        how = `IMAP login as ${spec.login} ok`;
      }
      c.write('a2 LOGOUT\r\n');
      return how;
    }),
  );
}
