import { spawn, type ChildProcess } from 'node:child_process';
import winston from 'winston';
import Transport from 'winston-transport';

/**
 * Logging for the daemons, as heartbeat and ldirectord users configure it: `logfile` (a path),
 * `debugfile` (a path that also receives debug lines), `logfacility` (a syslog facility such as
 * daemon or local0; `none` turns syslog off). Library code does not log: it emits events and the
 * daemon renders them here.
 */
export type Level = 'error' | 'warn' | 'info' | 'debug';

export interface Logger {
  error(msg: string, meta?: Record<string, unknown>): void;
  warn(msg: string, meta?: Record<string, unknown>): void;
  info(msg: string, meta?: Record<string, unknown>): void;
  debug(msg: string, meta?: Record<string, unknown>): void;
  /** Flush and close files and the syslog pipe. Safe to call twice. */
  close(): Promise<void>;
}

export interface LogOptions {
  /** Program name in every line (`heartbeat`, `ldirectord`). */
  ident: string;
  logfile?: string | undefined;
  debugfile?: string | undefined;
  /** syslog facility name, or undefined/'none' for no syslog. */
  logfacility?: string | undefined;
  /** Also print to stderr (foreground runs). */
  console?: boolean | undefined;
  /** Minimum level for logfile/syslog/console. Default info. */
  level?: Level | undefined;
}

export const SYSLOG_FACILITIES: Record<string, number> = {
  kern: 0, user: 1, mail: 2, daemon: 3, auth: 4, syslog: 5, lpr: 6, news: 7, uucp: 8, cron: 9,
  authpriv: 10, ftp: 11, local0: 16, local1: 17, local2: 18, local3: 19, local4: 20, local5: 21,
  local6: 22, local7: 23,
};

const SEVERITY: Record<string, number> = { error: 3, warn: 4, info: 6, debug: 7 };

/**
 * Sends each line to syslog through one long-running `logger --prio-prefix` process: Node has no
 * unix datagram sockets, and one child for the daemon's life costs nothing per line.
 */
class SyslogTransport extends Transport {
  #child: ChildProcess | undefined;
  readonly #facility: number;
  readonly #ident: string;
  constructor(ident: string, facility: number, level: string) {
    super({ level });
    this.#ident = ident;
    this.#facility = facility;
  }
  override log(info: { level: string; message: unknown }, next: () => void): void {
    if (!this.#child) {
      this.#child = spawn('logger', ['--prio-prefix', '-t', this.#ident, '--id=' + process.pid], { stdio: ['pipe', 'ignore', 'ignore'] });
      this.#child.on('error', () => { this.#child = undefined; });
      this.#child.stdin?.on('error', () => {});
    }
    const pri = this.#facility * 8 + (SEVERITY[info.level] ?? 6);
    this.#child.stdin?.write(`<${pri}>${String(info.message).replace(/\n/g, ' ')}\n`);
    next();
  }
  override close(): void {
    this.#child?.stdin?.end();
    this.#child = undefined;
  }
}

/** Classic heartbeat/ldirectord line format: `ident[pid]: YYYY/MM/DD_HH:MM:SS level: message`. */
const lineFormat = (ident: string) =>
  winston.format.printf((info) => {
    const d = new Date();
    const p = (n: number) => String(n).padStart(2, '0');
    const ts = `${d.getFullYear()}/${p(d.getMonth() + 1)}/${p(d.getDate())}_${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
    const lvl = info.level === 'warn' ? 'WARN' : info.level === 'error' ? 'ERROR' : info.level === 'debug' ? 'debug' : 'info';
    const { level: _l, message: _m, ...rest } = info as Record<string, unknown>;
    const meta = Object.keys(rest).filter((k) => typeof k === 'string').length ? ' ' + JSON.stringify(rest) : '';
    return `${ident}[${process.pid}]: ${ts} ${lvl}: ${String(info.message)}${meta}`;
  });

export function createLogger(opts: LogOptions): Logger {
  const level = opts.level ?? 'info';
  const transports: winston.transport[] = [];
  const fmt = lineFormat(opts.ident);
  if (opts.logfile) transports.push(new winston.transports.File({ filename: opts.logfile, level, format: fmt }));
  if (opts.debugfile) transports.push(new winston.transports.File({ filename: opts.debugfile, level: 'debug', format: fmt }));
  const facility = opts.logfacility && opts.logfacility !== 'none' ? SYSLOG_FACILITIES[opts.logfacility] : undefined;
  if (facility !== undefined) transports.push(new SyslogTransport(opts.ident, facility, level));
  if (opts.console) transports.push(new winston.transports.Console({ level, format: fmt, stderrLevels: ['error', 'warn', 'info', 'debug'] }));
  if (transports.length === 0) transports.push(new winston.transports.Console({ level: 'error', silent: true }));
  const w = winston.createLogger({ levels: { error: 0, warn: 1, info: 2, debug: 3 }, level: 'debug', transports });
  let closed: Promise<void> | undefined;
  return {
    error: (m, meta) => w.log('error', m, meta),
    warn: (m, meta) => w.log('warn', m, meta),
    info: (m, meta) => w.log('info', m, meta),
    debug: (m, meta) => w.log('debug', m, meta),
    close() {
      closed ??= new Promise<void>((resolve) => {
        w.on('finish', () => resolve());
        w.end();
        setTimeout(resolve, 1000).unref();
      });
      return closed;
    },
  };
}

/** A logger that keeps lines in memory, for tests and for status output of the last events. */
export class MemoryLogger implements Logger {
  readonly lines: { level: Level; msg: string; meta?: Record<string, unknown> | undefined }[] = [];
  readonly limit: number;
  constructor(limit = 10_000) {
    this.limit = limit;
  }
  #push(level: Level, msg: string, meta?: Record<string, unknown>) {
    this.lines.push({ level, msg, meta });
    if (this.lines.length > this.limit) this.lines.shift();
  }
  error(m: string, meta?: Record<string, unknown>) { this.#push('error', m, meta); }
  warn(m: string, meta?: Record<string, unknown>) { this.#push('warn', m, meta); }
  info(m: string, meta?: Record<string, unknown>) { this.#push('info', m, meta); }
  debug(m: string, meta?: Record<string, unknown>) { this.#push('debug', m, meta); }
  async close() {}
  text(): string {
    return this.lines.map((l) => `${l.level}: ${l.msg}`).join('\n');
  }
}
