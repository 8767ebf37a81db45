import type { CheckSpec, Verdict } from './types.ts';

/**
 * Small pieces every checker shares: the verdict shape, how errors read in a log line, the receive
 * regex (compiled once per distinct pattern, because the hot path runs thousands of checks a second)
 * and ldirectord's request normalisation.
 */

export function up(reason: string, started: number): Verdict {
  return { up: true, reason, durationMs: performance.now() - started };
}

export function down(reason: string, started: number): Verdict {
  return { up: false, reason, durationMs: performance.now() - started };
}

/** Raised by a checker's own deadline, so the verdict can say "timeout after N ms". */
export class CheckTimeout extends Error {
  readonly ms: number;
  constructor(ms: number) {
    super(`timeout after ${ms} ms`);
    this.name = 'CheckTimeout';
    this.ms = ms;
  }
}

export class CheckAborted extends Error {
  constructor() {
    super('check aborted');
    this.name = 'CheckAborted';
  }
}

/** A protocol answer that does not count as up; its message is the verdict's reason. */
export class CheckFailed extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CheckFailed';
  }
}

const ERRNO_TEXT: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset by peer',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  EPIPE: 'connection closed while sending',
  ETIMEDOUT: 'connect timed out',
  EADDRNOTAVAIL: 'address not available',
  ENOTFOUND: 'host not found',
};

/** One short phrase for a log line: `connection refused`, `timeout after 1000 ms`, `550 No such file`. */
export function describeError(err: unknown): string {
  if (err instanceof CheckTimeout || err instanceof CheckAborted || err instanceof CheckFailed) return err.message;
  const e = err as { code?: string; message?: string; name?: string };
  if (e?.name === 'AbortError') return 'check aborted';
  if (e?.code && ERRNO_TEXT[e.code]) return ERRNO_TEXT[e.code]!;
  if (e?.code && e.message) return e.message.includes(e.code) ? e.message : `${e.code}: ${e.message}`;
  return e?.message ?? String(err);
}

const regexCache = new Map<string, RegExp | Error>();

/**
 * ldirectord matches `receive` as a Perl regex, unanchored and case-sensitive. JavaScript's syntax
 * covers the common subset; a pattern JavaScript cannot compile makes the check fail with a reason
 * instead of throwing inside the loop.
 */
export function receiveRegex(receive: string): RegExp | Error {
  let re = regexCache.get(receive);
  if (re === undefined) {
    try {
      re = new RegExp(receive);
    } catch (err) {
      re = new Error(`receive "${receive}" is not a valid regular expression: ${(err as Error).message}`);
    }
    if (regexCache.size > 10_000) regexCache.clear();
    regexCache.set(receive, re);
  }
  return re;
}

/** True when receive is empty/absent or matches text; a reason string when it does not. */
export function matchReceive(spec: CheckSpec, text: string): true | string {
  if (!spec.receive) return true;
  const re = receiveRegex(spec.receive);
  if (re instanceof Error) return re.message;
  re.lastIndex = 0;
  return re.test(text) ? true : `receive /${spec.receive}/ did not match`;
}

/** The request without ldirectord's leading slash (dns names, LDAP base DNs, SQL, simpletcp bytes). */
export function stripSlash(request: string | undefined): string {
  if (!request) return '';
  return request.startsWith('/') ? request.slice(1) : request;
}

/** `[v6]` for URLs and Host-less endpoints. */
export function bracket(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/**
 * A check's deadline timer. Node runs expired timers before it polls for I/O, so when the event loop
 * lags (a busy or starved process) a timer can fire while the answer already waits in the socket:
 * the check would be called down for the process's own slowness. The timeout is therefore decided
 * one step later, in setImmediate, which runs after the I/O poll of the same loop iteration.
 */
export function lagTolerantTimeout(fn: () => void, ms: number): { clear: () => void } {
  let immediate: NodeJS.Immediate | undefined;
  const timer = setTimeout(() => {
    immediate = setImmediate(fn);
  }, ms);
  return {
    clear: () => {
      clearTimeout(timer);
      if (immediate) clearImmediate(immediate);
    },
  };
}

/**
 * Runs `body` with a deadline and the caller's signal combined: `body` receives one signal that
 * fires on either, and the promise rejects with CheckTimeout or CheckAborted. Checkers close their
 * sockets from that signal, so nothing outlives the check.
 */
export async function withDeadline<T>(timeoutMs: number, outer: AbortSignal, body: (signal: AbortSignal) => Promise<T>): Promise<T> {
  if (outer.aborted) throw new CheckAborted();
  const ctl = new AbortController();
  let reason: Error | undefined;
  const timer = lagTolerantTimeout(() => {
    reason = new CheckTimeout(timeoutMs);
    ctl.abort(reason);
  }, timeoutMs);
  const onAbort = (): void => {
    reason = new CheckAborted();
    ctl.abort(reason);
  };
  outer.addEventListener('abort', onAbort, { once: true });
  try {
    return await body(ctl.signal);
  } catch (err) {
    throw reason ?? err;
  } finally {
    timer.clear();
    outer.removeEventListener('abort', onAbort);
  }
}

/** Runs a checker body and turns any failure into a down verdict with a reason. */
export async function verdictOf(started: number, timeoutMs: number, signal: AbortSignal, body: (signal: AbortSignal) => Promise<string>): Promise<Verdict> {
  try {
    const reason = await withDeadline(timeoutMs, signal, body);
    return up(reason, started);
  } catch (err) {
    return down(describeError(err), started);
  }
}
