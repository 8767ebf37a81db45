/**
 * The contract between ldirectord's config (which produces a CheckSpec per real server) and the
 * checkers (which turn one CheckSpec into one Verdict). Checkers never touch the IPVS table; the
 * policy turns verdicts into a desired table.
 */
export type CheckType = 'connect' | 'negotiate' | 'ping' | 'external' | 'external-perl' | 'on' | 'off' | 'combined';

export type ServiceName =
  | 'none' | 'dns' | 'ftp' | 'http' | 'https' | 'http_proxy' | 'imap' | 'imaps' | 'ldap' | 'ldaps'
  | 'mysql' | 'nntp' | 'oracle' | 'pgsql' | 'pop' | 'pops' | 'radius' | 'simpletcp' | 'sip' | 'smtp'
  | 'submission';

export interface CheckSpec {
  checktype: CheckType;
  /** For checktype 'combined' (checktype=N): N connect checks after each successful negotiate. */
  combinedConnects?: number | undefined;
  service: ServiceName;
  /** Transport of the virtual service (a udp virtual's connect check is a ping, as in ldirectord). */
  protocol: 'tcp' | 'udp' | 'fwm';
  /** The real server's address (IPv4 or IPv6, no brackets) and the port checks use (checkport, else the real's port, else the service's well-known port). */
  host: string;
  port: number;
  /** The real server's own port as configured (0 when omitted), passed to external checks. */
  realPort: number;
  /** The virtual service, as passed to external checks: address (or fwmark number as text) and port. */
  virtualAddress: string;
  virtualPort: number;
  request?: string | undefined;
  receive?: string | undefined;
  httpMethod: 'GET' | 'HEAD';
  virtualHost?: string | undefined;
  login?: string | undefined;
  passwd?: string | undefined;
  database?: string | undefined;
  secret?: string | undefined;
  checkcommand?: string | undefined;
  /** Effective timeouts in ms after ldirectord's fallback rules (checktimeout ↔ negotiatetimeout). */
  checkTimeoutMs: number;
  negotiateTimeoutMs: number;
  /** ICMP attempts for ping checks (checkcount). */
  checkCount: number;
  /**
   * tandem extension, off by default: plain-http checks reuse the connection of the previous check
   * of the same real (HTTP/1.1 keep-alive) instead of `Connection: close` on a fresh one.
   */
  httpKeepAlive?: boolean | undefined;
}

export interface Verdict {
  up: boolean;
  /** Why, for logs and monitorfile: `HTTP 200 OK, receive matched`, `connect refused`, `timeout after 5000 ms`. */
  reason: string;
  durationMs: number;
}

/** One checker per checktype/service. It must settle within its timeout and honour the signal. */
export type Checker = (spec: CheckSpec, signal: AbortSignal) => Promise<Verdict>;
