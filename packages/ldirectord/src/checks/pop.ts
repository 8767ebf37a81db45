import type { CheckSpec, Verdict } from './types.ts';
import { converse, type Conversation } from './conn.ts';
import { CheckFailed, verdictOf } from './util.ts';

/**
 * service=pop and pops (TLS from the first byte). tandem checks the connection and the `+OK`
 * greeting always, then USER/PASS when login is set. ldirectord (Mail::POP3Client) without login
 * reports a real up even when nothing listens: that bug is deliberately not reproduced.
 */
async function okLine(c: Conversation, what: string): Promise<string> {
  const line = await c.readLine();
  if (!line.startsWith('+OK')) throw new CheckFailed(`${what}: ${line.slice(0, 120)}`);
  return line;
}

export function checkPop(spec: CheckSpec, signal: AbortSignal): Promise<Verdict> {
  const started = performance.now();
  return verdictOf(started, spec.negotiateTimeoutMs, signal, (s) =>
    converse({ host: spec.host, port: spec.port, signal: s, tls: spec.service === 'pops', servername: spec.virtualHost }, async (c) => {
      await okLine(c, 'greeting');
      let how = 'POP3 greeting +OK';
      if (spec.login) {
        c.write(`USER ${spec.login}\r\n`);
        await okLine(c, 'USER');
        c.write(`PASS ${spec.passwd ?? ''}\r\n`);
        await okLine(c, 'PASS');
        how = `POP3 login as ${spec.login} ok`;
      }
      c.write('QUIT\r\n');
      return how;
    }),
  );
}
