import type { CheckSpec, Checker, ServiceName, Verdict } from './types.ts';
import { checkDns } from './dns.ts';
import { checkFtp } from './ftp.ts';
import { checkHttp } from './http.ts';
import { checkImap } from './imap.ts';
import { checkLdap } from './ldap.ts';
import { checkMysql } from './mysql.ts';
import { checkNntp } from './nntp.ts';
import { checkPgsql } from './pgsql.ts';
import { checkPop } from './pop.ts';
import { checkRadius } from './radius.ts';
import { checkSimpletcp } from './simpletcp.ts';
import { checkSip } from './sip.ts';
import { checkSmtp } from './smtp.ts';

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
