import type { CheckSpec, Verdict } from './types.ts';
import { converse } from './conn.ts';
import { CheckFailed, receiveRegex, stripSlash, verdictOf } from './util.ts';

/**
 * service=simpletcp, as ldirectord: send the request without its leading `/` (the two characters
 * `\n` become a newline), shut down the sending side, and read lines until one matches receive.
 * With an empty receive, tandem counts any completed exchange (server closed or sent a line) as up.
 */
export function simpletcpPayload(request: string | undefined): string {
  return stripSlash(request).replace(/\\n/g, '\n');
}

export function checkSimpletcp(spec: CheckSpec, signal: AbortSignal): Promise<Verdict> {
  const started = performance.now();
  return verdictOf(started, spec.negotiateTimeoutMs, signal, (s) =>
    converse({ host: spec.host, port: spec.port, signal: s }, async (c) => {
      c.write(simpletcpPayload(spec.request));
      c.endWrite();
      const re = spec.receive ? receiveRegex(spec.receive) : undefined;
      if (re instanceof Error) throw new CheckFailed(re.message);
      let pending = '';
      let lines = 0;
      for (let i = 0; i < 100_000; i++) {
        const chunk = (await c.readSome(65536)).toString('latin1');
        const eof = chunk.length === 0;
        pending += chunk;
        const parts = pending.split('\n');
        pending = eof ? '' : parts.pop()!;
        for (const line of parts) {
          if (eof && line === '' && parts.length === 1) continue;
          lines++;
          if (!re || re.test(line)) return re ? `line matched /${spec.receive}/` : 'server answered';
        }
        if (eof) break;
      }
      if (!re) return 'server closed the connection';
      throw new CheckFailed(`no line of ${lines} matched /${spec.receive}/`);
    }),
  );
}
