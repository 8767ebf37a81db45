/** Shortest expected delay (ip_vs_sed.c): lowest (active+1)/weight; inactive ones do not count. */
import { registerScheduler } from './registry.ts';
import type { Dest, SchedService, Scheduler } from './types.ts';
import { weightedLeast } from './weighted.ts';

const sedOverhead = (d: Dest) => d.activeConns + 1;

export function createSed(svc: SchedService): Scheduler {
  return { name: 'sed', schedule: () => weightedLeast(svc.dests, sedOverhead) };
}

registerScheduler({ name: 'sed', description: 'shortest expected delay', create: createSed });
