/**
 * The fast TCP engine: the proxy drives libuv TCP handles directly (Node's tcp_wrap/stream_wrap
 * bindings, the layer under net.Socket), so a forwarded chunk costs one read callback and one
 * write call, with no stream state machines, no events, no nextTick per chunk, and an accepted
 * connection creates no net.Socket at all. Writes that the kernel takes at once (the normal case)
 * reuse one request object; a write that has to wait keeps its buffer alive in its own request,
 * and when more than HIGH_WATER bytes wait the source side stops reading until they drain.
 *
 * The bindings are internal to Node (process.binding, deprecated but kept for compatibility);
 * `available()` reports whether they are usable here, and the data plane falls back to the
 * net.Socket engine (tcp.ts) when they are not.
 */
import { getSystemErrorName } from 'node:util';
import { type UvTcp, type UvTcpHandle, loadUvTcp } from '@tandem/core/uv-tcp';
import { afterUnbind } from '../schedulers/overload.ts';
import type { Env } from './env.ts';
import type { Real, ServiceState } from './service.ts';

interface Handle extends UvTcpHandle {
  [CONN]?: RawConn;
  [LISTENER]?: RawTcpListener;
}

const CONN = Symbol('tandem.rawconn');
const LISTENER = Symbol('tandem.rawlistener');
const HIGH_WATER = 256 * 1024;
/**
 * Every handle reads into this one buffer (libuv fills it, the read callback runs, the next read
 * reuses it), so a read allocates nothing on the native side. The callback copies the bytes into a
 * small pooled Buffer before writing: a write the kernel cannot take at once keeps pointing at its
 * data, and that data must not be the shared buffer.
 */
const READ_BUF = Buffer.allocUnsafe(64 * 1024);

type Bindings = Omit<UvTcp, 'TCP'> & { TCP: new (type: number) => Handle };
let B: Bindings | undefined;
let loadError: string | undefined;

function load(): Bindings | undefined {
  if (B || loadError) return B;
  const r = loadUvTcp(['readStart', 'writeBuffer', 'shutdown', 'reset', 'connect', 'getpeername', 'useUserBuffer']);
  if (r.uv) B = r.uv as unknown as Bindings;
  else loadError = r.error;
  return B;
}

export function rawAvailable(): { ok: boolean; reason?: string | undefined } {
  load();
  return { ok: !!B, reason: loadError };
}

const S = { connecting: 0, established: 1, closing: 2, done: 3 } as const;

class RawConn {
  readonly cli: Handle;
  up: Handle | null = null;
  real: Real | null = null;
  readonly svc: ServiceState;
  readonly env: Env;
  state: number = S.connecting;
  attempts = 0;
  tried: Real[] | null = null;
  saddr = '';
  sport = 0;
  usedTemplate = false;
  connectStarted = 0;
  cliEof = false;
  upEof = false;
  cliShut = false;
  upShut = false;
  cliPaused = false;
  upPaused = false;
  /** A shutdown request is pending on that handle (libuv then refuses a reset). */
  cliShutting = false;
  upShutting = false;
  closing = false;
  /** Links of env.conns and env.connecting (see LinkedSet). */
  openPrev: object | null = null;
  openNext: object | null = null;
  waitPrev: object | null = null;
  waitNext: object | null = null;

  constructor(cli: Handle, svc: ServiceState, env: Env) {
    this.cli = cli;
    this.svc = svc;
    this.env = env;
  }
}

/** The request object for writes; replaced only when a write had to wait (libuv keeps it). */
let spareReq: any;

/*
 * Writes wait for the end of the event-loop turn. Writing from inside each read callback wakes the
 * peer at once (nginx on the same core), and the kernel then preempts the balancer in the middle
 * of its batch of ready sockets: measured here, about 0.4 involuntary context switches per
 * request. Queueing the chunks and writing them all from one setImmediate after the poll phase
 * lets the balancer finish the batch first and the peers take theirs in one wake-up: +40-50%
 * keep-alive req/s on one core against writing at once, for the same bytes and no added latency
 * (the check phase follows the poll phase of the same turn). The chunks are copies already (the
 * read buffer is shared), so waiting costs nothing more. Order per socket is the queue's order;
 * a FIN or a close flushes the queue first (eofFrom), a reset drops what waits for its conn.
 */
const pendConn: (RawConn | undefined)[] = [];
const pendDst: (Handle | undefined)[] = [];
const pendSrc: (Handle | undefined)[] = [];
const pendBuf: (Buffer | undefined)[] = [];
let pendCount = 0;
let flushScheduled = false;
let flushing = false;

