/**
 * What a scheduler sees: the service's real servers as the kernel keeps them (a list in which a
 * newly added server goes to the FRONT, as list_add_rcu does in ip_vs_ctl.c), their weights,
 * thresholds and connection counts. Schedulers are pure: no sockets, no timers; time comes from the
 * service's clock only where the kernel uses jiffies (lblc/lblcr cache expiry).
 */
import type { Clock } from '@tandem/core';

export class Dest {
  readonly id: string;
  readonly address: string;
  readonly port: number;
  weight: number;
  /** Last weight above 0 (ip_vs_dest.last_weight): mh keeps a quiesced server's table slots. */
  lastWeight: number;
  /** ipvsadm -x / -y; 0 means none. */
  upperThreshold = 0;
  lowerThreshold = 0;
  activeConns = 0;
  inactConns = 0;
  /** Persistence templates pointing here (ip_vs_dest.persistconns). */
  persistConns = 0;
  /** IP_VS_DEST_F_OVERLOAD. */
  overloaded = false;
  /** IP_VS_DEST_F_AVAILABLE: false once removed from the service (its connections may live on). */
  available = true;

  constructor(address: string, port: number, weight: number) {
    this.id = address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
    this.address = address;
    this.port = port;
    this.weight = weight;
    this.lastWeight = weight > 0 ? weight : 0;
  }

  setWeight(w: number): void {
    this.weight = w;
    if (w > 0) this.lastWeight = w;
  }
}

/** The connection being scheduled: client (source) and virtual (destination) endpoints. */
export interface SchedRequest {
  saddr: string;
  sport: number;
  daddr: string;
  dport: number;
}

/** The service a scheduler instance serves (ip_vs_service as far as schedulers read it). */
export interface SchedService {
  /** Kernel list order: most recently added first. The scheduler must not reorder it. */
  readonly dests: Dest[];
  /** Scheduler flags: sh-fallback, sh-port, mh-fallback, mh-port (also flag-1/flag-2). */
  readonly flags: ReadonlySet<string>;
  readonly clock: Clock;
  readonly protocol: 'tcp' | 'udp' | 'sctp' | 'fwm';
}

/**
 * One instance per virtual service (init_service). The service calls addDest after putting the
 * dest at the front of the list, delDest after taking it out (with the index it had), updDest
 * after a weight/threshold change, as ip_vs_ctl.c calls the scheduler hooks.
 */
export interface Scheduler {
  readonly name: string;
  schedule(req: SchedRequest): Dest | undefined;
  addDest?(d: Dest): void;
  delDest?(d: Dest, formerIndex: number): void;
  updDest?(d: Dest): void;
  /** Whatever the scheduler keeps (cursor, cache sizes), for status output. */
  dump?(): Record<string, unknown>;
}

export interface SchedulerFactory {
  readonly name: string;
  readonly description: string;
  create(svc: SchedService): Scheduler;
}

/** ip_vs_dest_conn_overhead: active connections weigh 256 times an inactive one. */
export function connOverhead(d: Dest): number {
  return d.activeConns * 256 + d.inactConns;
}

/** Scheduler flag test accepting both ipvsadm's names and the generic flag-N form. */
export function hasFlag(flags: ReadonlySet<string>, name: 'fallback' | 'port', prefix: 'sh' | 'mh'): boolean {
  const generic = name === 'fallback' ? 'flag-1' : 'flag-2';
  return flags.has(`${prefix}-${name}`) || flags.has(generic);
}
