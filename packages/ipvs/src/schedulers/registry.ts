import type { SchedulerFactory } from './types.ts';

/** Schedulers register themselves on import (like register_ip_vs_scheduler). */
const factories = new Map<string, SchedulerFactory>();

export function registerScheduler(f: SchedulerFactory): void {
  factories.set(f.name, f);
}

export function getScheduler(name: string): SchedulerFactory | undefined {
  return factories.get(name);
}

export function schedulerNames(): string[] {
  return [...factories.keys()].sort();
}