function forward(c: RawConn, dst: Handle, src: Handle, buf: Buffer): void {
  const i = pendCount++;
  pendConn[i] = c;
  pendDst[i] = dst;
  pendSrc[i] = src;
  pendBuf[i] = buf;
  if (!flushScheduled) {
    flushScheduled = true;
    setImmediate(flushWrites);
  }
}

/** Writes every queued chunk, in order; called once per turn and before any FIN is passed on. */
function flushWrites(): void {
  if (flushing) return;
  flushing = true;
  flushScheduled = false;
  for (let i = 0; i < pendCount; i++) {
    const c = pendConn[i]!;
    const buf = pendBuf[i]!;
    const dst = pendDst[i]!;
    const src = pendSrc[i]!;
    pendConn[i] = pendDst[i] = pendSrc[i] = pendBuf[i] = undefined;
    if (!c.closing) writeNow(c, dst, src, buf);
  }
  pendCount = 0;
  flushing = false;
}

/** Writes buf to dst; src is the side that produced it (paused when dst backs up). */
function writeNow(c: RawConn, dst: Handle, src: Handle, buf: Buffer): void {
  const b = B!;
  const req = spareReq ?? (spareReq = new b.WriteWrap());
  const err = dst.writeBuffer(req, buf);
  if (err !== 0) {
    abort(c, err);
    return;
  }
  if (b.state[b.kLastWriteWasAsync] === 0) return;
  // The kernel did not take it all: libuv holds this request and points into buf.
  spareReq = undefined;
  req.buffer = buf;
  req.conn = c;
  req.src = src;
  req.handle = dst;
  req.oncomplete = onWriteDone;
  if (dst.writeQueueSize > HIGH_WATER) {
    src.readStop();
    if (src === c.cli) c.cliPaused = true;
    else c.upPaused = true;
  }
}

function onWriteDone(this: any, status: number): void {
  const c: RawConn = this.conn;
  this.buffer = null;
  if (status < 0) {
    abort(c, status);
    return;
  }
  if (c.closing) return;
  const dst: Handle = this.handle;
  if (dst.writeQueueSize > HIGH_WATER / 2) return;
  if (this.src === c.cli && c.cliPaused) {
    c.cliPaused = false;
    if (!c.cliEof) c.cli.readStart();
  } else if (this.src === c.up && c.upPaused) {
    c.upPaused = false;
    if (!c.upEof) c.up!.readStart();
  }
}

function onCliRead(this: Handle): void {
  const b = B!;
  const c = this[CONN]!;
  const nread = b.state[b.kReadBytesOrError];
  if (nread > 0) {
    const r = c.real!;
    r.counters.inPkts++;
    r.counters.inBytes += nread;
    const sc = c.svc.counters;
    sc.inPkts++;
    sc.inBytes += nread;
    const data = Buffer.allocUnsafe(nread);
    READ_BUF.copy(data, 0, 0, nread);
    forward(c, c.up!, this, data);
    return;
  }
  if (nread === 0) return;
  if (nread === b.UV_EOF) {
    c.cliEof = true;
    leaveEstablished(c);
    eofFrom(c, c.up!, true);
    return;
  }
  abort(c, nread);
}

function onUpRead(this: Handle): void {
  const b = B!;
  const c = this[CONN]!;
  const nread = b.state[b.kReadBytesOrError];
  if (nread > 0) {
    const r = c.real!;
    r.counters.outPkts++;
    r.counters.outBytes += nread;
    const sc = c.svc.counters;
    sc.outPkts++;
    sc.outBytes += nread;
    const data = Buffer.allocUnsafe(nread);
    READ_BUF.copy(data, 0, 0, nread);
    forward(c, c.cli, this, data);
    return;
  }
  if (nread === 0) return;
  if (nread === b.UV_EOF) {
    c.upEof = true;
    leaveEstablished(c);
    eofFrom(c, c.cli, false);
    return;
  }
  abort(c, nread);
}

function leaveEstablished(c: RawConn): void {
  if (c.state !== S.established) return;
  c.state = S.closing;
  const r = c.real!;
  r.activeConns--;
  r.inactConns++;
}

/**
 * A FIN arrived and must be passed on to `to`. When the other direction has already ended and
 * nothing is queued towards `to`, both sockets are simply closed (close sends the FIN and the
 * kernel still delivers what it holds); otherwise only the write side of `to` is shut down.
 */
