/**
 * The plain-http hot path on raw libuv TCP handles (Node's tcp_wrap/stream_wrap bindings, the
 * layer under net.Socket, as the data plane's tcp-raw engine uses them): one check is one handle,
 * one connect request, one write and the reads, with no net.Socket, no stream state machine, no
 * events and no per-check timer. Every handle reads into one shared buffer; the bytes of a response
 * are copied out once. Deadlines live in one FIFO per timeout value (deadlines of equal timeouts
 * arrive in order), served by a single timer, and, as lagTolerantTimeout does, decided after the
 * I/O poll so that a busy process does not call an answered check down.
 *
 * At 10,000 reals this matters: a check through net.Socket allocates a socket, its streams, event
 * listeners and a timer, and the garbage of 2,000 of them a second is what fills the heap (see
 * CHECKS.md). The bindings are internal to Node (process.binding, deprecated but kept for
 * compatibility); `rawHttpAvailable()` says whether they are usable, and http.ts falls back to its
 * net.Socket client when they are not (or when TANDEM_LD_RAW_HTTP=0).
 */
import { getSystemErrorName } from 'node:util';
import { type UvTcp, type UvTcpHandle, loadUvTcp } from '@tandem/core/uv-tcp';
import { CheckAborted, CheckTimeout } from './util.ts';
import { ResponseParser, type RawResponse } from './http-parser.ts';

interface Handle extends UvTcpHandle {
  [EXCHANGE]?: Exchange | undefined;
}

interface Bindings extends Omit<UvTcp, 'TCP' | 'TCPConnectWrap' | 'WriteWrap'> {
  TCP: new (type: number) => Handle;
  TCPConnectWrap: new () => { oncomplete: unknown; [EXCHANGE]?: Exchange };
  WriteWrap: new () => { oncomplete: unknown; buffer?: Buffer | null; [EXCHANGE]?: Exchange | undefined };
}

const EXCHANGE = Symbol('tandem.ld.exchange');
const READ_BUF = Buffer.allocUnsafe(64 * 1024);

let B: Bindings | undefined;
let loadError: string | undefined;

function load(): Bindings | undefined {
  if (B || loadError) return B;
  if (process.env.TANDEM_LD_RAW_HTTP === '0') {
    loadError = 'turned off by TANDEM_LD_RAW_HTTP=0';
    return B;
  }
  const r = loadUvTcp(['readStart', 'writeBuffer', 'connect', 'connect6', 'useUserBuffer', 'close']);
  if (r.uv) B = r.uv as unknown as Bindings;
  else loadError = r.error;
  return B;
}

let disabled = false;

/** Whether the raw engine can run here (and is not turned off), and why not. */
export function rawHttpAvailable(): { ok: boolean; reason?: string | undefined } {
  load();
  if (disabled && B) return { ok: false, reason: 'turned off by setRawHttpEnabled(false)' };
  return { ok: !!B, reason: loadError };
}

/**
 * Turns the raw engine off (or back on) for checks planned from now on (a spec's plan is made at
 * its first check): tests run the same cases through both engines with it.
 */
export function setRawHttpEnabled(on: boolean): void {
  disabled = !on;
}

/** A write request kept for the next write when the kernel took the bytes at once (the normal case). */
let spareWrite: InstanceType<Bindings['WriteWrap']> | undefined;

/** One request/response on a fresh connection. Doubles as the abort listener (handleEvent). */
class Exchange {
  handle: Handle | undefined;
  parser: ResponseParser;
  signal: AbortSignal;
  head: Buffer;
  deadline: number;
  timeoutMs: number;
  resolve: (r: RawResponse) => void;
  reject: (e: unknown) => void;
  done = false;

  constructor(head: Buffer, isHead: boolean, signal: AbortSignal, timeoutMs: number, resolve: (r: RawResponse) => void, reject: (e: unknown) => void) {
    this.head = head;
    this.parser = new ResponseParser(isHead);
    this.signal = signal;
    this.timeoutMs = timeoutMs;
    this.deadline = performance.now() + timeoutMs;
    this.resolve = resolve;
    this.reject = reject;
  }

  handleEvent(): void {
    this.fail(new CheckAborted());
  }

  #end(): void {
    this.done = true;
    this.signal.removeEventListener('abort', this);
    const h = this.handle;
    this.handle = undefined;
    if (h) {
      h[EXCHANGE] = undefined;
      h.close();
    }
  }

  fail(err: unknown): void {
    if (this.done) return;
    this.#end();
    this.reject(err);
  }

  succeed(r: RawResponse): void {
    if (this.done) return;
    this.#end();
    this.resolve(r);
  }
}

function errnoError(status: number, what: string): Error {
  let code: string;
  try {
    code = getSystemErrorName(status);
  } catch {
    code = `E${-status}`;
  }
  return Object.assign(new Error(`${what} ${code}`), { code });
}

