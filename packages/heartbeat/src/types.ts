/**
 * Contracts between the heartbeat parts: the wire message, the media, and the configuration the
 * daemon runs with. Each part (config, codec, media, membership, resource manager) is its own module
 * and talks to the others only through these types.
 */

/** A heartbeat message: ordered name=value fields, as on the wire (`t`, `src`, `seq`, `hg`, `ts`, ...). */
export type HbFields = Map<string, string>;

/** Raw bytes received on one medium with where they came from. */
export interface Received {
  packet: Buffer;
  /** The medium's name as cl_status lists it (the interface, or `/dev/ttyS0`). */
  link: string;
  /** Source address (`10.0.0.2:694`) or the device name for serial. */
  from: string;
}

/**
 * One keepalive medium (bcast, mcast, ucast, serial, or in-memory for simulations). Media are made
 * by factories so tests swap real sockets for an in-memory network.
 */
export interface Medium {
  /** `bcast`, `mcast`, `ucast`, `serial`, `memory`. */
  readonly type: string;
  /** Link name shown by `cl_status listhblinks` (interface name or serial device). */
  readonly link: string;
  start(onPacket: (r: Received) => void): Promise<void>;
  send(packet: Buffer): void;
  close(): Promise<void>;
}

/** Timing of membership, all in ms. */
export interface Timing {
  keepaliveMs: number;
  deadtimeMs: number;
  warntimeMs: number;
  initdeadMs: number;
}

export type AuthMethod = 'crc' | 'md5' | 'sha1';

export interface AuthKeys {
  /** The key number used to sign outgoing packets (`auth N`). */
  active: number;
  keys: Map<number, { method: AuthMethod; secret: string }>;
}
