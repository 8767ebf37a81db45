/**
 * The embedded balancer's data plane: a userspace full proxy (NAT semantics) for every TCP and UDP
 * virtual service of the table. `update` swaps the table in place: new connections follow the new
 * table at once; open connections keep their real server, including one that was set to weight 0
 * or removed. See packages/ipvs/DATAPLANE.md.
 */
import type { Logger } from '@tandem/core';
// The clock module alone: the package index would load winston and execa into the data plane.
import { type Clock, realClock } from '@tandem/core/clock';
import { type Counters, type Dataplane, type IpvsTable, type RealStats, type ServiceKey, type TableStats, type VirtualService, serviceId } from '../model.ts';
import { SchedulerNotFound } from '../schedulers/service.ts';
import { type Env, type EventLevel, LinkedSet } from './env.ts';
import { ServiceState } from './service.ts';
import { TcpListener, destroyConn } from './tcp.ts';
import { RawTcpListener, destroyRawConn, rawAvailable, sweepConnecting } from './tcp-raw.ts';
import { UdpListener } from './udp.ts';

export interface DataplaneEvent {
  level: EventLevel;
  /** Stable code: W_IPVS_* warnings, I_IPVS_* information, E_IPVS_* errors. */
  code: string;
  message: string;
  service?: string | undefined;
}

export interface DataplaneOptions {
  clock?: Clock;
  /** Every decision worth telling (bind retries, fwmark/gate/ipip warnings, no server). */
  onEvent?: (e: DataplaneEvent) => void;
  /** Convenience: events are also written here (debug events only at debug level). */
  logger?: Logger;
  /**
   * Source address for connections to IPv4 / IPv6 real servers. Give the balancer its own
   * address when anything else on this host also talks to the same real servers (see the TIME_WAIT
   * pitfall in DATAPLANE.md).
   */
  sourceAddress?: string;
  sourceAddress6?: string;
  /** Idle time after which a UDP flow ends (ipvsadm --set udp). Default 300 s. */
  udpTimeoutMs?: number;
  /** How long an ended TCP connection still counts in InActConn (kernel TIME_WAIT). Default 120 s. */
  tcpTimeWaitMs?: number;
  /** Connect timeout towards a real server; 0 = the kernel's SYN retries. Default 3 s. */
  connectTimeoutMs?: number;
  /** Real servers tried for one client connection before it is reset. Default 3. */
  connectAttempts?: number;
  /** Retry period for a virtual address that is not (yet) local. Default 1 s. */
  bindRetryMs?: number;
  /** Kernel sysctl expire_quiescent_template. Default false, as in the kernel. */
  expireQuiescentTemplate?: boolean;
  backlog?: number;
  /**
   * TCP engine: 'raw' drives libuv handles directly (fast, the default when Node offers them),
   * 'net' uses net.Socket (public API only). 'auto' picks raw when available.
   */
  engine?: 'auto' | 'raw' | 'net';
}

interface Entry {
  state: ServiceState;
  tcp?: TcpListener | RawTcpListener | undefined;
  udp?: UdpListener | undefined;
  /** Pending bind retry. */
  retry?: ReturnType<typeof setTimeout> | undefined;
  bound: boolean;
}

const NO_SERVER_WARN_MS = 10_000;

class UserspaceDataplane implements Dataplane {
  readonly #env: Env;
  readonly #opts: Required<Pick<DataplaneOptions, 'bindRetryMs' | 'backlog' | 'tcpTimeWaitMs' | 'expireQuiescentTemplate'>>;
  readonly #entries = new Map<string, Entry>();
  /** Open TCP connections (of services in the table or already deleted). */
  readonly #conns = new LinkedSet<object>('openPrev', 'openNext');
  readonly #connecting = new LinkedSet<object>('waitPrev', 'waitNext');
  readonly #raw: boolean;
  readonly #onEvent: ((e: DataplaneEvent) => void) | undefined;
  readonly #logger: Logger | undefined;
  readonly #lastNoServer = new Map<string, number>();
  #tick: ReturnType<typeof setInterval> | undefined;
  #lastEstimate: number;
  #closed = false;