function onConnect(this: { [EXCHANGE]?: Exchange }, status: number): void {
  const x = this[EXCHANGE];
  this[EXCHANGE] = undefined;
  if (!x || x.done) return;
  if (status < 0) {
    x.fail(errnoError(status, 'connect'));
    return;
  }
  const b = B!;
  const h = x.handle!;
  h.onread = onRead;
  h.useUserBuffer(READ_BUF);
  let err = h.readStart();
  if (err === 0) {
    const req = spareWrite ?? new b.WriteWrap();
    spareWrite = undefined;
    err = h.writeBuffer(req, x.head);
    if (err === 0 && b.state[b.kLastWriteWasAsync] !== 0) {
      // libuv holds the request (and points into head, which the plan keeps) until it completes.
      req.buffer = x.head;
      req[EXCHANGE] = x;
      req.oncomplete = onWriteDone;
    } else spareWrite = req;
  }
  if (err !== 0) x.fail(errnoError(err, 'write'));
}

function onWriteDone(this: InstanceType<Bindings['WriteWrap']>, status: number): void {
  const x = this[EXCHANGE];
  this[EXCHANGE] = undefined;
  this.buffer = null;
  if (x && status < 0) x.fail(errnoError(status, 'write'));
}

function onRead(this: Handle): void {
  const x = this[EXCHANGE];
  if (!x || x.done) return;
  const b = B!;
  const n = b.state[b.kReadBytesOrError]!;
  try {
    if (n > 0) {
      // The shared buffer is refilled by the next read: the parser keeps a copy.
      const copy = Buffer.allocUnsafe(n);
      READ_BUF.copy(copy, 0, 0, n);
      if (x.parser.push(copy)) x.succeed(x.parser.result());
    } else if (n === b.UV_EOF) {
      x.succeed(x.parser.finishAtEof());
    } else if (n < 0) {
      x.fail(errnoError(n, 'read'));
    }
  } catch (err) {
    x.fail(err);
  }
}

// ---- deadlines: one FIFO per timeout value, one timer for the earliest ----
const queues = new Map<number, { items: Exchange[]; head: number }>();
let timer: NodeJS.Timeout | undefined;
let timerAt = Infinity;
let sweepPending = false;

function track(x: Exchange): void {
  let q = queues.get(x.timeoutMs);
  if (!q) queues.set(x.timeoutMs, (q = { items: [], head: 0 }));
  q.items.push(x);
  if (x.deadline < timerAt) arm(x.deadline);
}

function arm(at: number): void {
  if (timer) clearTimeout(timer);
  timerAt = at;
  timer = setTimeout(onTimer, Math.max(0, at - performance.now()));
}

function onTimer(): void {
  timer = undefined;
  timerAt = Infinity;
  // Decided after this turn's I/O poll: an answer already waiting in a socket is read first.
  if (!sweepPending) {
    sweepPending = true;
    setImmediate(sweep);
  }
}

function sweep(): void {
  sweepPending = false;
  const now = performance.now();
  let next = Infinity;
  for (const [ms, q] of queues) {
    const items = q.items;
    let i = q.head;
    for (; i < items.length; i++) {
      const x = items[i]!;
      if (x.done) continue;
      if (x.deadline > now) break;
      x.fail(new CheckTimeout(ms));
    }
    if (i >= items.length) {
      queues.delete(ms);
      continue;
    }
    q.head = i;
    if (q.head > 1024 && q.head * 2 > items.length) {
      q.items = items.slice(q.head);
      q.head = 0;
    }
    next = Math.min(next, items[i]!.deadline);
  }
  if (next !== Infinity) arm(next);
}

/**
 * One HTTP exchange on a fresh raw TCP connection: writes `head` (kept by the caller for as long as
 * it may be written) and parses the answer. Rejects with an errno error (code ECONNREFUSED, ...),
 * CheckTimeout, CheckAborted or CheckFailed. Only call when rawHttpAvailable().ok.
 */
export function rawExchange(host: string, port: number, v6: boolean, head: Buffer, isHead: boolean, signal: AbortSignal, timeoutMs: number): Promise<RawResponse> {
  const b = B!;
  return new Promise<RawResponse>((resolve, reject) => {
    if (signal.aborted) {
      reject(new CheckAborted());
      return;
    }
    const x = new Exchange(head, isHead, signal, timeoutMs, resolve, reject);
    const h = new b.TCP(b.SOCKET);
    h[EXCHANGE] = x;
    x.handle = h;
    const req = new b.TCPConnectWrap();
    req.oncomplete = onConnect;
    req[EXCHANGE] = x;
    const err = v6 ? h.connect6(req, host, port) : h.connect(req, host, port);
    if (err !== 0) {
      x.fail(errnoError(err, 'connect'));
      return;
    }
    signal.addEventListener('abort', x);
    track(x);
  });
}

/** Closes nothing: exchanges end themselves; exported for tests that want to know none is pending. */
export function pendingRawExchanges(): number {
  let n = 0;
  for (const q of queues.values()) for (let i = q.head; i < q.items.length; i++) if (!q.items[i]!.done) n++;
  return n;
}


