import net from 'node:net';
import got from 'got';
import type { CheckSpec, Verdict } from './types.ts';
import { bracket, CheckFailed, describeError, down, matchReceive, up, withDeadline } from './util.ts';

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
const MAX_REDIRECTS = 7;
const MAX_BODY = 1 << 20;

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

export async function checkHttp(spec: CheckSpec, signal: AbortSignal): Promise<Verdict> {
  const started = performance.now();
  if (spec.service === 'http_proxy') return checkViaGot(spec, signal, started);
  const target = httpTarget(spec);
  if (target.url.protocol !== 'http:') return checkViaGot(spec, signal, started, target);
  try {
    const res = await withDeadline(spec.negotiateTimeoutMs, signal, (s) => leanRequest(target, spec.httpMethod, s));
    if (res.status >= 300 && res.status < 400 && res.location) return checkViaGot(spec, signal, started, target);
    return judge(spec, res.status, res.statusText, res.body, started);
  } catch (err) {
    return down(describeError(err), started);
  }
}

function judge(spec: CheckSpec, status: number, statusText: string, body: string, started: number): Verdict {
  const line = `HTTP ${status}${statusText ? ` ${statusText}` : ''}`;
  if (status < 200 || status > 299) return down(line, started);
  const m = matchReceive(spec, body);
  if (m !== true) return down(`${line}, ${m}`, started);
  return up(spec.receive ? `${line}, receive matched` : line, started);
}

async function checkViaGot(spec: CheckSpec, signal: AbortSignal, started: number, target = httpTarget(spec)): Promise<Verdict> {
  try {
    const url = target.url;
    const headers: Record<string, string> = { host: target.host, 'user-agent': USER_AGENT, connection: 'close' };
    if (spec.service === 'http_proxy') {
      // An HTTP proxy is asked with the absolute URL on the request line; the real server is the proxy.
      const wanted = (spec.request ?? '/').replace(/^\//, '');
      if (!/^https?:\/\//i.test(wanted)) return down(`http_proxy needs an absolute URL as request, got "${spec.request ?? ''}"`, started);
      return await withDeadline(spec.negotiateTimeoutMs, signal, async (s) => {
        const res = await proxyRequest(spec.host, spec.port, new URL(wanted), spec.httpMethod, s);
        return judge(spec, res.status, res.statusText, res.body, started);
      });
    }
    const res = await got(url, {
      method: spec.httpMethod,
      headers,
      https: { rejectUnauthorized: false, ...(spec.virtualHost && net.isIP(target.host) === 0 ? { servername: target.host } : {}) },
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

interface RawResponse {
  status: number;
  statusText: string;
  location: string | undefined;
  body: string;
}

function proxyRequest(proxyHost: string, proxyPort: number, url: URL, method: string, signal: AbortSignal): Promise<RawResponse> {
  const head = `${method} ${url.href} HTTP/1.1\r\nHost: ${url.host}\r\nUser-Agent: ${USER_AGENT}\r\nConnection: close\r\n\r\n`;
  return exchange(proxyHost, proxyPort, head, method === 'HEAD', signal);
}

/** One request on a fresh connection (`Connection: close`, as LWP sends it). */
export function leanRequest(target: HttpTarget, method: string, signal: AbortSignal): Promise<RawResponse> {
  const u = target.url;
  const port = u.port ? Number(u.port) : 80;
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  const head = `${method} ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${target.host}\r\nUser-Agent: ${USER_AGENT}\r\nConnection: close\r\n\r\n`;
  return exchange(host, port, head, method === 'HEAD', signal);
}

function exchange(host: string, port: number, head: string, isHead: boolean, signal: AbortSignal): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const socket = net.connect({ host, port, noDelay: true });
    const parser = new ResponseParser(isHead);
    let settled = false;
    const finish = (err: unknown, res?: RawResponse): void => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
      if (res) resolve(res);
      else reject(err);
    };
    const onAbort = (): void => finish(signal.reason);
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
      try {
        finish(undefined, parser.finishAtEof());
      } catch (err) {
        finish(err);
      }
    });
    socket.on('error', (err) => finish(err));
    socket.on('close', () => finish(new CheckFailed('connection closed before a response')));
  });
}

