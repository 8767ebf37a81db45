import { TandemError } from './errors.ts';

/**
 * Every child process of tandem goes through here (execa, never a shell): a command with arguments,
 * a timeout after which it is killed, and a result that never throws for a non-zero exit. A command
 * that cannot be started or times out is still a result (`spawnError`, `timedOut`) so that callers
 * log it and decide; `requireSuccess` turns a failed result into a TandemError with the output.
 */
export interface RunOptions {
  /** Kill the command after this many ms (SIGTERM, then SIGKILL 2 s later). Default 30 s. */
  timeoutMs?: number;
  input?: string;
  env?: Record<string, string | undefined>;
  /** Replace the environment instead of extending process.env. */
  extendEnv?: boolean;
  cwd?: string;
  /** Detached with no stdio, for daemons started in the background. */
  detached?: boolean;
}

export interface RunResult {
  command: string;
  args: readonly string[];
  exitCode: number | undefined;
  signal: string | undefined;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  /** Set when the command could not be started (ENOENT, EACCES). */
  spawnError: string | undefined;
  durationMs: number;
  ok: boolean;
}

/** The injectable seam: tests replace it to record or fake commands. */
export type CommandRunner = (command: string, args: readonly string[], opts?: RunOptions) => Promise<RunResult>;

// execa is loaded on the first command, not at import: it adds about 20 MB to a process, and
// long-running daemons such as the balancer may never run a command at all.
let execaModule: Promise<typeof import('execa')> | undefined;

export const runCommand: CommandRunner = async (command, args, opts = {}) => {
  const started = performance.now();
  const { execa } = await (execaModule ??= import('execa'));
  const r = await execa(command, [...args], {
    reject: false,
    timeout: opts.timeoutMs ?? 30_000,
    forceKillAfterDelay: 2000,
    input: opts.input,
    env: opts.env,
    extendEnv: opts.extendEnv ?? true,
    cwd: opts.cwd,
    stripFinalNewline: false,
    stdin: opts.input === undefined ? 'ignore' : 'pipe',
  });
  const spawnError = (r as { code?: string }).code && r.exitCode === undefined ? `${(r as { code?: string }).code}: ${r.shortMessage}` : undefined;
  return {
    command,
    args,
    exitCode: r.exitCode,
    signal: r.signal ?? undefined,
    stdout: String(r.stdout ?? ''),
    stderr: String(r.stderr ?? ''),
    timedOut: r.timedOut === true,
    spawnError,
    durationMs: performance.now() - started,
    ok: r.exitCode === 0 && !r.timedOut,
  };
};

/** One line describing how a command ended, for logs and error messages. */
export function describeResult(r: RunResult): string {
  const cmd = [r.command, ...r.args].join(' ');
  if (r.spawnError) return `${cmd}: could not start (${r.spawnError})`;
  if (r.timedOut) return `${cmd}: timed out after ${Math.round(r.durationMs)} ms and was killed`;
  if (r.signal) return `${cmd}: killed by ${r.signal}`;
  const out = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-3).join(' | ');
  return `${cmd}: exit ${r.exitCode}${out ? `: ${out}` : ''}`;
}

export function requireSuccess(r: RunResult): RunResult {
  if (r.ok) return r;
  const code = r.spawnError ? 'E_RUN_SPAWN' : r.timedOut ? 'E_RUN_TIMEOUT' : 'E_RUN_FAILED';
  throw new TandemError(code, describeResult(r), { details: { exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr } });
}
