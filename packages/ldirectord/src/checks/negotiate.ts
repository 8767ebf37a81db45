import type { CheckSpec, Checker, ServiceName, Verdict } from './types.ts';
import { checkHttp } from './http.ts';

/**
 * checktype=negotiate: one checker per service=. `none` is always up, as in ldirectord (it is the
 * default for a port without a well-known service). `oracle` is refused: ldirectord speaks it
 * through DBD::Oracle and Oracle's client libraries, which tandem does not have; the check reports
 * down with that reason instead of pretending.
 */
const none: Checker = async () => ({ up: true, reason: 'service=none: no negotiate check', durationMs: 0 });

const oracle: Checker = async () => ({
  up: false,
  reason: 'service=oracle is not implemented in tandem (needs Oracle client libraries); use checktype=connect or external',
  durationMs: 0,
});

/**
 * The checkers other than http are loaded on first use: each pulls in node:tls, node:crypto or
 * node:dgram, and a daemon (or the first-pass worker thread, first-pass.ts) that only checks http
 * starts ~100 ms sooner without them.
 */
const lazy = (load: () => Promise<Checker>): Checker => {
  let fn: Checker | undefined;
  let loading: Promise<Checker> | undefined;
  return (spec, signal) => {
    if (fn) return fn(spec, signal);
    loading ??= load().then((f) => (fn = f));
    return loading.then((f) => f(spec, signal));
  };
};
const loaders = {
  checkDns: async (): Promise<Checker> => (await import('./dns.ts')).checkDns,
  checkFtp: async (): Promise<Checker> => (await import('./ftp.ts')).checkFtp,
  checkImap: async (): Promise<Checker> => (await import('./imap.ts')).checkImap,
  checkLdap: async (): Promise<Checker> => (await import('./ldap.ts')).checkLdap,
  checkMysql: async (): Promise<Checker> => (await import('./mysql.ts')).checkMysql,
  checkNntp: async (): Promise<Checker> => (await import('./nntp.ts')).checkNntp,
  checkPgsql: async (): Promise<Checker> => (await import('./pgsql.ts')).checkPgsql,
  checkPop: async (): Promise<Checker> => (await import('./pop.ts')).checkPop,
  checkRadius: async (): Promise<Checker> => (await import('./radius.ts')).checkRadius,
  checkSimpletcp: async (): Promise<Checker> => (await import('./simpletcp.ts')).checkSimpletcp,
  checkSip: async (): Promise<Checker> => (await import('./sip.ts')).checkSip,
  checkSmtp: async (): Promise<Checker> => (await import('./smtp.ts')).checkSmtp,
};
const lazyChecker = Object.fromEntries(Object.entries(loaders).map(([name, load]) => [name, lazy(load)])) as Record<keyof typeof loaders, Checker>;
const { checkDns, checkFtp, checkImap, checkLdap, checkMysql, checkNntp, checkPgsql, checkPop, checkRadius, checkSimpletcp, checkSip, checkSmtp } = lazyChecker;

/** Loads every lazily loaded checker now (the compile-cache warm-up of `ldirectord --warm-cache`). */
export async function loadAllCheckers(): Promise<void> {
  await Promise.all(Object.values(loaders).map((load) => load()));
}

export const NEGOTIATORS: Record<ServiceName, Checker> = {
  none,
  http: checkHttp,
  https: checkHttp,
  http_proxy: checkHttp,
  ftp: checkFtp,
  smtp: checkSmtp,
  submission: checkSmtp,
  pop: checkPop,
  pops: checkPop,
  imap: checkImap,
  imaps: checkImap,
  nntp: checkNntp,
  ldap: checkLdap,
  ldaps: checkLdap,
  dns: checkDns,
  mysql: checkMysql,
  pgsql: checkPgsql,
  oracle,
  sip: checkSip,
  radius: checkRadius,
  simpletcp: checkSimpletcp,
};

export function checkNegotiate(spec: CheckSpec, signal: AbortSignal): Promise<Verdict> {
  const fn = NEGOTIATORS[spec.service] ?? none;
  return fn(spec, signal);
}
