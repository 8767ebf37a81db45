import net from 'node:net';
import type { CheckSpec, Verdict } from './types.ts';
import { bracket, CheckAborted, CheckFailed, CheckTimeout, describeError, down, lagTolerantTimeout, matchReceive, up } from './util.ts';
import { ResponseParser, type RawResponse } from './http-parser.ts';
import { rawExchange, rawHttpAvailable } from './raw-http.ts';

export { ResponseParser };

/**
 * service=http, https and http_proxy, as ldirectord's check_http: GET (or HEAD) of the request on
 * the real server, `Host:` = virtualhost or the real's address **without a port**, success = a 2xx
 * status after up to 7 redirects and (receive empty or the body matches receive).
 *
 * Two clients. The hot path (plain http to the real itself, the common case with thousands of reals)
 * is a bare `net` socket with a one-shot HTTP/1.1 request and a minimal response parser: it costs a
 * fraction of got's CPU per check (see CHECKS.md). Everything else goes through got: https (TLS
 * with SNI, no certificate verification, as ldirectord's LWP with verify_hostname=0), any redirect
 * (the lean client hands a 3xx over to got, which follows it), and http_proxy.
 */

const USER_AGENT = 'tandem-ldirectord';

// got is loaded on first use: it costs ~30 MB of RSS, and the hot path (plain http) never needs it.
let gotModule: Promise<typeof import('got').default> | undefined;
function loadGot(): Promise<typeof import('got').default> {
  gotModule ??= import('got').then((m) => m.default);
  return gotModule;
}
const MAX_REDIRECTS = 7;

export interface HttpTarget {
  url: URL;
  host: string;
}

/** The URL ldirectord would fetch: a per-real `http(s)://...` request verbatim, else scheme://RIP:port/request. */
export function httpTarget(spec: CheckSpec): HttpTarget {
  const req = spec.request ?? '/';
  const absolute = /^\/?(https?:\/\/.*)$/i.exec(req);
  const scheme = spec.service === 'https' ? 'https' : 'http';
  const url = absolute ? new URL(absolute[1]!) : new URL(`${scheme}://${bracket(spec.host)}:${spec.port}${req.startsWith('/') ? req : `/${req}`}`);
  // LWP sends the virtualhost (or the URL's host) without the port; so do we.
  const host = spec.virtualHost ? spec.virtualHost.replace(/:\d+$/, '') : url.hostname;
  return { url, host };
}

/** What the lean client needs per spec, computed once (specs are long-lived in the scheduler). */
interface LeanPlan {
  host: string;
  port: number;
  head: string;
  /** The request as bytes, for the raw engine; set when the host is an IP address (no lookup there). */
  headBytes: Buffer | undefined;
  v6: boolean;
  isHead: boolean;
  keepAlive: boolean;
  /** keep-alive: the connection kept from the previous check, if the server left it open. */
  idle: net.Socket | undefined;
}

const plans = new WeakMap<CheckSpec, LeanPlan | null>();

/**
 * The path and query a relative request puts on the request line, as URL parsing normalizes them:
 * requests are few (one per virtual, usually), reals many, so each is parsed once.
 */
const requestPaths = new Map<string, string>();
function requestPath(req: string): string {
  let p = requestPaths.get(req);
  if (p === undefined) {
    const u = new URL(`http://h${req.startsWith('/') ? req : `/${req}`}`);
    p = `${u.pathname}${u.search}`;
    if (requestPaths.size < 10_000) requestPaths.set(req, p);
  }
  return p;
}

function leanPlan(spec: CheckSpec): LeanPlan | null {
  let plan = plans.get(spec);
  if (plan !== undefined) return plan;
  plan = null;
  if (spec.service === 'http') {
    const req = spec.request ?? '/';
    // The common case, a relative request to an IPv4 real (the config gives addresses canonical),
    // is planned without parsing a URL per real: at a start that is 10,000 parses.
    if (net.isIPv4(spec.host) && !/^\/?https?:\/\//i.test(req)) {
      const hostHeader = spec.virtualHost ? spec.virtualHost.replace(/:\d+$/, '') : spec.host;
      plan = makePlan(spec, spec.host, spec.port, requestPath(req), hostHeader, 4);
    } else {
      const target = httpTarget(spec);
      if (target.url.protocol === 'http:') {
        const u = target.url;
        const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
        plan = makePlan(spec, host, u.port ? Number(u.port) : 80, `${u.pathname}${u.search}`, target.host, net.isIP(host));
      }
    }
  }
  plans.set(spec, plan);
  return plan;
}

