/**
 * End to end, for real: two tandem `heartbeat` processes, each in its own network namespace, with
 * haresources `node1 IPaddr::VIP/24/eth0`, move a VIP between them through resource.d/IPaddr, and a
 * client namespace follows it (ICMP to the VIP, its neighbour entry moved by the gratuitous ARP).
 * hb_standby, hb_takeover and a graceful stop go through the real command-line tools.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { Topology, type Spawned } from './lab/netns.ts';
import { waitFor } from './lab/ports.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const NODE = join(ROOT, 'node_modules/.bin/node');
const HEARTBEAT = join(ROOT, 'packages/heartbeat/src/cli/heartbeat.ts');
const BIN = join(ROOT, 'packages/heartbeat/bin');
const VIP = '10.78.0.100';

const until = <T>(what: string, probe: () => Promise<T | undefined>, ms = 40_000): Promise<T> => waitFor(what, probe, ms, 100, { retryErrors: false });

describe('haresources failover between two tandem heartbeat daemons in network namespaces', function () {
  this.timeout(180_000);
  let topo: Topology;
  let dir: string;
  const procs = new Map<string, Spawned>();
  const conf = (n: string) => ({ configDir: join(dir, n, 'ha.d'), socket: join(dir, n, 'hb.sock'), log: join(dir, n, 'ha-log') });

  function writeNode(name: string, extra: string[] = ['auto_failback on']): void {
    const c = conf(name);
    mkdirSync(c.configDir, { recursive: true });
    // The peer's address first: the graceful stop's last datagrams must leave before its medium closes.
    const ucast = name === 'node1' ? ['10.78.0.2', '10.78.0.1'] : ['10.78.0.1', '10.78.0.2'];
    writeFileSync(join(c.configDir, 'ha.cf'), [
      'keepalive 200ms', 'deadtime 2', 'warntime 1', 'initdead 4', 'udpport 694',
      ...ucast.map((a) => `ucast eth0 ${a}`), ...extra, 'node node1 node2', `logfile ${c.log}`, '',
    ].join('\n'));
    writeFileSync(join(c.configDir, 'authkeys'), 'auth 1\n1 sha1 failover-secret\n');
    chmodSync(join(c.configDir, 'authkeys'), 0o600);
    writeFileSync(join(c.configDir, 'haresources'), `node1 IPaddr::${VIP}/24/eth0\n`);
    writeFileSync(join(c.configDir, 'nodeinfo'), `${name}\n`);
  }

  function startNode(name: string, host: string): void {
    const c = conf(name);
    const p = topo.spawn(host, NODE, [HEARTBEAT, '-f', '-l', '--config-dir', c.configDir, '--socket', c.socket,
      '--pid-file', join(dir, name, 'hb.pid'), '--state-dir', join(dir, name, 'state')], { label: name, env: { ARP_COUNT: '3' } });
    procs.set(name, p);
  }

  const vipOn = async (host: string) => String((await topo.exec(topo.ns(host), 'ip', ['-o', '-4', 'addr', 'show', 'dev', 'eth0'])).stdout).includes(` ${VIP}/24 `);
  const where = async () => `${(await vipOn('n1')) ? 'n1' : ''}${(await vipOn('n2')) ? 'n2' : ''}` || 'none';
  const tool = (name: string, cmd: string, args: string[]) => execa(join(BIN, cmd), ['--socket', conf(name).socket, ...args], { reject: false });
  const mac = async (host: string) => /link\/ether ([0-9a-f:]+)/.exec(String((await topo.exec(topo.ns(host), 'ip', ['link', 'show', 'eth0'])).stdout))![1]!;
  const clientSees = async (host: string) => String((await topo.exec(topo.ns('cl'), 'ip', ['neigh', 'show', VIP, 'dev', 'eth0'])).stdout).includes(await mac(host));
  // Up to three echo requests: on a loaded machine the first may leave before the new holder's
  // gratuitous ARP has reached the client.
  const ping = async () => (await topo.exec(topo.ns('cl'), 'ping', ['-c', '3', '-i', '0.5', '-W', '2', VIP], { reject: false })).exitCode === 0;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'failover-'));
    topo = new Topology(`f${Math.floor(Math.random() * 1000)}`);
    await topo.build([
      { name: 'n1', addresses: ['10.78.0.1/24'] },
      { name: 'n2', addresses: ['10.78.0.2/24'] },
      { name: 'cl', addresses: ['10.78.0.50/24'] },
      { name: 'gw', addresses: ['10.78.0.254/24'] },
    ]);
    writeNode('node1');
    writeNode('node2');
  });
  after(async () => {
    await topo?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('brings the VIP up on its node, moves it with hb_standby / hb_takeover, and at once on a graceful stop', async () => {
    startNode('node1', 'n1');
    startNode('node2', 'n2');
    // Heartbeat's RQSTDELAY: groups are taken 10 s after both nodes start.
    await until('the VIP on node1', async () => ((await where()) === 'n1' ? true : undefined));
    await until('rscstatus local on both', async () =>
      ((await tool('node1', 'cl_status', ['rscstatus'])).stdout === 'local' && (await tool('node2', 'cl_status', ['rscstatus'])).stdout === 'local' ? true : undefined));
    assert.equal(await ping(), true);
    assert.equal(await clientSees('n1'), true);

    assert.equal((await tool('node1', 'hb_standby', [])).exitCode, 0);
    await until('the VIP on node2', async () => ((await where()) === 'n2' ? true : undefined));
    // The client moves by node2's gratuitous ARP, without sending anything itself.
    await until('the client neighbour entry on node2', async () => ((await clientSees('n2')) ? true : undefined), 15_000);
    assert.equal(await ping(), true);
    assert.equal((await tool('node2', 'cl_status', ['rscstatus'])).stdout, 'all');

    assert.equal((await tool('node1', 'hb_takeover', [])).exitCode, 0);
    await until('the VIP back on node1', async () => ((await where()) === 'n1' ? true : undefined));
    assert.equal(await ping(), true);

    // A graceful stop: node1 releases, tells node2 (shutdone), node2 takes over without a deadtime.
    process.kill(procs.get('node1')!.pid, 'SIGTERM');
    await until('the VIP on node2 after node1 stopped', async () => ((await where()) === 'n2' ? true : undefined));
    assert.equal(await ping(), true);
    const log2 = readFileSync(conf('node2').log, 'utf8');
    assert.match(log2, /Resources being acquired from node1/);
    assert.doesNotMatch(log2, /node node1: is dead/);
    assert.match(readFileSync(conf('node1').log, 'utf8'), /Running .*resource\.d\/IPaddr 10\.78\.0\.100\/24\/eth0 stop/);
    await topo.kill(procs.get('node2')!);
  });

  it('ipfail: the director that loses its ping node while the other still reaches it gives the VIP up', async () => {
    for (const n of ['node1', 'node2']) {
      rmSync(join(dir, n), { recursive: true, force: true });
      writeNode(n, ['auto_failback off', 'ping 10.78.0.254', 'respawn hacluster /usr/lib/heartbeat/ipfail', 'apiauth ipfail gid=haclient uid=hacluster']);
    }
    startNode('node1', 'n1');
    startNode('node2', 'n2');
    await until('the VIP on node1', async () => ((await where()) === 'n1' ? true : undefined));
    await until('both see the ping node', async () =>
      (['node1', 'node2'].every((n) => /ping node 10\.78\.0\.254 is up/.test(readFileSync(conf(n).log, 'utf8'))) ? true : undefined));
    await until('stable', async () =>
      ((await tool('node1', 'cl_status', ['rscstatus'])).stdout === 'local' && (await tool('node2', 'cl_status', ['rscstatus'])).stdout === 'local' ? true : undefined));
    // node1 loses its upstream (a route inside its own namespace); node2 still reaches it.
    await topo.exec(topo.ns('n1'), 'ip', ['route', 'add', 'blackhole', '10.78.0.254/32']);
    await until('the VIP on node2', async () => ((await where()) === 'n2' ? true : undefined));
    assert.equal(await ping(), true);
    const log1 = readFileSync(conf('node1').log, 'utf8');
    assert.match(log1, /ping node 10\.78\.0\.254 is dead/);
    assert.match(log1, /ipfail: giving up \[all\] resources/);
    assert.match(readFileSync(conf('node2').log, 'utf8'), /ipfail: telling the other node that we have more visible ping nodes/);
    for (const n of ['node1', 'node2']) await topo.kill(procs.get(n)!);
  });
});