function eofFrom(c: RawConn, to: Handle, toUp: boolean): void {
  // What was read before the FIN must reach `to` before the FIN does.
  if (pendCount > 0) flushWrites();
  const otherDone = toUp ? c.upEof && c.cliShut : c.cliEof && c.upShut;
  if (otherDone && to.writeQueueSize === 0) {
    finish(c, false);
    return;
  }
  shutdown(c, to, toUp);
}

/** Passes a FIN on: shuts down the write side of h once its queued writes are out. */
function shutdown(c: RawConn, h: Handle, toUp: boolean): void {
  const req = new B!.ShutdownWrap();
  if (toUp) c.upShutting = true;
  else c.cliShutting = true;
  req.oncomplete = onShutdownDone;
  req.conn = c;
  req.toUp = toUp;
  req.handle = h;
  const err = h.shutdown(req);
  if (err !== 0) {
    finish(c, false);
    return;
  }
}

function onShutdownDone(this: any, status: number): void {
  const c: RawConn = this.conn;
  if (this.toUp) {
    c.upShut = true;
    c.upShutting = false;
  } else {
    c.cliShut = true;
    c.cliShutting = false;
  }
  if (status < 0) {
    finish(c, true);
    return;
  }
  if (c.cliEof && c.upEof && c.upShut && c.cliShut) finish(c, false);
}

function accountClosed(c: RawConn): void {
  if (c.state === S.done) return;
  const r = c.real;
  if (r) {
    if (c.state === S.established) {
      r.activeConns--;
      r.inactConns++;
    }
    if (c.state === S.connecting) {
      r.inactConns--;
      afterUnbind(r);
    } else {
      // Ended connections stay "inactive" for the kernel's TIME_WAIT time, then expire.
      r.ring.add(c.env.clock.now() / 1000);
    }
  }
  c.state = S.done;
  if (c.usedTemplate) c.svc.templateHold(c.saddr, -1);
  c.env.conns.delete(c);
  c.env.connecting.delete(c);
}

/** Closes both handles; `reset` sends RSTs (an error on one side is passed on as a reset). */
function finish(c: RawConn, reset: boolean): void {
  if (c.closing) return;
  c.closing = true;
  closeHandle(c.cli, reset && !c.cliShutting);
  if (c.up) closeHandle(c.up, reset && !c.upShutting);
  // Counted as ended now: nothing more is read or written on either handle.
  accountClosed(c);
}

function closeHandle(h: Handle, reset: boolean): void {
  // A failed reset still marks the handle as closing in Node, so it is only tried when libuv
  // accepts it (no shutdown pending); otherwise a plain close.
  if (reset) h.reset();
  else h.close();
}

function abort(c: RawConn, err: number): void {
  if (c.state === S.connecting) return;
  c.env.event('debug', 'I_IPVS_CONN_ERROR', `${c.svc.id}: connection via ${c.real?.id} ended with ${errName(err)}`, c.svc.id);
  finish(c, true);
}

function errName(err: number): string {
  try {
    return getSystemErrorName(err);
  } catch {
    return String(err);
  }
}

function onUpConnect(this: any, status: number, handle: Handle): void {
  const c = handle[CONN]!;
  if (c.up !== handle || c.closing) return;
  c.env.connecting.delete(c);
  if (status < 0) {
    connectFailed(c, errName(status));
    return;
  }
  const r = c.real!;
  c.state = S.established;
  r.inactConns--;
  r.activeConns++;
  handle.onread = onUpRead;
  c.cli.onread = onCliRead;
  handle.useUserBuffer(READ_BUF);
  c.cli.useUserBuffer(READ_BUF);
  let err = handle.readStart();
  if (err === 0) err = c.cli.readStart();
  if (err !== 0) abort(c, err);
}

function connectFailed(c: RawConn, why: string): void {
  const r = c.real!;
  r.inactConns--;
  afterUnbind(r);
  (c.tried ??= []).push(r);
  c.env.event('debug', 'I_IPVS_REAL_FAILED', `${c.svc.id}: connect to real ${r.id} failed (${why})`, c.svc.id);
  if (c.usedTemplate) {
    c.svc.templateHold(c.saddr, -1);
    c.usedTemplate = false;
  }
  const old = c.up;
  c.up = null;
  c.real = null;
  if (old) old.close();
  if (c.attempts >= c.env.connectAttempts) {
    giveUp(c);
    return;
  }
  connectReal(c);
}

