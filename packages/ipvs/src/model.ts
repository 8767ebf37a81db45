/**
 * The IPVS virtual-service table as plain data: what ldirectord wants (the desired table), what a
 * backend reports (the actual table), and the operations between them. Shared by every backend
 * (kernel via ipvsadm, nftables, the embedded userspace balancer) and by ldirectord's policy.
 */
export type Protocol = 'tcp' | 'udp' | 'sctp' | 'fwm';
export type Forwarding = 'gate' | 'masq' | 'ipip';

/** Identifies a virtual service. For fwm, `address` is '' and `port` is 0; `fwmark` is set. */
export interface ServiceKey {
  protocol: Protocol;
  /** IPv4 dotted quad or IPv6 text in canonical (lower-case, compressed) form, no brackets. */
  address: string;
  port: number;
  fwmark?: number | undefined;
  /** Address family for fwmark services ('inet' default, 'inet6' with ipvsadm -6). */
  family?: 'inet' | 'inet6' | undefined;
}

export interface Persistence {
  timeoutS: number;
  /** Persistence granularity netmask (IPv4 dotted, or IPv6 prefix length as a number string). */
  netmask?: string | undefined;
}

export interface RealServer {
  address: string;
  port: number;
  forwarding: Forwarding;
  weight: number;
  /** Upper/lower connection thresholds (ipvsadm -x / -y); 0 or undefined means none. */
  upperThreshold?: number | undefined;
  lowerThreshold?: number | undefined;
}

export interface VirtualService extends ServiceKey {
  scheduler: string;
  persistence?: Persistence | undefined;
  /** Scheduler flags (ipvsadm -b), e.g. sh-port, sh-fallback, mh-port. */
  schedFlags?: string[] | undefined;
  /** One-packet scheduling (ipvsadm -o, UDP). */
  ops?: boolean | undefined;
  reals: RealServer[];
}

export interface IpvsTable {
  services: VirtualService[];
}

export type IpvsOp =
  | { op: 'add-service'; service: VirtualService }
  | { op: 'edit-service'; service: VirtualService }
  | { op: 'delete-service'; key: ServiceKey }
  | { op: 'add-real'; key: ServiceKey; real: RealServer }
  | { op: 'edit-real'; key: ServiceKey; real: RealServer }
  | { op: 'delete-real'; key: ServiceKey; address: string; port: number };

/**
 * A backend applies a batch of operations atomically as far as it can (one `ipvsadm -R`, one
 * `nft -f` transaction, one in-process swap) and reads the table back.
 */
export interface IpvsBackend {
  readonly name: string;
  read(): Promise<IpvsTable>;
  apply(ops: readonly IpvsOp[]): Promise<void>;
  /** Releases resources (sockets, child processes). Safe to call twice. */
  close?(): Promise<void>;
}

/** Stable string for a service key: `tcp 192.168.6.240:80`, `tcp [2001:db8::1]:80`, `fwm 1`. */
export function serviceId(k: ServiceKey): string {
  if (k.protocol === 'fwm') return `fwm ${k.fwmark ?? 0}${k.family === 'inet6' ? ' inet6' : ''}`;
  return `${k.protocol} ${endpoint(k.address, k.port)}`;
}

/** `ip:port`, with brackets for IPv6. */
export function endpoint(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

export function realId(r: { address: string; port: number }): string {
  return endpoint(r.address, r.port);
}

export function sameKey(a: ServiceKey, b: ServiceKey): boolean {
  return serviceId(a) === serviceId(b);
}

/** Counters of one real server or one virtual service, as `ipvsadm -L --stats/--rate` shows them. */
export interface Counters {
  /** Connections scheduled so far. */
  conns: number;
  inPkts: number;
  outPkts: number;
  inBytes: number;
  outBytes: number;
  /** Per-second rates (ipvsadm --rate). */
  cps: number;
  inPps: number;
  outPps: number;
  inBps: number;
  outBps: number;
}

export interface RealStats extends Counters {
  activeConns: number;
  inactiveConns: number;
}

/** Stats keyed by serviceId(service) and then realId(real). */
export interface TableStats {
  services: Map<string, { service: Counters; reals: Map<string, RealStats> }>;
}

/**
 * The embedded balancer's data plane: given the whole table, it forwards accordingly. `update` is
 * one in-process swap: new connections follow the new table at once, open ones keep their real
 * server (weight 0 and removal let them finish).
 */
export interface Dataplane {
  update(table: IpvsTable): Promise<void>;
  stats(): TableStats;
  zero(key?: ServiceKey): void;
  close(): Promise<void>;
  /** How it forwards, for `status` (the embedded data plane: its TCP engine, raw or net). */
  readonly engine?: string;
}
