/**
 * Two tandem heartbeat processes, for real: each in its own network namespace, joined by a bridge,
 * talking ucast. SIGKILL of one must make the other declare it dead (within deadtime + keepalive,
 * checked loosely here: timing is the benchmark's job), and cl_status must answer against the live
 * daemon with the real tool's texts. `-M`: membership only (the resource manager has its own tests).
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, rmSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { Topology } from '../../../test/lab/netns.ts';
import { fetchStatus } from '../src/control.ts';
import { waitFor } from '../../../test/lab/ports.ts';

const here = dirname(fileURLToPath(import.meta.url));
const NODE = join(here, '../../../node_modules/.bin/node');
const HEARTBEAT = join(here, '../src/cli/heartbeat.ts');
const CL_STATUS = join(here, '../bin/cl_status');

function writeNode(dir: string, name: string, peers: string[], extra = ''): { configDir: string; socket: string; log: string } {
  const configDir = join(dir, name, 'ha.d');
  mkdirSync(configDir, { recursive: true });
  const log = join(dir, name, 'ha-log');
  writeFileSync(join(configDir, 'ha.cf'), [
    'keepalive 100ms', 'deadtime 1', 'warntime 500ms', 'initdead 3', 'udpport 694',
    ...peers.map((p) => `ucast eth0 ${p}`), 'node node1 node2', `logfile ${log}`, 'debug 0', extra, '',
  ].join('\n'));
  writeFileSync(join(configDir, 'authkeys'), 'auth 1\n1 sha1 netns-test-secret\n');
  chmodSync(join(configDir, 'authkeys'), 0o600);
  writeFileSync(join(configDir, 'nodeinfo'), `${name}\n`);
  return { configDir, socket: join(dir, name, 'hb.sock'), log };
}

const until = <T>(what: string, probe: () => Promise<T | undefined>, ms = 20_000): Promise<T> => waitFor(what, probe, ms, 100, { retryErrors: false });

/** Polls over the control socket directly (spawning cl_status for each poll is slow on a loaded machine). */
async function peerState(socket: string, peer: string): Promise<string | undefined> {
  return (await fetchStatus(socket, 2000))?.nodes.find((n) => n.name === peer)?.state;
}

async function clStatus(socket: string, ...args: string[]) {
  return execa(CL_STATUS, ['--socket', socket, ...args], { reject: false });
}

describe('heartbeat daemons in network namespaces (ucast, real processes)', function () {
  this.timeout(90_000);
  let topo: Topology;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hb-netns-'));
    topo = new Topology(`h${Math.floor(Math.random() * 1000)}`);
    await topo.build([
      { name: 'n1', addresses: ['10.77.0.1/24'] },
      { name: 'n2', addresses: ['10.77.0.2/24'] },
    ]);
  });
  after(async () => {
    await topo?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('both nodes come up; cl_status answers; SIGKILL of one is detected by the other', async () => {
    const peers = ['10.77.0.1', '10.77.0.2'];
    const n1 = writeNode(dir, 'node1', peers);
    const n2 = writeNode(dir, 'node2', peers);
    // node1 runs with heartbeat's default realtime scheduling, node2 with -l (none).
    const args = (n: typeof n1, name: string) => [HEARTBEAT, '-f', ...(name === 'node2' ? ['-l'] : []), '-M', '--config-dir', n.configDir,
      '--socket', n.socket, '--pid-file', join(dir, name, 'hb.pid'), '--state-dir', join(dir, name, 'state')];
    const p1 = topo.spawn('n1', NODE, args(n1, 'node1'), { label: 'node1' });
    const p2 = topo.spawn('n2', NODE, args(n2, 'node2'), { label: 'node2' });
    let err1 = '';
    p1.proc.stderr?.on('data', (d: Buffer) => { err1 += d.toString(); });

    await until('node1 sees node2 active', async () => ((await peerState(n1.socket, 'node2')) === 'active' ? true : undefined));
    await until('node2 sees node1 active', async () => ((await peerState(n2.socket, 'node1')) === 'active' ? true : undefined));

    // Realtime for every thread, and not inherited by the programs it starts (reset-on-fork).
    const sched = await until('realtime scheduling', async () => {
      const r = await execa('chrt', ['-p', String(p1.pid)], { reject: false });
      return /SCHED_RR\|SCHED_RESET_ON_FORK/.test(r.stdout) ? r.stdout : undefined;
    });
    assert.match(sched, /priority: 1/);
    assert.match((await execa('chrt', ['-p', String(p2.pid)])).stdout, /SCHED_OTHER/);

    const hb = await clStatus(n1.socket, 'hbstatus');
    assert.equal(hb.stdout, 'Heartbeat is running on this machine.');
    assert.equal(hb.exitCode, 0);
    assert.equal((await clStatus(n1.socket, 'listnodes')).stdout, 'node2\nnode1');
    assert.equal((await clStatus(n1.socket, 'listhblinks', '-v', 'node2')).stdout, '\teth0\tup');
    assert.equal((await clStatus(n1.socket, 'hblinkstatus', 'node2', 'eth0')).stdout, 'up');
    assert.equal((await clStatus(n1.socket, 'hbparameter', '-p', 'keepalive')).stdout, '100ms');
    assert.equal((await clStatus(n1.socket, 'hbparameter', '-p', 'deadtime')).stdout, '1');
    assert.equal((await clStatus(n1.socket, 'rscstatus')).stdout, 'local');
    const bad = await clStatus(n1.socket, 'nodestatus', 'nosuchnode');
    assert.deepEqual([bad.stdout, bad.exitCode], ['Error. May be due to incorrect node name', 11]);
    const verbose = await clStatus(n1.socket, 'listnodes', '-v');
    assert.equal(verbose.stdout, '\nnode2\tactive\t(nodetype: normal)\n\teth0\tup\n\nnode1\tactive\t(nodetype: normal)\n\teth0\tup');

    const killedAt = Date.now();
    process.kill(p2.pid, 'SIGKILL');
    await until('node1 declares node2 dead', async () => ((await peerState(n1.socket, 'node2')) === 'dead' ? true : undefined));
    // Not a timing assertion (the benchmark measures that), only that it was not a full initdead away.
    assert.ok(Date.now() - killedAt < 15_000);
    await until('the log line', async () => (/WARN: node node2: is dead/.test(readFileSync(n1.log, 'utf8')) ? true : undefined), 5000);
    assert.equal((await clStatus(n1.socket, 'hblinkstatus', 'node2', 'eth0')).stdout, 'dead');
    assert.equal(err1.includes('Error'), false, err1);
    await topo.kill(p1);
  });
});