function giveUp(c: RawConn): void {
  c.closing = true;
  c.state = S.done;
  c.env.conns.delete(c);
  c.env.connecting.delete(c);
  // The client sees a reset, as from a balancer with no usable real server.
  if (c.cli.reset() !== 0) c.cli.close();
}

function connectReal(c: RawConn): void {
  const b = B!;
  const r = c.svc.pick(c.saddr, c.sport, c.tried ?? undefined);
  if (!r) {
    if (c.attempts === 0) c.env.noServer(c.svc);
    giveUp(c);
    return;
  }
  c.attempts++;
  c.real = r;
  c.svc.bind(r);
  if (c.svc.config.persistence) {
    c.svc.templateHold(c.saddr, 1);
    c.usedTemplate = true;
  }
  const v6 = r.address.includes(':');
  const up = new b.TCP(b.SOCKET);
  up[CONN] = c;
  c.up = up;
  const src = v6 ? c.env.sourceAddress6 : c.env.sourceAddress;
  let err = src ? (v6 ? up.bind6(src, 0, 0) : up.bind(src, 0)) : 0;
  up.setNoDelay(true);
  if (err === 0) {
    const req = new b.TCPConnectWrap();
    req.oncomplete = onUpConnect;
    req.address = r.address;
    req.port = r.port;
    err = v6 ? up.connect6(req, r.address, r.port) : up.connect(req, r.address, r.port);
  }
  if (err !== 0) {
    connectFailed(c, errName(err));
    return;
  }
  c.connectStarted = c.env.clock.now();
  c.env.connecting.add(c);
}

/** Called by the housekeeping sweep: connection attempts older than the connect timeout fail. */
export function sweepConnecting(env: Env, now: number): void {
  if (env.connectTimeoutMs <= 0) return;
  for (const x of env.connecting.toArray()) {
    const c = x as unknown as RawConn;
    if (c.state === S.connecting && c.up && now - c.connectStarted >= env.connectTimeoutMs) {
      env.connecting.delete(x);
      connectFailed(c, 'ETIMEDOUT');
    }
  }
}

function onConnection(this: Handle, err: number, cli: Handle | undefined): void {
  const l = this[LISTENER]!;
  if (err !== 0 || !cli) {
    // Rate-limited: running out of descriptors fails every accept until connections end.
    const now = l.env.clock.now();
    if (now - l.lastAcceptWarning >= 10_000) {
      l.lastAcceptWarning = now;
      l.env.event('warn', 'W_IPVS_ACCEPT', `${l.svc.id}: accept failed: ${errName(err)}`, l.svc.id);
    }
    return;
  }
  const c = new RawConn(cli, l.svc, l.env);
  cli[CONN] = c;
  cli.setNoDelay(true);
  if (l.svc.needsClientAddress) {
    const out: { address?: string; port?: number } = {};
    cli.getpeername(out);
    c.saddr = out.address ?? '';
    c.sport = out.port ?? 0;
  }
  l.env.conns.add(c);
  connectReal(c);
}

export class RawTcpListener {
  svc: ServiceState;
  readonly env: Env;
  lastAcceptWarning = -Infinity;
  #handle: Handle | undefined;

  constructor(svc: ServiceState, env: Env) {
    if (!load()) throw new Error(`raw TCP engine unavailable: ${loadError}`);
    this.svc = svc;
    this.env = env;
  }

  listen(host: string, port: number, backlog: number): Promise<void> {
    const b = B!;
    const h = new b.TCP(b.SERVER);
    const v6 = host.includes(':');
    let err = v6 ? h.bind6(host, port, b.IPV6ONLY) : h.bind(host, port);
    if (err === 0) err = h.listen(backlog);
    if (err !== 0) {
      h.close();
      const name = errName(err);
      const e: NodeJS.ErrnoException = new Error(`listen ${name} ${host}:${port}`);
      e.code = name;
      return Promise.reject(e);
    }
    h[LISTENER] = this;
    h.onconnection = onConnection;
    this.#handle = h;
    return Promise.resolve();
  }

  close(): void {
    this.#handle?.close();
    this.#handle = undefined;
  }
}

export function destroyRawConn(x: object): void {
  if (!(x instanceof RawConn)) return;
  const c = x;
  if (c.closing) return;
  if (c.state === S.connecting) {
    giveUp(c);
    c.up?.close();
    return;
  }
  finish(c, true);
}
