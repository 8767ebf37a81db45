/** What the socket layers share: options, the clock, the event sink, the open-connection set. */
import type { Clock } from '@tandem/core';
import type { ServiceState } from './service.ts';

export type EventLevel = 'error' | 'warn' | 'info' | 'debug';

export interface Env {
  readonly clock: Clock;
  readonly sourceAddress: string | undefined;
  readonly sourceAddress6: string | undefined;
  readonly connectTimeoutMs: number;
  readonly connectAttempts: number;
  readonly udpTimeoutMs: number;
  /** Open connections of either TCP engine (for close()). */
  readonly conns: Set<object>;
  /** Raw-engine connections waiting for the real server (swept for the connect timeout). */
  readonly connecting: Set<object>;
  event(level: EventLevel, code: string, message: string, service?: string): void;
  /** A client connection found no usable real server (rate-limited warning). */
  noServer(svc: ServiceState): void;
}
