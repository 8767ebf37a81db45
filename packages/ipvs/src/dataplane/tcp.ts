/**
 * TCP forwarding as a full proxy. Hot-path choices (measured by bench/dataplane.ts):
 * - no stream pipes: 'data' handlers write straight to the peer socket and pause the source only
 *   when the peer's write buffer is full (resume on 'drain');
 * - handlers are shared module-level functions that find their connection through one property
 *   on the socket, so a connection costs one small object and no closures;
 * - accepted sockets stay paused (pauseOnConnect) until the real server answers, so a refused
 *   real can be replaced by another one without losing the client's first bytes;
 * - Nagle is off on both sides (noDelay), as a forwarding device must not add delay.
 */
import net, { type Server, type Socket } from 'node:net';
import { afterUnbind } from '../schedulers/overload.ts';
import type { Real, ServiceState } from './service.ts';
import type { Env } from './env.ts';

const CONN = Symbol('tandem.conn');

type Tagged = Socket & { [CONN]: TcpConn };

const S = { connecting: 0, established: 1, closing: 2, done: 3 } as const;

export class TcpConn {
  readonly client: Socket;
  up: Socket | null = null;
  real: Real | null = null;
  readonly svc: ServiceState;
  readonly env: Env;
  state: number = S.connecting;
  attempts = 0;
  tried: Real[] | null = null;
  closedSides = 0;
  usedTemplate = false;
  /** Links of env.conns (see LinkedSet). */
  openPrev: object | null = null;
  openNext: object | null = null;
  readonly saddr: string;

  constructor(client: Socket, svc: ServiceState, env: Env) {
    this.client = client;
    this.svc = svc;
    this.env = env;
    this.saddr = client.remoteAddress ?? '';
  }
}

function onClientData(this: Tagged, chunk: Buffer): void {
  const c = this[CONN];
  const r = c.real!;
  const n = chunk.length;
  r.counters.inPkts++;
  r.counters.inBytes += n;
  c.svc.counters.inPkts++;
  c.svc.counters.inBytes += n;
  if (!c.up!.write(chunk)) this.pause();
}

function onUpData(this: Tagged, chunk: Buffer): void {
  const c = this[CONN];
  const r = c.real!;
  const n = chunk.length;
  r.counters.outPkts++;
  r.counters.outBytes += n;
  c.svc.counters.outPkts++;
  c.svc.counters.outBytes += n;
  if (!c.client.write(chunk)) this.pause();
}

function onClientDrain(this: Tagged): void {
  this[CONN].up?.resume();
}

function onUpDrain(this: Tagged): void {
  this[CONN].client.resume();
}

/** First FIN of either side: the connection leaves ESTABLISHED and counts as inactive. */
function leaveEstablished(c: TcpConn): void {
  if (c.state !== S.established) return;
  c.state = S.closing;
  const r = c.real!;
  r.activeConns--;
  r.inactConns++;
}

function onClientEnd(this: Tagged): void {
  const c = this[CONN];
  leaveEstablished(c);
  c.up?.end();
}

function onUpEnd(this: Tagged): void {
  const c = this[CONN];
  leaveEstablished(c);
  c.client.end();
}

function onClientError(this: Tagged): void {
  // An RST from the client is passed on as an RST to the real server.
  const up = this[CONN].up;
  if (up && !up.destroyed) up.resetAndDestroy();
}

function onClientClose(this: Tagged): void {
  const c = this[CONN];
  const up = c.up;
  if (c.state === S.connecting) {
    // Client gave up before the real server answered.
    const r = c.real;
    c.state = S.done;
    c.env.conns.delete(c);
    if (r) {
      r.inactConns--;
      afterUnbind(r);
    }
    if (c.usedTemplate) c.svc.templateHold(c.saddr, -1);
    if (up && !up.destroyed) up.destroy();
    return;
  }
  if (c.state === S.done) return;
  if (up && !up.destroyed && !up.writableEnded) up.end();
  sideClosed(c);
}

function onUpError(this: Tagged, err: NodeJS.ErrnoException): void {
  const c = this[CONN];
  if (c.state === S.connecting) {
    connectFailed(c, err);
    return;
  }
  if (!c.client.destroyed) c.client.resetAndDestroy();
}

function onUpClose(this: Tagged): void {
  const c = this[CONN];
  if (c.up !== this || c.state === S.connecting) return;
  if (!c.client.destroyed && !c.client.writableEnded) c.client.end();
  sideClosed(c);
}

function onUpTimeout(this: Tagged): void {
  const c = this[CONN];
  if (c.state === S.connecting) {
    const e: NodeJS.ErrnoException = new Error(`connect to ${c.real?.id} timed out`);
    e.code = 'ETIMEDOUT';
    this.destroy(e);
  }
}

