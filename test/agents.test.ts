/**
 * The resource.d agents, run for real inside network namespaces of their own (test/lab/netns.ts):
 * IPaddr brings a VIP up in a "director" namespace and a client namespace reaches it, its gratuitous
 * ARP moves the client to the new holder without the client sending a packet, lvs switches the
 * per-namespace sysctls, and nothing touches the machine's own namespace.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Topology } from './lab/netns.ts';
import { FIXTURES } from './fixtures/paths.ts';
import { waitFor } from './lab/ports.ts';

const RD = fileURLToPath(new URL('../resource.d/', import.meta.url));
const VIP = '192.168.136.10';

const until = <T>(what: string, fn: () => Promise<T | undefined>, ms = 20_000): Promise<T> => waitFor(what, fn, ms, 100, { retryErrors: false });

const rootSysctl = (p: string) => readFileSync(`/proc/sys/net/ipv4/${p}`, 'utf8').trim();

describe('resource.d agents in network namespaces', function () {
  this.timeout(120_000);
  let topo: Topology;
  const rootBefore = { arpIgnore: '', arpAnnounce: '', forward: '' };

  before(async () => {
    rootBefore.arpIgnore = rootSysctl('conf/all/arp_ignore');
    rootBefore.arpAnnounce = rootSysctl('conf/all/arp_announce');
    rootBefore.forward = rootSysctl('ip_forward');
    topo = new Topology('ag');
    await topo.build([
      { name: 'cl', addresses: ['192.168.136.5/24'] },
      { name: 'lb1', addresses: ['192.168.136.11/24'] },
      { name: 'lb2', addresses: ['192.168.136.12/24'] },
    ]);
  });
  after(async () => {
    await topo?.close();
  });

  const agent = (host: string, name: string, args: string[], env?: Record<string, string>) =>
    topo.exec(topo.ns(host), `${RD}${name}`, args, { reject: false, env });
  const addrs = async (host: string, dev = 'eth0') => String((await topo.exec(topo.ns(host), 'ip', ['-o', '-4', 'addr', 'show', 'dev', dev])).stdout);
  const mac = async (host: string) => /link\/ether ([0-9a-f:]+)/.exec(String((await topo.exec(topo.ns(host), 'ip', ['link', 'show', 'eth0'])).stdout))![1]!;
  const clientNeigh = async () => String((await topo.exec(topo.ns('cl'), 'ip', ['neigh', 'show', VIP, 'dev', 'eth0'])).stdout);

  it('IPaddr brings the VIP up labelled eth0:0, status says running, the client reaches it by ICMP and TCP', async () => {
    const st0 = await agent('lb1', 'IPaddr', [`${VIP}/24/eth0`, 'status']);
    assert.equal(String(st0.stdout).trim(), 'stopped');
    assert.equal(st0.exitCode, 3);
    const up = await agent('lb1', 'IPaddr', [`${VIP}/24/eth0`, 'start'], { ARP_COUNT: '3' });
    assert.equal(up.exitCode, 0, String(up.stderr));
    assert.match(await addrs('lb1'), new RegExp(`inet ${VIP.replace(/\./g, '\\.')}/24 brd 192\\.168\\.136\\.255 scope global secondary eth0:0`));
    const st = await agent('lb1', 'IPaddr', [`${VIP}/24/eth0`, 'status']);
    assert.equal(String(st.stdout).trim(), 'running');
    assert.equal(st.exitCode, 0);
    // Starting what runs is a no-op that succeeds.
    assert.equal((await agent('lb1', 'IPaddr', [`${VIP}/24/eth0`, 'start'])).exitCode, 0);
    assert.equal((await addrs('lb1')).split('\n').filter((l) => l.includes(VIP)).length, 1);

    const ping = await topo.exec(topo.ns('cl'), 'ping', ['-c', '1', '-W', '2', VIP], { reject: false });
    assert.equal(ping.exitCode, 0);
    topo.spawn('lb1', 'socat', [`TCP4-LISTEN:7777,bind=${VIP},reuseaddr,fork`, 'SYSTEM:echo lb1'], { label: 'lb1-server' });
    const answer = await until('a TCP answer from the VIP', async () => {
      const r = await topo.exec(topo.ns('cl'), 'socat', ['-T', '2', '-', `TCP4:${VIP}:7777`], { reject: false, timeoutMs: 5000 });
      return String(r.stdout).trim() === 'lb1' ? 'lb1' : undefined;
    });
    assert.equal(answer, 'lb1');
    assert.match(await clientNeigh(), new RegExp(await mac('lb1')));
  });

  it('moves the client to the new holder by gratuitous ARP alone; the interface and prefix come from the routes', async () => {
    const down = await agent('lb1', 'IPaddr', [`${VIP}/24/eth0`, 'stop']);
    assert.equal(down.exitCode, 0);
    assert.doesNotMatch(await addrs('lb1'), new RegExp(VIP.replace(/\./g, '\\.')));
    assert.equal(String((await agent('lb1', 'IPaddr', [`${VIP}/24/eth0`, 'status'])).stdout).trim(), 'stopped');
    // Stopping a stopped address succeeds (LSB).
    assert.equal((await agent('lb1', 'IPaddr', [`${VIP}/24/eth0`, 'stop'])).exitCode, 0);

    const lb2mac = await mac('lb2');
    assert.doesNotMatch(await clientNeigh(), new RegExp(lb2mac), 'the client still points at lb1');
    const up = await agent('lb2', 'IPaddr', [VIP, 'start'], { ARP_COUNT: '5', ARP_INTERVAL: '1' });
    assert.equal(up.exitCode, 0, String(up.stderr));
    assert.match(await addrs('lb2'), new RegExp(`inet ${VIP.replace(/\./g, '\\.')}/24 .*eth0:0`));
    // The client sends nothing: only lb2's unsolicited ARP can change its neighbour entry.
    const entry = await until('the client neighbour entry to show lb2', async () => {
      const n = await clientNeigh();
      return n.includes(lb2mac) ? n : undefined;
    });
    assert.match(entry, new RegExp(`${VIP.replace(/\./g, '\\.')} lladdr ${lb2mac}`));
    assert.equal((await agent('lb2', 'IPaddr', [VIP, 'stop'])).exitCode, 0);
  });

  it('numbers IPaddr labels eth0:N and leaves IPaddr2 addresses unlabelled unless a label is written', async () => {
    assert.equal((await agent('lb1', 'IPaddr', ['192.168.136.20/24/eth0', 'start'], { ARP_COUNT: '1' })).exitCode, 0);
    assert.equal((await agent('lb1', 'IPaddr', ['192.168.136.21/24/eth0', 'start'], { ARP_COUNT: '1' })).exitCode, 0);
    assert.equal((await agent('lb1', 'IPaddr2', ['192.168.136.22/24/eth0', 'start'], { ARP_COUNT: '1' })).exitCode, 0);
    assert.equal((await agent('lb1', 'IPaddr2', ['192.168.136.23/24/eth0:web', 'start'], { ARP_COUNT: '1' })).exitCode, 0);
    const a = await addrs('lb1');
    assert.match(a, /192\.168\.136\.20\/24 .* eth0:0/);
    assert.match(a, /192\.168\.136\.21\/24 .* eth0:1/);
    assert.match(a, /192\.168\.136\.22\/24 .* eth0\\/);
    assert.match(a, /192\.168\.136\.23\/24 .* eth0:web/);
    for (const [ag, spec] of [['IPaddr', '192.168.136.20/24/eth0'], ['IPaddr', '192.168.136.21/24/eth0'], ['IPaddr2', '192.168.136.22/24/eth0'], ['IPaddr2', '192.168.136.23/24/eth0:web']] as const) {
      assert.equal((await agent('lb1', ag, [spec, 'stop'])).exitCode, 0);
    }
    assert.doesNotMatch(await addrs('lb1'), /192\.168\.136\.2[0-3]/);
    const noRoute = await agent('lb1', 'IPaddr', ['10.77.0.1', 'start']);
    assert.equal(noRoute.exitCode, 1);
    assert.match(String(noRoute.stderr), /no interface found for 10\.77\.0\.1/);
  });

  it('lvs switches a namespace between real server and director; the machine\'s own sysctls stay as they were', async () => {
    const arp = (host: string) => topo.exec(topo.ns('cl'), 'arping', ['-c', '2', '-w', '3', '-I', 'eth0', VIP], { reject: false }).then((r) => ({ host, ok: r.exitCode === 0, out: String(r.stdout) }));
    const sysctl = async (p: string) => String((await topo.exec(topo.ns('lb1'), 'cat', [`/proc/sys/net/ipv4/${p}`])).stdout).trim();

    const rs = await agent('lb1', 'lvs', [VIP, 'stop']);
    assert.equal(rs.exitCode, 0, String(rs.stderr));
    assert.match(await addrs('lb1', 'lo'), new RegExp(`inet ${VIP.replace(/\./g, '\\.')}/32 scope host lo:lvs`));
    assert.equal(await sysctl('conf/all/arp_ignore'), '1');
    assert.equal(await sysctl('conf/all/arp_announce'), '2');
    assert.equal(String((await agent('lb1', 'lvs', [VIP, 'status'])).stdout).trim(), 'stopped');
    // A real server holds the VIP but never answers ARP for it.
    assert.equal((await arp('lb1')).ok, false, 'no ARP reply while lb1 is a real server');

    const dir = await agent('lb1', 'lvs', [VIP, 'start']);
    assert.equal(dir.exitCode, 0, String(dir.stderr));
    assert.doesNotMatch(await addrs('lb1', 'lo'), new RegExp(VIP.replace(/\./g, '\\.')));
    assert.equal(await sysctl('ip_forward'), '1');
    assert.equal(await sysctl('conf/all/arp_ignore'), '0');
    assert.equal(await sysctl('conf/all/arp_announce'), '0');
    assert.equal(String((await agent('lb1', 'lvs', [VIP, 'status'])).stdout).trim(), 'running');
    // The seed's group order: lvs, then IPaddr: the director now answers for the VIP.
    assert.equal((await agent('lb1', 'IPaddr', [`${VIP}/24/eth0`, 'start'], { ARP_COUNT: '1' })).exitCode, 0);
    const reply = await arp('lb1');
    assert.equal(reply.ok, true, reply.out);
    assert.match(reply.out, new RegExp((await mac('lb1')).toUpperCase()));
    assert.equal((await agent('lb1', 'IPaddr', [`${VIP}/24/eth0`, 'stop'])).exitCode, 0);

    assert.equal(rootSysctl('conf/all/arp_ignore'), rootBefore.arpIgnore);
    assert.equal(rootSysctl('conf/all/arp_announce'), rootBefore.arpAnnounce);
    assert.equal(rootSysctl('ip_forward'), rootBefore.forward);
  });

  it('lvs takes its VIPs from the ipvsadm rules file when given none', async () => {
    const r = await agent('lb2', 'lvs', ['stop'], { IPVSADM_RULES: `${FIXTURES}/examples/sysconfig-ipvsadm`, LVS_CONF: '/nonexistent' });
    assert.equal(r.exitCode, 0, String(r.stderr));
    assert.match(await addrs('lb2', 'lo'), new RegExp(`${VIP.replace(/\./g, '\\.')}/32`));
    assert.equal((await agent('lb2', 'lvs', ['start'], { IPVSADM_RULES: `${FIXTURES}/examples/sysconfig-ipvsadm`, LVS_CONF: '/nonexistent' })).exitCode, 0);
    assert.doesNotMatch(await addrs('lb2', 'lo'), new RegExp(VIP.replace(/\./g, '\\.')));
  });
});
