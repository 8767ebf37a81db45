import type { CheckSpec, Verdict } from './types.ts';
import { converse } from './conn.ts';
import { CheckFailed, verdictOf } from './util.ts';

/** service=nntp, as ldirectord: connect, read the greeting (at most 64 bytes), up if it starts with `2`. */
export function checkNntp(spec: CheckSpec, signal: AbortSignal): Promise<Verdict> {
  const started = performance.now();
  return verdictOf(started, spec.negotiateTimeoutMs, signal, (s) =>
    converse({ host: spec.host, port: spec.port, signal: s }, async (c) => {
      const reply = (await c.readSome(64)).toString('latin1');
      if (!reply.startsWith('2')) throw new CheckFailed(reply ? `greeting: ${reply.trim().slice(0, 64)}` : 'connection closed without a greeting');
      return `NNTP ${reply.trim().split('\n')[0]}`;
    }),
  );
}