function onUpConnect(this: Tagged): void {
  const c = this[CONN];
  if (c.up !== this) return;
  this.setTimeout(0);
  const r = c.real!;
  c.state = S.established;
  r.inactConns--;
  r.activeConns++;
  const client = c.client;
  if (client.destroyed) {
    this.destroy();
    return;
  }
  client.on('data', onClientData);
  this.on('data', onUpData);
  client.resume();
}

function sideClosed(c: TcpConn): void {
  if (++c.closedSides < 2 && !(c.client.destroyed && (!c.up || c.up.destroyed))) return;
  if (c.state === S.done) return;
  if (c.state === S.established) {
    c.real!.activeConns--;
    c.real!.inactConns++;
  }
  c.state = S.done;
  const r = c.real!;
  // The closed connection stays "inactive" for the kernel's TIME_WAIT time, then expires.
  r.ring.add(c.env.clock.now() / 1000);
  if (c.usedTemplate) c.svc.templateHold(c.saddr, -1);
  c.env.conns.delete(c);
}

function connectFailed(c: TcpConn, err: NodeJS.ErrnoException): void {
  const r = c.real!;
  r.inactConns--;
  afterUnbind(r);
  (c.tried ??= []).push(r);
  c.env.event('debug', 'I_IPVS_REAL_FAILED', `${c.svc.id}: connect to real ${r.id} failed (${err.code ?? err.message})`, c.svc.id);
  if (c.usedTemplate) {
    c.svc.templateHold(c.saddr, -1);
    c.usedTemplate = false;
  }
  if (c.client.destroyed || c.attempts >= c.env.connectAttempts) {
    giveUp(c);
    return;
  }
  connectReal(c);
}

function giveUp(c: TcpConn): void {
  c.state = S.done;
  c.env.conns.delete(c);
  if (!c.client.destroyed) c.client.resetAndDestroy();
}

/** Schedules a real (avoiding ones that already failed for this client) and connects to it. */
function connectReal(c: TcpConn): void {
  const client = c.client;
  const r = c.svc.pick(c.saddr, client.remotePort ?? 0, c.tried ?? undefined);
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
  const localAddress = v6 ? c.env.sourceAddress6 : c.env.sourceAddress;
  const up = net.connect({
    host: r.address,
    port: r.port,
    family: v6 ? 6 : 4,
    localAddress,
    noDelay: true,
    allowHalfOpen: true,
  }) as Tagged;
  up[CONN] = c;
  c.up = up;
  if (c.env.connectTimeoutMs > 0) {
    up.setTimeout(c.env.connectTimeoutMs);
    up.on('timeout', onUpTimeout);
  }
  up.on('connect', onUpConnect);
  up.on('error', onUpError);
  up.on('end', onUpEnd);
  up.on('close', onUpClose);
  up.on('drain', onUpDrain);
}

function onConnection(this: TcpListener['server'] & { [LISTENER]: TcpListener }, socket: Socket): void {
  const l = this[LISTENER];
  const client = socket as Tagged;
  const c = new TcpConn(client, l.svc, l.env);
  client[CONN] = c;
  l.env.conns.add(c);
  client.on('error', onClientError);
  client.on('end', onClientEnd);
  client.on('close', onClientClose);
  client.on('drain', onClientDrain);
  connectReal(c);
}

const LISTENER = Symbol('tandem.listener');

/** The listening side of one TCP virtual service. */
export class TcpListener {
  readonly server: Server;
  svc: ServiceState;
  readonly env: Env;

  constructor(svc: ServiceState, env: Env) {
    this.svc = svc;
    this.env = env;
    this.server = net.createServer({ pauseOnConnect: true, allowHalfOpen: true, noDelay: true });
    (this.server as Server & { [LISTENER]: TcpListener })[LISTENER] = this;
    this.server.on('connection', onConnection as (s: Socket) => void);
  }

  listen(host: string, port: number, backlog: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (e: Error) => {
        this.server.off('listening', onListening);
        reject(e);
      };
      const onListening = () => {
        this.server.off('error', onError);
        this.server.on('error', (e) => this.env.event('error', 'E_IPVS_LISTEN', `${this.svc.id}: listener error: ${e.message}`, this.svc.id));
        resolve();
      };
      this.server.once('error', onError);
      this.server.once('listening', onListening);
      this.server.listen({ host, port, backlog, exclusive: true, ipv6Only: host.includes(':') });
    });
  }

  close(): void {
    this.server.close();
  }
}

/** Ends every open connection at once (dataplane close). */
export function destroyConn(x: object): void {
  if (!(x instanceof TcpConn)) return;
  x.client.destroy();
  x.up?.destroy();
}
