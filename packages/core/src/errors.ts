/**
 * One error base for the whole project. `code` is stable (users and tests match on it, never on the
 * message); the message is built from facts (file, line, directive, address, timeout) and `hint`
 * says what to do. Every package registers its codes in its own catalog with `defineErrors`, and the
 * codes are area-prefixed: E_CONF_*, E_HACF_*, E_AUTHKEYS_*, E_LDCF_*, E_IPVS_*, E_HARES_*, E_RSC_*.
 */
export interface Location {
  file: string;
  line: number;
  /** The directive (keyword) on that line, when there is one. */
  directive?: string;
}

export interface TandemErrorOptions {
  hint?: string;
  location?: Location;
  cause?: unknown;
  details?: Record<string, unknown>;
}

export class TandemError extends Error {
  readonly code: string;
  readonly hint: string | undefined;
  readonly location: Location | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: string, message: string, opts: TandemErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'TandemError';
    this.code = code;
    this.hint = opts.hint;
    this.location = opts.location;
    this.details = opts.details;
  }

  /** `file:line: directive: message (hint)`, the form every CLI prints. */
  override toString(): string {
    return formatProblem({ severity: 'error', code: this.code, message: this.message, hint: this.hint, location: this.location });
  }
}

export type Severity = 'error' | 'warning';

/** One finding of a config check. Config loaders collect all of them instead of stopping at the first. */
export interface Problem {
  severity: Severity;
  code: string;
  message: string;
  hint?: string | undefined;
  location?: Location | undefined;
}

export function formatProblem(p: Problem): string {
  const where = p.location ? `${p.location.file}:${p.location.line}: ` : '';
  const directive = p.location?.directive ? `${p.location.directive}: ` : '';
  const sev = p.severity === 'warning' ? 'warning: ' : '';
  const hint = p.hint ? ` (${p.hint})` : '';
  return `${where}${sev}${directive}${p.message}${hint} [${p.code}]`;
}

/** Thrown when a config has at least one error; carries every problem found (errors and warnings). */
export class ConfigError extends TandemError {
  readonly problems: readonly Problem[];
  constructor(file: string, problems: readonly Problem[]) {
    const errors = problems.filter((p) => p.severity === 'error');
    const first = errors[0];
    super(
      'E_CONF_INVALID',
      `${file}: ${errors.length} error(s)${first ? `; first: ${formatProblem(first)}` : ''}`,
      first?.location ? { location: first.location } : {},
    );
    this.name = 'ConfigError';
    this.problems = problems;
  }

  /** Every problem, one per line, in file order. */
  report(): string {
    return this.problems.map(formatProblem).join('\n');
  }
}

/**
 * Collects problems while a config is read. `fail()` throws a ConfigError when any error was
 * collected, so a caller sees all problems at once.
 */
export class ProblemSink {
  readonly problems: Problem[] = [];
  readonly file: string;
  constructor(file: string) {
    this.file = file;
  }

  error(code: string, message: string, location?: Location, hint?: string): void {
    this.problems.push({ severity: 'error', code, message, location, hint });
  }

  warn(code: string, message: string, location?: Location, hint?: string): void {
    this.problems.push({ severity: 'warning', code, message, location, hint });
  }

  get errorCount(): number {
    return this.problems.filter((p) => p.severity === 'error').length;
  }

  get warnings(): Problem[] {
    return this.problems.filter((p) => p.severity === 'warning');
  }

  /** Throws ConfigError if any error was collected. */
  throwIfErrors(): void {
    if (this.errorCount > 0) throw new ConfigError(this.file, this.problems);
  }
}

/**
 * A package's error catalog: code → one-line description. Kept in a single object per package so a
 * test can check that the README documents every code.
 */
export type ErrorCatalog = Readonly<Record<string, string>>;

export function defineErrors<T extends Record<string, string>>(catalog: T): Readonly<T> {
  for (const code of Object.keys(catalog)) {
    if (!/^E_[A-Z0-9]+_[A-Z0-9_]+$/.test(code)) throw new Error(`bad error code ${code}: must look like E_AREA_WHAT`);
  }
  return Object.freeze(catalog);
}

export const CORE_ERRORS = defineErrors({
  E_CONF_INVALID: 'a configuration file has at least one error; every problem is listed',
  E_CONF_READ: 'a configuration file could not be read',
  E_RUN_SPAWN: 'a command could not be started (not found or not executable)',
  E_RUN_TIMEOUT: 'a command did not finish within its timeout and was killed',
  E_RUN_FAILED: 'a command exited non-zero; its exit code and output are in the message',
  E_PIDFILE_RUNNING: 'another instance is running according to the pid file',
  E_CONTROL_DENIED: 'a control-socket client is not allowed (wrong uid/gid)',
  E_CONTROL_PROTOCOL: 'a control-socket request was not valid JSON or named no command',
});
