import type { CheckSpec, Checker, Verdict } from './types.ts';
import { checkConnect } from './connect.ts';
import { checkExternal } from './external.ts';
import { checkNegotiate } from './negotiate.ts';
import { checkPing } from './ping.ts';

/**
 * The one entry point the daemon calls: one CheckSpec in, one Verdict out, never throws, settles
 * within the spec's timeout (or as soon as the signal fires). checktype=N (combined) is stateful
 * across checks: the scheduler (CombinedState) decides whether a negotiate or a connect comes next
 * and calls runCheck with that checktype; called directly, combined runs a negotiate check.
 */
export const runCheck: Checker = async (spec: CheckSpec, signal: AbortSignal): Promise<Verdict> => {
  try {
    switch (spec.checktype) {
      case 'connect':
        return await checkConnect(spec, signal);
      case 'ping':
        return await checkPing(spec, signal);
      case 'external':
      case 'external-perl':
        return await checkExternal(spec, signal);
      case 'on':
        return { up: true, reason: 'checktype=on', durationMs: 0 };
      case 'off':
        return { up: false, reason: 'checktype=off', durationMs: 0 };
      case 'negotiate':
      case 'combined':
        return await checkNegotiate(spec, signal);
      default:
        return { up: false, reason: `unknown checktype ${String((spec as { checktype: unknown }).checktype)}`, durationMs: 0 };
    }
  } catch (err) {
    return { up: false, reason: `check failed: ${(err as Error)?.message ?? String(err)}`, durationMs: 0 };
  }
};

