/**
 * Durations as heartbeat and ldirectord users write them. A bare number is in the directive's
 * default unit (seconds for both tools); suffixes are attached to the number and case-insensitive:
 * us/usec, ms/msec, s/sec, m/min, h. Heartbeat 3.0.6 itself rejects `2s` and `1min`; tandem accepts
 * them because it never changes the meaning of a value heartbeat accepts.
 */
const UNITS: Record<string, number> = {
  us: 0.001,
  usec: 0.001,
  ms: 1,
  msec: 1,
  s: 1000,
  sec: 1000,
  secs: 1000,
  m: 60_000,
  min: 60_000,
  mins: 60_000,
  h: 3_600_000,
  hr: 3_600_000,
};

export interface DurationOptions {
  /** Multiplier of a bare number, in ms. Default 1000 (seconds). */
  bareUnitMs?: number;
}

/**
 * Parses a duration into whole milliseconds (rounded to nearest). Returns undefined when the text
 * is not a duration, so callers can report the problem with file and line.
 */
export function parseDuration(text: string, opts: DurationOptions = {}): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*([a-zA-Z]*)\s*$/.exec(text);
  if (!m) return undefined;
  const value = Number(m[1]);
  const unit = m[2]!.toLowerCase();
  const factor = unit === '' ? (opts.bareUnitMs ?? 1000) : UNITS[unit];
  if (factor === undefined || !Number.isFinite(value)) return undefined;
  return Math.round(value * factor);
}

/** Renders ms the way heartbeat prints configured times (`2500ms`). */
export function formatMs(ms: number): string {
  return `${Math.round(ms)}ms`;
}

/** Human form for logs: `150ms`, `2s`, `1.5s`, `2min`. */
export function humanMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 120_000) return `${+(ms / 1000).toFixed(3)}s`;
  return `${+(ms / 60_000).toFixed(2)}min`;
}
