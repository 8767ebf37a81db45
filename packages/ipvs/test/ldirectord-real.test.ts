import { strict as assert } from 'node:assert';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { controlRequest } from '@tandem/core';
import { type ResultPromise, execa } from 'execa';
import { IPVSADM_TS, IPVSD_TS, NODE_PATH, ROOT } from './helpers.ts';
import { waitFor } from '../../../test/lab/ports.ts';

/**
 * Debian's real ldirectord 4.12 driving the embedded balancer's table, unchanged: tandem-ipvsadm is
 * bind-mounted over /usr/sbin/ipvsadm inside a private mount namespace (ldirectord runs
 * /sbin/ipvsadm, else /usr/sbin/ipvsadm, and never looks at PATH). ldirectord reads the table with
 * `ipvsadm -L -n` and `-L -n --thresholds` before every change, so this checks that it understands
 * our listings and that its commands work. Real servers are HTTP servers on loopback.
 */
const LDIRECTORD = '/usr/sbin/ldirectord';

function children(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

const until = <T>(what: string, fn: () => Promise<T | undefined>, ms = 120_000): Promise<T> => waitFor(what, fn, ms, 200);

describe('the real ldirectord 4.12 on tandem-ipvsadm', function () {
  // ldirectord runs ipvsadm three times per change and about nine times per real at start.
  this.timeout(400_000);
  let dir: string;
  const procs: ResultPromise[] = [];
  const servers: Server[] = [];

  before(function () {
    // A Debian package of test/debian-packages.txt; without it there is no real ldirectord to run.
    if (!existsSync(LDIRECTORD) || process.getuid?.() !== 0) this.skip();
  });
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'ld-real-'))));
  afterEach(async () => {
    for (const p of procs.splice(0)) {
      if (p.pid) {
        for (const c of children(p.pid)) {
          try {
            process.kill(c, 'SIGKILL');
          } catch {
            /* gone */
          }
        }
        try {
          process.kill(p.pid, 'SIGTERM');
        } catch {
          /* gone */
        }
      }
      await p;
    }
    for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it('sets up the virtual, removes a failed real, restores it, and cleans up on stop', async () => {
    const socket = join(dir, 'ipvsd.sock');
    const ipvsd = execa(IPVSD_TS, ['--socket', socket, '--no-state', '--dataplane', 'none'], { env: { PATH: NODE_PATH }, reject: false });
    procs.push(ipvsd);
    await until('tandem-ipvsd', () => controlRequest(socket, { cmd: 'ping' }, 1000).then((r) => (r.ok ? true : undefined)));

    const listen = (host: string, port = 0) =>
      new Promise<Server>((resolve) => {
        const s = createServer((_q, res) => res.end('Test Page\n'));
        s.listen(port, host, () => resolve(s));
      });
    const s11 = await listen('127.0.0.11');
    servers.push(s11);
    const port = (s11.address() as AddressInfo).port;
    let s12 = await listen('127.0.0.12', port);
    servers.push(s12);

    const wrapper = join(dir, 'ipvsadm-wrapper');
    writeFileSync(wrapper, `#!/bin/sh\nTANDEM_IPVSD_SOCKET='${socket}' exec '${join(ROOT, 'node_modules', '.bin', 'node')}' '${IPVSADM_TS}' "$@"\n`);
    chmodSync(wrapper, 0o755);
    const cfg = join(dir, 'ldirectord.cf');
    writeFileSync(
      cfg,
      ['checktimeout=1', 'checkinterval=1', 'quiescent=no', `virtual=127.0.0.100:${port}`, `\treal=127.0.0.11:${port} masq 1`, `\treal=127.0.0.12:${port} masq 2`, '\tchecktype=connect', '\tscheduler=wrr', ''].join('\n'),
    );
    const list = async () => (await execa(IPVSADM_TS, ['-L', '-n'], { env: { PATH: NODE_PATH, TANDEM_IPVSD_SOCKET: socket } })).stdout;
    const ld = execa('unshare', ['--mount', '--propagation', 'private', '--fork', 'sh', '-c', `mount --bind '${wrapper}' /usr/sbin/ipvsadm && exec ${LDIRECTORD} -d '${cfg}' start`], {
      cwd: dir,
      reject: false,
      all: true,
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
    });
    procs.push(ld);
    let log = '';
    ld.all?.on('data', (c: Buffer) => (log += c.toString()));

    const both = new RegExp(`TCP  127\\.0\\.0\\.100:${port} wrr\\n  -> 127\\.0\\.0\\.11:${port} +Masq +1 .*\\n  -> 127\\.0\\.0\\.12:${port} +Masq +2 `);
    await until('both reals in the table', async () => (both.test(await list()) ? true : undefined)).catch((e: Error) => {
      throw new Error(`${e.message}\nldirectord said:\n${log.slice(-3000)}`);
    });

    await new Promise((r) => s12.close(r));
    servers.splice(servers.indexOf(s12), 1);
    await until('the failed real removed', async () => {
      const t = await list();
      return t.includes(`127.0.0.11:${port}`) && !t.includes(`127.0.0.12:${port}`) ? true : undefined;
    });

    s12 = await listen('127.0.0.12', port);
    servers.push(s12);
    await until('the real restored', async () => (both.test(await list()) ? true : undefined));

    const ldPid = children(ld.pid!)[0];
    assert.ok(ldPid, 'ldirectord runs under unshare');
    process.kill(ldPid, 'SIGTERM');
    await ld;
    // cleanstop=yes (the default): the virtual is gone, the table is as before.
    assert.doesNotMatch(await list(), /127\.0\.0\.100/);
  });
});
