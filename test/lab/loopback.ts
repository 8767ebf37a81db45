/**
 * The single-director part of the lab on loopback, for machines where network namespaces cannot be
 * made: tandem's balancer (tandem-ipvsd) holding virtual 127.0.0.10:8080, tandem's ldirectord
 * checking three real servers on 127.0.0.11-13:8080 with a fallback on 127.0.0.1:8090, and a
 * client sending requests through the balancer. Every 127/8 address is local, so nothing leaves the
 * machine. Keys a/b/c kill and restore a real server; q quits; everything is stopped by pid on exit.
 */
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';
import { controlRequest, processAlive } from '@tandem/core';
import { waitForControl } from './ports.ts';

const here = dirname(fileURLToPath(import.meta.url));
const ROOT = join(here, '../..');
const NODE = join(ROOT, 'node_modules/.bin/node');

export interface LoopbackOptions {
  seconds?: number | undefined;
  interactive: boolean;
  /** Port of the virtual service and real servers (8080 by default; tests pick a free one). */
  port?: number;
}

export const LOOPBACK_VIP = '127.0.0.10';
export const LOOPBACK_REALS = ['127.0.0.11', '127.0.0.12', '127.0.0.13'];

export class LoopbackLab {
  readonly dir = mkdtempSync(join(tmpdir(), 'tandem-loop-'));
  readonly port: number;
  readonly children: ResultPromise[] = [];
  readonly reals = new Map<string, ResultPromise>();
  readonly events: string[] = [];
  constructor(port = 8080) {
    this.port = port;
  }
  get ipvsdSocket() { return join(this.dir, 'ipvsd.sock'); }
  get ldSocket() { return join(this.dir, 'ldirectord.sock'); }