/**
 * Minimal HTTP/1.x response parser: status line, headers (only Content-Length, Transfer-Encoding
 * and Location matter), body by length, chunked encoding or end of stream.
 */
export class ResponseParser {
  readonly #isHead: boolean;
  #chunks: Buffer[] = [];
  #size = 0;
  #headerEnd = -1;
  #status = 0;
  #statusText = '';
  #location: string | undefined;
  #length = -1;
  #chunked = false;
  #bodyStart = 0;

  constructor(isHead: boolean) {
    this.#isHead = isHead;
  }

  /** Feeds bytes; true when the response is complete. */
  push(chunk: Buffer): boolean {
    this.#chunks.push(chunk);
    this.#size += chunk.length;
    if (this.#size > MAX_BODY) throw new CheckFailed(`response larger than ${MAX_BODY} bytes`);
    if (this.#headerEnd < 0) {
      const all = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks);
      this.#chunks = [all];
      const end = all.indexOf('\r\n\r\n');
      if (end < 0) return false;
      this.#headerEnd = end;
      this.#bodyStart = end + 4;
      this.#parseHead(all.toString('latin1', 0, end));
      if (this.#isHead || this.#status === 204 || this.#status === 304 || (this.#status >= 100 && this.#status < 200)) return true;
    }
    if (this.#length >= 0) return this.#size - this.#bodyStart >= this.#length;
    if (this.#chunked) return this.#chunkedComplete();
    return false;
  }

  #parseHead(head: string): void {
    const lines = head.split('\r\n');
    const m = /^HTTP\/\d\.\d (\d{3})(?: (.*))?$/.exec(lines[0] ?? '');
    if (!m) throw new CheckFailed(`not an HTTP response: ${JSON.stringify((lines[0] ?? '').slice(0, 60))}`);
    this.#status = Number(m[1]);
    this.#statusText = m[2] ?? '';
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      const c = line.indexOf(':');
      if (c <= 0) continue;
      const name = line.slice(0, c).trim().toLowerCase();
      const value = line.slice(c + 1).trim();
      if (name === 'content-length') this.#length = Number(value);
      else if (name === 'transfer-encoding') this.#chunked = /chunked/i.test(value);
      else if (name === 'location') this.#location = value;
    }
    if (this.#chunked) this.#length = -1;
  }

  #all(): Buffer {
    if (this.#chunks.length > 1) this.#chunks = [Buffer.concat(this.#chunks)];
    return this.#chunks[0] ?? Buffer.alloc(0);
  }

  #chunkedComplete(): boolean {
    return this.#decodeChunked(false) !== undefined;
  }

  #decodeChunked(atEof: boolean): Buffer | undefined {
    const all = this.#all();
    const parts: Buffer[] = [];
    let pos = this.#bodyStart;
    for (;;) {
      const eol = all.indexOf('\r\n', pos);
      if (eol < 0) break;
      const size = parseInt(all.toString('latin1', pos, eol).split(';')[0]!, 16);
      if (!Number.isFinite(size)) throw new CheckFailed('bad chunked encoding');
      if (size === 0) return Buffer.concat(parts);
      if (eol + 2 + size > all.length) break;
      parts.push(all.subarray(eol + 2, eol + 2 + size));
      pos = eol + 2 + size + 2;
    }
    return atEof ? Buffer.concat(parts) : undefined;
  }

  result(): RawResponse {
    const all = this.#all();
    let body = '';
    if (!this.#isHead) {
      if (this.#chunked) body = (this.#decodeChunked(true) ?? Buffer.alloc(0)).toString('utf8');
      else body = all.toString('utf8', this.#bodyStart, this.#length >= 0 ? this.#bodyStart + this.#length : all.length);
    }
    return { status: this.#status, statusText: this.#statusText, location: this.#location, body };
  }

  finishAtEof(): RawResponse {
    if (this.#headerEnd < 0) throw new CheckFailed(this.#size === 0 ? 'connection closed without a response' : 'connection closed inside the response headers');
    return this.result();
  }
}
