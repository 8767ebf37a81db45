import type { CheckSpec, Verdict } from './types.ts';
import { down, up } from './util.ts';

/**
 * checktype=external and external-perl. ldirectord execs `checkcommand` without a shell with the
 * four arguments `VIP|fwmark VPORT RIP RPORT` (for a fwmark virtual: `7 0 RIP RPORT`), kills it
 * after checktimeout, and counts exit status 0 as up. A checkcommand with spaces is one program
 * name there too ("Can't exec", down): execa without a shell behaves the same.
 *
 * external-perl: ldirectord compiles the file into its own Perl process; tandem runs `perl FILE`
 * with the same arguments. The outcomes match (falling off the end = exit 0 = up, exit(n≠0) or die
 * = down); the difference is that the script is read afresh on each check, not cached for the
 * daemon's lifetime.
 */
export function externalArgs(spec: CheckSpec): string[] {
  return [spec.virtualAddress, String(spec.virtualPort), spec.host, String(spec.realPort)];
}

export async function checkExternal(spec: CheckSpec, signal: AbortSignal): Promise<Verdict> {
  const started = performance.now();
  const command = spec.checkcommand || '/bin/true';
  const perl = spec.checktype === 'external-perl';
  const file = perl ? 'perl' : command;
  const args = perl ? [command, ...externalArgs(spec)] : externalArgs(spec);
  const { execa } = await import('execa');
  const r = await execa(file, args, {
    reject: false,
    timeout: spec.checkTimeoutMs,
    killSignal: 'SIGTERM',
    forceKillAfterDelay: 1000,
    cancelSignal: signal,
    stdin: 'ignore',
    stdout: 'ignore',
    stderr: 'pipe',
    maxBuffer: 64 * 1024,
  });
  const name = perl ? `perl ${command}` : command;
  if (r.timedOut) return down(`${name} killed after ${spec.checkTimeoutMs} ms`, started);
  if (r.isCanceled) return down('check aborted', started);
  if (r.exitCode === 0) return up(`${name} exited 0`, started);
  if (r.exitCode === undefined) {
    const code = (r as { code?: string }).code;
    if (code) return down(`cannot run ${name}: ${code}`, started);
    return down(`${name} killed by ${r.signal ?? 'a signal'}`, started);
  }
  const err = String(r.stderr ?? '').trim().split('\n').pop();
  return down(`${name} exited ${r.exitCode}${err ? `: ${err}` : ''}`, started);
}