  #spawn(args: string[], env: Record<string, string> = {}): ResultPromise {
    const p = execa(NODE, args, { reject: false, buffer: false, stdin: 'ignore', stdout: 'ignore', stderr: 'ignore', env: { TANDEM_IPVSD_SOCKET: this.ipvsdSocket, ...env } });
    this.children.push(p);
    return p;
  }

  async start(): Promise<void> {
    this.#spawn([join(ROOT, 'packages/ipvs/bin/tandem-ipvsd.ts'), '--socket', this.ipvsdSocket, '--no-state', '--logfile', join(this.dir, 'ipvsd.log')]);
    await this.#wait(this.ipvsdSocket);
    for (const a of LOOPBACK_REALS) this.startReal(a);
    this.#spawn([join(here, 'realserver.ts'), 'fallback', String(this.port + 10)]);
    writeFileSync(join(this.dir, 'ldirectord.cf'), [
      'checktimeout=2', 'checkinterval=1', 'quiescent=yes', `logfile="${join(this.dir, 'ldirectord.log')}"`,
      `fallback=127.0.0.1:${this.port + 10} masq`,
      `virtual=${LOOPBACK_VIP}:${this.port}`,
      ...LOOPBACK_REALS.map((a) => `\treal=${a}:${this.port} masq`),
      '\tservice=http', '\trequest="test.html"', '\treceive="Test Page"', '\tscheduler=rr', '\tprotocol=tcp', '',
    ].join('\n'));
    this.#spawn([join(ROOT, 'packages/ldirectord/bin/ldirectord.ts'), '-d', '--backend', 'embedded', '--pid-file', join(this.dir, 'ld.pid'), '--control-socket', this.ldSocket, join(this.dir, 'ldirectord.cf'), 'start']);
    await this.#wait(this.ldSocket);
    this.events.push('balancer, ldirectord and three real servers started');
  }

  startReal(addr: string): void {
    // realserver.ts binds 0.0.0.0; on loopback each real gets its own port offset instead... keep
    // one address per real by binding the address itself.
    const p = execa(NODE, ['-e', `
      const http = require('node:http');
      const s = http.createServer((q, r) => { const b = q.url === '/test.html' ? 'Test Page from ${addr}\\n' : '${addr}\\n'; r.writeHead(200, {'x-real-server': '${addr}', 'content-length': Buffer.byteLength(b)}); r.end(b); });
      s.listen(${this.port}, '${addr}');
      process.on('SIGTERM', () => process.exit(0));`], { reject: false, buffer: false, stdin: 'ignore' });
    this.children.push(p);
    this.reals.set(addr, p);
  }

  killReal(addr: string): void {
    const p = this.reals.get(addr);
    if (p?.pid) try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ }
    this.reals.delete(addr);
    this.events.push(`${addr}: web server killed`);
  }

  #wait(path: string): Promise<void> {
    return waitForControl(path, `a daemon of the loopback lab (logs in ${this.dir})`);
  }

  async table() {
    return (await controlRequest(this.ipvsdSocket, { cmd: 'list' }, 1000).catch(() => undefined)) as
      | { ok: boolean; table?: { services: { reals: { address: string; port: number; weight: number }[] }[] } }
      | undefined;
  }

  async close(): Promise<void> {
    for (const c of this.children.reverse()) if (c.pid && processAlive(c.pid)) try { process.kill(c.pid, 'SIGTERM'); } catch { /* gone */ }
    await Promise.race([Promise.all(this.children.map((c) => c.catch(() => undefined))), new Promise((r) => setTimeout(r, 3000))]);
    for (const c of this.children) if (c.pid && processAlive(c.pid)) try { process.kill(c.pid, 'SIGKILL'); } catch { /* gone */ }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export async function runLoopbackDemo(opts: LoopbackOptions): Promise<void> {
  const lab = new LoopbackLab(opts.port);
  const done = async (code: number) => {
    if (process.stdin.isTTY) process.stdin.setRawMode(false);
    await lab.close();
    process.exit(code);
  };
  process.on('SIGINT', () => void done(130));
  process.on('SIGTERM', () => void done(143));
  await lab.start();
  const served = new Map<string, number>();
  let failed = 0;
  const { request } = await import('node:http');
  const tick = setInterval(() => {
    const req = request({ host: LOOPBACK_VIP, port: lab.port, path: '/', agent: false, timeout: 1000 }, (res) => {
      res.resume();
      const by = String(res.headers['x-real-server'] ?? 'fallback');
      served.set(by, (served.get(by) ?? 0) + 1);
    });
    req.on('error', () => failed++);
    req.on('timeout', () => req.destroy());
    req.end();
  }, 50);
  if (opts.interactive) {
    process.stdin.setRawMode(true);
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (k: string) => {
      if (k === 'q' || k === '\u0003') { clearInterval(tick); void done(0); }
      const i = ['a', 'b', 'c'].indexOf(k);
      if (i >= 0) {
        const a = LOOPBACK_REALS[i]!;
        if (lab.reals.has(a)) lab.killReal(a);
        else { lab.startReal(a); lab.events.push(`${a}: web server started`); }
      }
    });
  }
  const started = Date.now();
  for (;;) {
    const t = await lab.table();
    const reals = t?.table?.services[0]?.reals ?? [];
    const lines = [`tandem on loopback — virtual ${LOOPBACK_VIP}:${lab.port}, embedded balancer  ${new Date().toLocaleTimeString()}`, ''];
    for (const a of LOOPBACK_REALS) {
      const r = reals.find((x) => x.address === a);
      lines.push(`  ${a}:${lab.port}  web ${lab.reals.has(a) ? 'up  ' : 'down'}  ${r ? `weight ${r.weight}` : 'not in table'}  answered: ${served.get(a) ?? 0}`);
    }
    const fb = reals.find((x) => x.address === '127.0.0.1');
    lines.push(`  fallback: ${fb ? 'in the table' : 'out'}  answered: ${served.get('fallback') ?? 0}   failed requests: ${failed}`);
    lines.push('', ...lab.events.slice(-5).map((e) => `  ${e}`), '', 'keys: a/b/c kill or restore a real server · q quit');
    process.stdout.write(opts.interactive ? `\x1b[2J\x1b[H${lines.join('\n')}\n` : `${lines.join('\n')}\n\n`);
    if (opts.seconds !== undefined && Date.now() - started > opts.seconds * 1000) {
      clearInterval(tick);
      await done(0);
    }
    await new Promise((r) => setTimeout(r, opts.interactive ? 500 : 2000));
  }
}
