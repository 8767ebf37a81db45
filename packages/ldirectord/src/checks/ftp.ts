import net from 'node:net';
import os from 'node:os';
import type { CheckSpec, Verdict } from './types.ts';
import { Conversation, converse, expectCode, readCodeReply } from './conn.ts';
import { CheckFailed, matchReceive, verdictOf } from './util.ts';

/**
 * service=ftp, as ldirectord's Net::FTP check: log in (login/passwd, default anonymous /
 * ldirectord@HOSTNAME), `CWD /`, `TYPE I`, passive mode, `RETR request`, and match receive against
 * the file's content. The data connection goes to the real server's address (the address in the
 * PASV reply is ignored, so a server behind NAT that announces another address still checks).
 * A request of `/` (ldirectord's default) retrieves nothing: login + CWD / is the check then.
 */
export function checkFtp(spec: CheckSpec, signal: AbortSignal): Promise<Verdict> {
  const started = performance.now();
  return verdictOf(started, spec.negotiateTimeoutMs, signal, (s) =>
    converse({ host: spec.host, port: spec.port, signal: s }, async (c) => {
      expectCode(await readCodeReply(c), (code) => code === 220, 'greeting');
      const user = spec.login || 'anonymous';
      const pass = spec.passwd || `ldirectord@${os.hostname()}`;
      c.write(`USER ${user}\r\n`);
      const u = await readCodeReply(c);
      if (u.code === 331 || u.code === 332) {
        c.write(`PASS ${pass}\r\n`);
        expectCode(await readCodeReply(c), (code) => code === 230 || code === 202, 'PASS');
      } else expectCode(u, (code) => code === 230, 'USER');
      c.write('CWD /\r\n');
      expectCode(await readCodeReply(c), (code) => code >= 200 && code < 300, 'CWD /');
      c.write('TYPE I\r\n');
      expectCode(await readCodeReply(c), (code) => code >= 200 && code < 300, 'TYPE I');
      const file = spec.request && spec.request !== '/' ? spec.request : undefined;
      if (!file) {
        c.write('QUIT\r\n');
        return `FTP login as ${user} ok`;
      }
      const content = await retrieve(c, spec.host, file, s);
      c.write('QUIT\r\n');
      const m = matchReceive(spec, content.toString('latin1'));
      if (m !== true) throw new CheckFailed(`RETR ${file}: ${m}`);
      return `RETR ${file}: ${content.length} bytes${spec.receive ? ', receive matched' : ''}`;
    }),
  );
}

async function retrieve(c: Conversation, host: string, file: string, signal: AbortSignal): Promise<Buffer> {
  const v6 = net.isIPv6(host);
  c.write(v6 ? 'EPSV\r\n' : 'PASV\r\n');
  const pasv = await readCodeReply(c);
  let port: number;
  if (v6) {
    expectCode(pasv, (code) => code === 229, 'EPSV');
    const m = /\(\|\|\|(\d+)\|\)/.exec(pasv.text);
    if (!m) throw new CheckFailed(`EPSV: cannot parse ${pasv.text}`);
    port = Number(m[1]);
  } else {
    expectCode(pasv, (code) => code === 227, 'PASV');
    const m = /(\d+),(\d+),(\d+),(\d+),(\d+),(\d+)/.exec(pasv.text);
    if (!m) throw new CheckFailed(`PASV: cannot parse ${pasv.text}`);
    port = Number(m[5]) * 256 + Number(m[6]);
  }
  return converse({ host, port, signal }, async (data) => {
    c.write(`RETR ${file}\r\n`);
    const pre = await readCodeReply(c);
    expectCode(pre, (code) => code === 125 || code === 150, `RETR ${file}`);
    const content = await data.readToEnd();
    expectCode(await readCodeReply(c), (code) => code === 226 || code === 250, `RETR ${file}`);
    return content;
  });
}
