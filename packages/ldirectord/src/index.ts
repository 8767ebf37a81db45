export * from './config.ts';
export * from './errors.ts';
export * from './policy.ts';
export * from './daemon.ts';
export * from './backend.ts';
export { main as ldirectordMain, parseArgs, findConfigFile, daemonPid, USAGE, VERSION } from './cli.ts';
export type { CheckSpec, Checker, Verdict, CheckType, ServiceName } from './checks/types.ts';
