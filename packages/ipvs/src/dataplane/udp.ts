/**
 * UDP forwarding: one socket on the virtual address; every client (address, port) is a flow with
 * its own socket towards the real server chosen when the flow began, so the real's answers find
 * their way back. A flow ends after the UDP timeout without traffic (ipvsadm --set: udp 300 s).
 * As in the kernel, UDP flows count as InActConn. With one-packet scheduling (-o) every datagram
 * is scheduled on its own and its flow lasts until the first answer or the timeout.
 */
import dgram from 'node:dgram';
import { afterUnbind } from '../schedulers/overload.ts';
import type { Env } from './env.ts';
import type { Real, ServiceState } from './service.ts';

const FLOW = Symbol('tandem.flow');

class UdpFlow {
  readonly key: string;
  readonly listener: UdpListener;
  readonly real: Real;
  readonly sock: dgram.Socket & { [FLOW]?: UdpFlow };
  readonly clientAddress: string;
  readonly clientPort: number;
  lastActive: number;
  closed = false;
  usedTemplate = false;

  constructor(key: string, listener: UdpListener, real: Real, clientAddress: string, clientPort: number, now: number) {
    this.key = key;
    this.listener = listener;
    this.real = real;
    this.clientAddress = clientAddress;
    this.clientPort = clientPort;
    this.lastActive = now;
    const v6 = real.address.includes(':');
    this.sock = dgram.createSocket({ type: v6 ? 'udp6' : 'udp4' });
    this.sock[FLOW] = this;
    this.sock.on('message', onRealMessage);
    this.sock.on('error', onRealError);
    const src = v6 ? listener.env.sourceAddress6 : listener.env.sourceAddress;
    this.sock.bind({ address: src, port: 0 });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.listener.flows.delete(this.key);
    this.real.inactConns--;
    afterUnbind(this.real);
    if (this.usedTemplate) this.listener.svc.templateHold(this.clientAddress, -1);
    try {
      this.sock.close();
    } catch {
      // already closed
    }
  }
}

function onRealMessage(this: dgram.Socket & { [FLOW]: UdpFlow }, msg: Buffer, rinfo: dgram.RemoteInfo): void {
  const f = this[FLOW];
  if (rinfo.port !== f.real.port || rinfo.address !== f.real.address) return;
  const n = msg.length;
  f.real.counters.outPkts++;
  f.real.counters.outBytes += n;
  const svc = f.listener.svc;
  svc.counters.outPkts++;
  svc.counters.outBytes += n;
  f.lastActive = f.listener.env.clock.now();
  f.listener.sock.send(msg, f.clientPort, f.clientAddress);
  if (svc.config.ops) f.close();
}

function onRealError(this: dgram.Socket & { [FLOW]: UdpFlow }): void {
  this[FLOW].close();
}

export class UdpListener {
  readonly sock: dgram.Socket;
  svc: ServiceState;
  readonly env: Env;
  readonly flows = new Map<string, UdpFlow>();
  #seq = 0;

  constructor(svc: ServiceState, env: Env) {
    this.svc = svc;
    this.env = env;
    const v6 = svc.config.address.includes(':');
    this.sock = dgram.createSocket(v6 ? { type: 'udp6', ipv6Only: true } : { type: 'udp4' });
    this.sock.on('message', (msg, rinfo) => this.#onMessage(msg, rinfo));
  }

  #onMessage(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const svc = this.svc;
    const now = this.env.clock.now();
    let key = `${rinfo.address}|${rinfo.port}`;
    let f = svc.config.ops ? undefined : this.flows.get(key);
    if (!f || f.closed) {
      const real = svc.pick(rinfo.address, rinfo.port);
      if (!real) {
        this.env.noServer(svc);
        return;
      }
      if (svc.config.ops) key = `${key}|${++this.#seq}`;
      svc.bind(real);
      f = new UdpFlow(key, this, real, rinfo.address, rinfo.port, now);
      this.flows.set(key, f);
      if (svc.config.persistence) {
        svc.templateHold(rinfo.address, 1);
        f.usedTemplate = true;
      }
    }
    f.lastActive = now;
    const n = msg.length;
    f.real.counters.inPkts++;
    f.real.counters.inBytes += n;
    svc.counters.inPkts++;
    svc.counters.inBytes += n;
    f.sock.send(msg, f.real.port, f.real.address);
  }

  /** Ends flows idle for longer than the UDP timeout. */
  tick(nowMs: number): void {
    for (const f of this.flows.values()) if (nowMs - f.lastActive >= this.env.udpTimeoutMs) f.close();
  }

  listen(host: string, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (e: Error) => reject(e);
      this.sock.once('error', onError);
      this.sock.bind({ address: host, port, exclusive: true }, () => {
        this.sock.off('error', onError);
        this.sock.on('error', (e) => this.env.event('error', 'E_IPVS_LISTEN', `${this.svc.id}: UDP socket error: ${e.message}`, this.svc.id));
        resolve();
      });
    });
  }

  close(): void {
    for (const f of [...this.flows.values()]) f.close();
    try {
      this.sock.close();
    } catch {
      // not bound yet
    }
  }
}
