import { readFileSync, writeFileSync, unlinkSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { TandemError } from './errors.ts';

/** True when a process with this pid exists (signal 0 probes without sending anything). */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The pid recorded in a pid file, or undefined when the file is missing or holds no number. */
export function readPidFile(path: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(path, 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Claims a pid file for this process. Refuses when it names another live process; a stale file
 * (dead pid) is taken over. The daemon removes it with `removePidFile` only if it still names itself,
 * so a failed second start never deletes the running daemon's pid file.
 */
export function claimPidFile(path: string, pid = process.pid): void {
  const existing = readPidFile(path);
  if (existing !== undefined && existing !== pid && processAlive(existing)) {
    throw new TandemError('E_PIDFILE_RUNNING', `already running as pid ${existing} (pid file ${path})`, {
      hint: 'stop it first, or use reload to apply a new configuration',
    });
  }
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${pid}\n`);
}

export function removePidFile(path: string, pid = process.pid): void {
  if (readPidFile(path) === pid) {
    try {
      unlinkSync(path);
    } catch {
      /* already gone */
    }
  }
}
