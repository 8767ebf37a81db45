import net from 'node:net';
import type { CheckSpec, Verdict } from './types.ts';
import { down, up } from './util.ts';

/**
 * checktype=ping (and connect on a udp virtual): ICMP echo. Node has no raw sockets, so this runs
 * the system `ping` (iputils) through execa. ldirectord's Net::Ping makes checkcount attempts of
 * checktimeout each and succeeds on the first reply; `ping -c 1 -w D` with D = checkcount ×
 * checktimeout does the same: it sends one echo a second until one reply arrives or D runs out.
 * One fork per check is fine here: ping checks are not the hot path (thousands of reals use http
 * or connect).
 */
export const PING_COMMAND = 'ping';

export async function checkPing(spec: CheckSpec, signal: AbortSignal): Promise<Verdict> {
  const started = performance.now();
  const attempts = Math.max(1, spec.checkCount || 1);
  const deadlineMs = attempts * spec.checkTimeoutMs;
  const deadlineS = Math.max(1, Math.ceil(deadlineMs / 1000));
  const family = net.isIPv6(spec.host) ? '-6' : '-4';
  const { execa } = await import('execa');
  const r = await execa(PING_COMMAND, [family, '-n', '-q', '-c', '1', '-w', String(deadlineS), spec.host], {
    reject: false,
    timeout: deadlineMs + 200,
    forceKillAfterDelay: 500,
    cancelSignal: signal,
    stdin: 'ignore',
  });
  if (r.exitCode === 0) return up('echo reply', started);
  if (r.timedOut || r.exitCode === 1) return down(`no echo reply within ${deadlineMs} ms`, started);
  if (r.isCanceled) return down('check aborted', started);
  const why = (r.stderr || r.stdout || r.shortMessage || '').toString().trim().split('\n').pop();
  return down(`ping failed: ${why}`, started);
}
