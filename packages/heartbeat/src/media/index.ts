/** Builds the media of an ha.cf: one Medium per bcast device, mcast line, ucast line, serial device. */
import type { Medium } from '../types.ts';
import type { MediumConfig, HaConfig } from '../hacf.ts';
import { createBcastMedium } from './bcast.ts';
import { createMcastMedium } from './mcast.ts';
import { createUcastMedium } from './ucast.ts';
import { createSerialMedium, type SerialOptions } from './serial.ts';

export { createBcastMedium, type BcastSpec } from './bcast.ts';
export { createMcastMedium, type McastSpec } from './mcast.ts';
export { createUcastMedium, type UcastSpec } from './ucast.ts';
export { createSerialMedium, ClassicFramer, SERIAL_MAX_FRAME, type SerialSpec, type SerialOptions } from './serial.ts';
export { MemoryNetwork, seededRandom, type LinkConditions } from './memory.ts';
export { ifaceIPv4, broadcastOf, localIPv4, type IfaceAddress } from './iface.ts';
export type { MediumOptions } from './udp.ts';

export function createMedium(cfg: MediumConfig, opts: SerialOptions = {}): Medium {
  switch (cfg.type) {
    case 'bcast': return createBcastMedium(cfg, opts);
    case 'mcast': return createMcastMedium(cfg, opts);
    case 'ucast': return createUcastMedium(cfg, opts);
    case 'serial': return createSerialMedium(cfg, opts);
  }
}

export function createMedia(config: HaConfig, opts: SerialOptions = {}): Medium[] {
  return config.media.map((m) => createMedium(m, opts));
}