function makePlan(spec: CheckSpec, host: string, port: number, path: string, hostHeader: string, family: number): LeanPlan {
  const head = `${spec.httpMethod} ${path} HTTP/1.1\r\nHost: ${hostHeader}\r\nUser-Agent: ${USER_AGENT}\r\nConnection: ${spec.httpKeepAlive ? 'keep-alive' : 'close'}\r\n\r\n`;
  return {
    host,
    port,
    head,
    headBytes: family !== 0 && !spec.httpKeepAlive && rawHttpAvailable().ok ? Buffer.from(head, 'latin1') : undefined,
    v6: family === 6,
    isHead: spec.httpMethod === 'HEAD',
    keepAlive: spec.httpKeepAlive === true,
    idle: undefined,
  };
}

export async function checkHttp(spec: CheckSpec, signal: AbortSignal): Promise<Verdict> {
  const started = performance.now();
  const plan = leanPlan(spec);
  if (!plan) return checkViaGot(spec, signal, started);
  try {
    const res = plan.headBytes
      ? await rawExchange(plan.host, plan.port, plan.v6, plan.headBytes, plan.isHead, signal, spec.negotiateTimeoutMs)
      : plan.keepAlive
        ? await keptAliveExchange(plan, signal, spec.negotiateTimeoutMs)
        : await exchange(plan.host, plan.port, plan.head, plan.isHead, signal, spec.negotiateTimeoutMs);
    if (res.status >= 300 && res.status < 400 && res.location) return checkViaGot(spec, signal, started);
    return judge(spec, res.status, res.statusText, res.body, started);
  } catch (err) {
    return down(describeError(err), started);
  }
}

/** The same check through got only (https, redirects; exported so the benchmark can compare). */
export function checkHttpWithGot(spec: CheckSpec, signal: AbortSignal): Promise<Verdict> {
  return checkViaGot(spec, signal, performance.now());
}

/**
 * The reasons of up verdicts, one string per status line: the policy keeps each real's last reason
 * for thousands of reals, and one shared string is cheaper than a fresh copy per check.
 */
const upReasons = new Map<string, { plain: string; matched: string }>();

function judge(spec: CheckSpec, status: number, statusText: string, body: string, started: number): Verdict {
  const line = `HTTP ${status}${statusText ? ` ${statusText}` : ''}`;
  if (status < 200 || status > 299) return down(line, started);
  const m = matchReceive(spec, body);
  if (m !== true) return down(`${line}, ${m}`, started);
  let r = upReasons.get(line);
  if (!r) {
    if (upReasons.size > 1000) upReasons.clear();
    r = { plain: line, matched: `${line}, receive matched` };
    upReasons.set(line, r);
  }
  return up(spec.receive ? r.matched : r.plain, started);
}

async function checkViaGot(spec: CheckSpec, signal: AbortSignal, started: number): Promise<Verdict> {
  try {
    const target = httpTarget(spec);
    const url = target.url;
    const headers: Record<string, string> = { host: target.host, 'user-agent': USER_AGENT, connection: 'close' };
    if (spec.service === 'http_proxy') {
      // An HTTP proxy is asked with the absolute URL on the request line; the real server is the proxy.
      const wanted = (spec.request ?? '/').replace(/^\//, '');
      if (!/^https?:\/\//i.test(wanted)) return down(`http_proxy needs an absolute URL as request, got "${spec.request ?? ''}"`, started);
      const res = await proxyRequest(spec.host, spec.port, new URL(wanted), spec.httpMethod, signal, spec.negotiateTimeoutMs);
      return judge(spec, res.status, res.statusText, res.body, started);
    }
    const got = await loadGot();
    const res = await got(url, {
      method: spec.httpMethod,
      headers,
      https: { rejectUnauthorized: false, ...(spec.virtualHost && net.isIP(target.host) === 0 ? { serverName: target.host } : {}) },
      followRedirect: true,
      maxRedirects: MAX_REDIRECTS,
      throwHttpErrors: false,
      retry: { limit: 0 },
      timeout: { request: spec.negotiateTimeoutMs },
      signal,
      decompress: true,
    });
    return judge(spec, res.statusCode, res.statusMessage ?? '', typeof res.body === 'string' ? res.body : String(res.body), started);
  } catch (err) {
    const e = err as { code?: string; name?: string; timings?: unknown };
    if (e?.code === 'ETIMEDOUT' || e?.name === 'TimeoutError') return down(`timeout after ${spec.negotiateTimeoutMs} ms`, started);
    if (e?.code === 'ERR_TOO_MANY_REDIRECTS') return down(`more than ${MAX_REDIRECTS} redirects`, started);
    return down(describeError((err as { cause?: unknown }).cause ?? err), started);
  }
}


function proxyRequest(proxyHost: string, proxyPort: number, url: URL, method: string, signal: AbortSignal, timeoutMs: number): Promise<RawResponse> {
  const head = `${method} ${url.href} HTTP/1.1\r\nHost: ${url.host}\r\nUser-Agent: ${USER_AGENT}\r\nConnection: close\r\n\r\n`;
  return exchange(proxyHost, proxyPort, head, method === 'HEAD', signal, timeoutMs);
}

/**
 * One request on a fresh connection (`Connection: close`, as LWP sends it). The deadline is one
 * timer and the abort one listener, both dropped when the exchange settles; the socket is always
 * destroyed.
 */
function exchange(host: string, port: number, head: string, isHead: boolean, signal: AbortSignal, timeoutMs: number): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(new CheckAborted());
      return;
    }
    const socket = net.connect({ host, port, noDelay: true });
    const parser = new ResponseParser(isHead);
    let settled = false;
    const finish = (err: unknown, res?: RawResponse): void => {
      if (settled) return;
      settled = true;
      timer.clear();
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
      if (res) resolve(res);
      else reject(err);
    };
    const timer = lagTolerantTimeout(() => finish(new CheckTimeout(timeoutMs)), timeoutMs);
    const onAbort = (): void => finish(new CheckAborted());
    signal.addEventListener('abort', onAbort, { once: true });
    socket.on('connect', () => socket.write(head, 'latin1'));
    socket.on('data', (chunk: Buffer) => {
      try {
        if (parser.push(chunk)) finish(undefined, parser.result());
      } catch (err) {
        finish(err);
      }
    });
    socket.on('end', () => {
      if (settled) return;
      try {
        finish(undefined, parser.finishAtEof());
      } catch (err) {
        finish(err);
      }
    });
    socket.on('error', (err) => finish(err));
    socket.on('close', () => {
      if (!settled) finish(new CheckFailed('connection closed before a response'));
    });
  });
}

