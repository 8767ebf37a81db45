/** Weighted least connection (ip_vs_wlc.c): lowest (active*256+inactive)/weight. */
import { registerScheduler } from './registry.ts';
import { type SchedService, type Scheduler, connOverhead } from './types.ts';
import { weightedLeast } from './weighted.ts';

export function createWlc(svc: SchedService): Scheduler {
  return { name: 'wlc', schedule: () => weightedLeast(svc.dests, connOverhead) };
}

registerScheduler({ name: 'wlc', description: 'weighted least-connection', create: createWlc });
