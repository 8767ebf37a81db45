/**
 * The checkers of ldirectord.cf's checktype= and service=, and the check loop. The daemon needs
 * two things from here: `runCheck` (one CheckSpec in, one Verdict out) and `CheckScheduler` (runs
 * every real's check once per checkinterval and reports each verdict).
 */
export { runCheck } from './run.ts';
export type { CheckSpec, Checker, Verdict, CheckType, ServiceName } from './types.ts';
export { CombinedState, type CombinedStep } from './combined.ts';
export { CheckScheduler, checkIdentity, type ScheduledCheck, type SchedulerOptions, type SchedulerStats } from './scheduler.ts';