/**
 * Opt-in (`httpKeepAlive`): the request goes over the connection the previous check of this real
 * left open. A server that was killed closes that connection, so the next check connects afresh
 * and sees the refusal; a hung one does not answer and times out, as with a fresh connection. When
 * a reused connection turns out closed before any response byte (the server's idle timeout raced
 * us), the request is retried once on a fresh connection within the same deadline.
 */
async function keptAliveExchange(plan: LeanPlan, signal: AbortSignal, timeoutMs: number): Promise<RawResponse> {
  const deadline = performance.now() + timeoutMs;
  const reused = plan.idle;
  plan.idle = undefined;
  if (reused && !reused.destroyed) {
    try {
      return await exchangeOn(plan, reused, signal, timeoutMs);
    } catch (err) {
      if (!(err instanceof StaleConnection)) throw err;
    }
  }
  const left = Math.max(1, deadline - performance.now());
  return exchangeOn(plan, net.connect({ host: plan.host, port: plan.port, noDelay: true }), signal, left);
}

class StaleConnection extends Error {}

function exchangeOn(plan: LeanPlan, socket: net.Socket, signal: AbortSignal, timeoutMs: number): Promise<RawResponse> {
  const reused = !socket.connecting;
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      socket.destroy();
      reject(new CheckAborted());
      return;
    }
    const parser = new ResponseParser(plan.isHead);
    let settled = false;
    const finish = (err: unknown, res?: RawResponse): void => {
      if (settled) return;
      settled = true;
      timer.clear();
      signal.removeEventListener('abort', onAbort);
      socket.removeListener('data', onData);
      socket.removeListener('end', onEnd);
      socket.removeListener('error', onError);
      socket.removeListener('close', onClose);
      socket.removeListener('connect', onConnect);
      if (res && parser.reusable && !socket.destroyed) {
        socket.once('error', () => socket.destroy());
        socket.once('end', () => socket.destroy());
        socket.once('close', () => {
          if (plan.idle === socket) plan.idle = undefined;
        });
        plan.idle = socket;
      } else socket.destroy();
      if (res) resolve(res);
      else reject(reused && !parser.started && !(err instanceof CheckTimeout) && !(err instanceof CheckAborted) ? new StaleConnection() : err);
    };
    const timer = lagTolerantTimeout(() => finish(new CheckTimeout(timeoutMs)), timeoutMs);
    const onAbort = (): void => finish(new CheckAborted());
    const onConnect = (): void => {
      socket.write(plan.head, 'latin1');
    };
    const onData = (chunk: Buffer): void => {
      try {
        if (parser.push(chunk)) finish(undefined, parser.result());
      } catch (err) {
        finish(err);
      }
    };
    const onEnd = (): void => {
      try {
        finish(undefined, parser.finishAtEof());
      } catch (err) {
        finish(err);
      }
    };
    const onError = (err: Error): void => finish(err);
    const onClose = (): void => {
      if (!settled) finish(new CheckFailed('connection closed before a response'));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    socket.removeAllListeners('error');
    socket.removeAllListeners('end');
    socket.removeAllListeners('close');
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('error', onError);
    socket.on('close', onClose);
    if (reused) socket.write(plan.head, 'latin1');
    else socket.on('connect', onConnect);
  });
}
