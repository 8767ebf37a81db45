import { createConnection, type Socket } from 'node:net';
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { TandemError } from '@tandem/core/errors';
import type { CommandRunner } from '@tandem/core/run';

/**
 * ldirectord's e-mail alerts: through the `smtp=` host (host or host:port, as Net::SMTP) when one
 * is configured, else through the local sendmail (`sendmail -t -i`, which is what Mail::Send
 * ends up running). The subject is the log line of the decision, as in ldirectord.
 */
export interface Mail {
  to: readonly string[];
  from?: string | undefined;
  subject: string;
  body: string;
}

export interface MailOptions {
  smtp?: string | undefined;
  runner: CommandRunner;
  timeoutMs?: number | undefined;
}

function message(mail: Mail, from: string): string {
  const date = new Date().toUTCString().replace('GMT', '+0000');
  const body = mail.body.replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..');
  return `From: ${from}\r\nTo: ${mail.to.join(', ')}\r\nSubject: ${mail.subject}\r\nDate: ${date}\r\nX-Mailer: tandem ldirectord\r\n\r\n${body}\r\n`;
}

/** One SMTP dialogue: greeting, EHLO (HELO if refused), MAIL, RCPT per address, DATA, QUIT. */
async function viaSmtp(server: string, mail: Mail, from: string, timeoutMs: number): Promise<void> {
  const m = /^\[?([^\]]+?)\]?(?::(\d+))?$/.exec(server)!;
  const host = m[1]!;
  const port = m[2] ? Number(m[2]) : 25;
  const sock: Socket = createConnection({ host, port });
  sock.setEncoding('utf8');
  let buf = '';
  const waiting: ((line: string) => void)[] = [];
  const lines: string[] = [];
  let failure: Error | undefined;
  sock.on('data', (chunk: string) => {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).replace(/\r$/, '');
      buf = buf.slice(nl + 1);
      const w = waiting.shift();
      if (w) w(line);
      else lines.push(line);
    }
  });
  const timer = setTimeout(() => sock.destroy(new Error(`no answer from ${server} within ${timeoutMs} ms`)), timeoutMs);
  const closed = new Promise<void>((resolve) => sock.on('close', () => resolve()));
  sock.on('error', (err) => {
    failure = err;
    for (const w of waiting.splice(0)) w('');
  });
  const line = (): Promise<string> =>
    lines.length > 0 ? Promise.resolve(lines.shift()!) : failure ? Promise.resolve('') : new Promise((resolve) => waiting.push(resolve));
  /** A reply, possibly multi-line (`250-...` continues); throws unless its code starts with `ok`. */
  const reply = async (ok: string, what: string): Promise<string> => {
    for (let i = 0; i < 1000; i++) {
      const l = await line();
      if (failure) throw new TandemError('E_LD_MAIL', `smtp ${server}: ${failure.message}`, { cause: failure });
      if (/^\d{3}-/.test(l)) continue;
      if (!l.startsWith(ok)) throw new TandemError('E_LD_MAIL', `smtp ${server} refused ${what}: ${l}`);
      return l;
    }
    throw new TandemError('E_LD_MAIL', `smtp ${server}: endless reply to ${what}`);
  };
  const send = (text: string): void => {
    sock.write(text);
  };
  try {
    await reply('2', 'the connection');
    send(`EHLO ${hostname()}\r\n`);
    try {
      await reply('2', 'EHLO');
    } catch {
      send(`HELO ${hostname()}\r\n`);
      await reply('2', 'HELO');
    }
    send(`MAIL FROM:<${from.replace(/^.*<|>.*$/g, '')}>\r\n`);
    await reply('2', 'MAIL FROM');
    for (const to of mail.to) {
      send(`RCPT TO:<${to}>\r\n`);
      await reply('2', `RCPT TO ${to}`);
    }
    send('DATA\r\n');
    await reply('3', 'DATA');
    send(`${message(mail, from)}.\r\n`);
    await reply('2', 'the message');
    send('QUIT\r\n');
    await reply('2', 'QUIT').catch(() => undefined);
  } finally {
    clearTimeout(timer);
    sock.end();
    await Promise.race([closed, new Promise((r) => setTimeout(r, 1000).unref())]);
    sock.destroy();
  }
}

export async function sendMail(mail: Mail, opts: MailOptions): Promise<void> {
  const from = mail.from ?? `ldirectord@${hostname()}`;
  const timeoutMs = opts.timeoutMs ?? 30_000;
  if (opts.smtp) return viaSmtp(opts.smtp, mail, from, timeoutMs);
  const sendmail = ['/usr/sbin/sendmail', '/usr/lib/sendmail'].find((p) => existsSync(p));
  if (!sendmail) throw new TandemError('E_LD_MAIL', 'no smtp= host configured and no sendmail found to send the e-mail alert', { hint: 'set smtp=your.mail.host' });
  const r = await opts.runner(sendmail, ['-t', '-i'], { input: message(mail, from).replace(/\r\n/g, '\n'), timeoutMs });
  if (!r.ok) throw new TandemError('E_LD_MAIL', `${sendmail} failed: ${r.spawnError ?? (r.timedOut ? 'timed out' : `exit ${r.exitCode} ${r.stderr.trim()}`)}`);
}