  constructor(opts: DataplaneOptions) {
    const clock = opts.clock ?? realClock;
    this.#onEvent = opts.onEvent;
    this.#logger = opts.logger;
    this.#opts = {
      bindRetryMs: opts.bindRetryMs ?? 1000,
      backlog: opts.backlog ?? 4096,
      tcpTimeWaitMs: opts.tcpTimeWaitMs ?? 120_000,
      expireQuiescentTemplate: opts.expireQuiescentTemplate ?? false,
    };
    const engine = opts.engine ?? 'auto';
    const raw = rawAvailable();
    if (engine === 'raw' && !raw.ok) throw new Error(`raw TCP engine unavailable: ${raw.reason}`);
    this.#raw = engine !== 'net' && raw.ok;
    const self = this;
    this.#env = {
      clock,
      sourceAddress: opts.sourceAddress,
      sourceAddress6: opts.sourceAddress6,
      connectTimeoutMs: opts.connectTimeoutMs ?? 3000,
      connectAttempts: Math.max(1, opts.connectAttempts ?? 3),
      udpTimeoutMs: opts.udpTimeoutMs ?? 300_000,
      conns: this.#conns,
      connecting: this.#connecting,
      event: (level, code, message, service) => self.#event(level, code, message, service),
      noServer: (svc) => {
        const now = clock.now();
        const last = self.#lastNoServer.get(svc.id);
        if (last !== undefined && now - last < NO_SERVER_WARN_MS) return;
        self.#lastNoServer.set(svc.id, now);
        self.#event('warn', 'W_IPVS_NO_SERVER', `${svc.id}: no real server available (all weight 0, overloaded or failing); connection reset`, svc.id);
      },
    };
    this.#lastEstimate = clock.now();
    // One housekeeping timer for everything: expiries every second, rates every two seconds.
    this.#tick = setInterval(() => this.#housekeeping(), 1000);
    this.#tick.unref();
  }

  #event(level: EventLevel, code: string, message: string, service?: string): void {
    this.#onEvent?.({ level, code, message, service });
    this.#logger?.[level](`${message} [${code}]`);
  }

  #housekeeping(): void {
    const now = this.#env.clock.now();
    const estimate = now - this.#lastEstimate >= 1900;
    const interval = (now - this.#lastEstimate) / 1000;
    if (estimate) this.#lastEstimate = now;
    sweepConnecting(this.#env, now);
    for (const e of this.#entries.values()) {
      e.state.tick(now);
      e.udp?.tick(now);
      if (estimate) {
        e.state.counters.estimate(interval);
        for (const r of e.state.reals) r.counters.estimate(interval);
      }
    }
  }

  async update(table: IpvsTable): Promise<void> {
    if (this.#closed) throw new Error('dataplane is closed');
    const seen = new Set<string>();
    const starts: Promise<void>[] = [];
    for (const vs of table.services) {
      const id = serviceId(vs);
      seen.add(id);
      const e = this.#entries.get(id);
      if (e) {
        try {
          e.state.reconfigure(vs);
        } catch (err) {
          this.#badScheduler(vs, err);
          continue;
        }
        this.#warnForwarding(e.state, vs);
        continue;
      }
      let state: ServiceState;
      try {
        state = new ServiceState(id, vs, {
          clock: this.#env.clock,
          inactiveHoldS: this.#opts.tcpTimeWaitMs / 1000,
          expireQuiescentTemplate: this.#opts.expireQuiescentTemplate,
        });
        state.reconfigure(vs);
      } catch (err) {
        this.#badScheduler(vs, err);
        continue;
      }
      const entry: Entry = { state, bound: false };
      this.#entries.set(id, entry);
      this.#warnForwarding(state, vs);
      if (vs.protocol === 'fwm') {
        this.#event('warn', 'W_IPVS_FWMARK', `${id}: firewall-mark services are kept in the table but cannot be forwarded by the userspace balancer (it sees no packet marks); use the nftables or kernel backend for them`, id);
        continue;
      }
      if (vs.protocol === 'sctp') {
        this.#event('warn', 'W_IPVS_SCTP', `${id}: SCTP services are kept in the table but not forwarded (Node.js has no SCTP sockets)`, id);
        continue;
      }
      starts.push(this.#start(entry));
    }
    for (const [id, e] of this.#entries) {
      if (seen.has(id)) continue;
      this.#entries.delete(id);
      e.state.deleted = true;
      if (e.retry) clearTimeout(e.retry);
      // Stop listening; open TCP connections finish on their own (they hold their real).
      e.tcp?.close();
      e.udp?.close();
      this.#event('info', 'I_IPVS_SERVICE_DELETED', `${id}: service removed; open connections finish`, id);
    }
    await Promise.all(starts);
  }

  #badScheduler(vs: VirtualService, err: unknown): void {
    const id = serviceId(vs);
    if (err instanceof SchedulerNotFound) this.#event('error', 'E_IPVS_SCHEDULER', `${id}: unknown scheduler '${err.scheduler}'; service not changed`, id);
    else this.#event('error', 'E_IPVS_SERVICE', `${id}: ${(err as Error).message}`, id);
  }

  #warnForwarding(state: ServiceState, vs: VirtualService): void {
    for (const r of vs.reals) {
      if ((r.forwarding === 'gate' || r.forwarding === 'ipip') && !state.warned.has('forwarding')) {
        state.warned.add('forwarding');
        const how = r.forwarding === 'gate' ? 'direct routing (-g)' : 'tunnelling (-i)';
        this.#event('warn', 'W_IPVS_PROXY_FORWARDING', `${state.id}: real ${r.address}:${r.port} asks for ${how}; the userspace balancer cannot rewrite MAC addresses or encapsulate, so it forwards by proxy (like -m) and the real server sees the balancer's address`, state.id);
      }
    }
  }

  /** Binds the service's socket; a virtual address that is not local yet is retried periodically. */
  async #start(e: Entry): Promise<void> {
    const vs = e.state.config;
    let firstFailure = true;
    const attempt = async (): Promise<void> => {
      if (this.#closed || e.state.deleted) return;
      try {
        if (vs.protocol === 'tcp') {
          e.tcp = this.#raw ? new RawTcpListener(e.state, this.#env) : new TcpListener(e.state, this.#env);
          await e.tcp.listen(vs.address, vs.port, this.#opts.backlog);
        } else {
          e.udp = new UdpListener(e.state, this.#env);
          await e.udp.listen(vs.address, vs.port);
        }
        if (this.#closed || e.state.deleted) {
          e.tcp?.close();
          e.udp?.close();
          return;
        }
        e.bound = true;
        this.#event(firstFailure ? 'debug' : 'info', 'I_IPVS_LISTENING', `${e.state.id}: listening`, e.state.id);
      } catch (err) {
        e.tcp?.close();
        e.udp?.close();
        e.tcp = e.udp = undefined;
        const code = (err as NodeJS.ErrnoException).code;
        if (firstFailure) {
          const why = code === 'EADDRNOTAVAIL'
            ? 'the virtual address is not local (yet); set net.ipv4.ip_nonlocal_bind=1 / net.ipv6.ip_nonlocal_bind=1 to listen before the address arrives'
            : (err as Error).message;
          this.#event('warn', 'W_IPVS_BIND_RETRY', `${e.state.id}: cannot listen (${code ?? 'error'}: ${why}); retrying every ${this.#opts.bindRetryMs} ms`, e.state.id);
          firstFailure = false;
        }
        e.retry = setTimeout(() => {
          e.retry = undefined;
          void attempt();
        }, this.#opts.bindRetryMs);
        e.retry.unref();
      }
    };
    await attempt();
  }

  /** True when every forwardable service is listening (tests and status). */
  listening(key?: ServiceKey): boolean {
    for (const [id, e] of this.#entries) {
      if (key && id !== serviceId(key)) continue;
      if (e.state.config.protocol === 'fwm' || e.state.config.protocol === 'sctp') continue;
      if (!e.bound) return false;
    }
    return true;
  }

  stats(): TableStats {
    const services: TableStats['services'] = new Map();
    for (const [id, e] of this.#entries) {
      const reals = new Map<string, RealStats>();
      for (const r of e.state.reals) {
        reals.set(r.id, { ...r.counters.snapshot(), activeConns: r.activeConns, inactiveConns: r.inactConns });
      }
      services.set(id, { service: e.state.counters.snapshot() as Counters, reals });
    }
    return { services };
  }

  zero(key?: ServiceKey): void {
    for (const [id, e] of this.#entries) {
      if (key && id !== serviceId(key)) continue;
      e.state.counters.zero();
      for (const r of e.state.reals) r.counters.zero();
    }
  }

  /** Scheduler and persistence state of a service, for status output. */
  dump(key: ServiceKey): Record<string, unknown> | undefined {
    const e = this.#entries.get(serviceId(key));
    if (!e) return undefined;
    return {
      scheduler: e.state.sched.schedulerName,
      schedulerState: e.state.sched.scheduler.dump?.() ?? {},
      listening: e.bound,
      persistenceTemplates: e.state.templateCount,
      udpFlows: e.udp?.flows.size ?? 0,
      reals: e.state.reals.map((r) => ({ id: r.id, weight: r.weight, active: r.activeConns, inactive: r.inactConns, overloaded: r.overloaded, persistent: r.persistConns })),
    };
  }

  get engine(): 'raw' | 'net' {
    return this.#raw ? 'raw' : 'net';
  }

  get openConnections(): number {
    return this.#conns.size;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#tick) clearInterval(this.#tick);
    for (const e of this.#entries.values()) {
      if (e.retry) clearTimeout(e.retry);
      e.tcp?.close();
      e.udp?.close();
    }
    this.#entries.clear();
    for (const c of this.#conns.toArray()) {
      destroyConn(c);
      destroyRawConn(c);
    }
    this.#conns.clear();
  }
}

export type UserspaceDataplaneApi = Dataplane & {
  listening(key?: ServiceKey): boolean;
  dump(key: ServiceKey): Record<string, unknown> | undefined;
  readonly openConnections: number;
  readonly engine: 'raw' | 'net';
};

export function createDataplane(opts: DataplaneOptions = {}): UserspaceDataplaneApi {
  return new UserspaceDataplane(opts);
}
