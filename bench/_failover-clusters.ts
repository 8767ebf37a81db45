/**
 * bench/failover: the three director pairs under test, each in namespaces of its own, with the
 * same shape (client .200, directors .5 and .6 on one bridge, VIP .10):
 *  - tandem: seed 001's lab (test/lab/lab.ts) with the balancer and ldirectord hot on both
 *    directors and haresources naming only the VIP, so a takeover moves only the address;
 *  - heartbeat 3.0.6 (Debian), haresources `node1 IPaddr::VIP/24/eth0`;
 *  - keepalived 2.2.7's VRRP (Debian), VRRPv3, priorities 150/100, preempt.
 * For the peers each director itself answers the probes (test/lab/realserver.ts on 0.0.0.0), so
 * only the VIP's movement is measured. Everything is started and stopped by pid.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { controlRequest, processAlive } from '@tandem/core';
import { Topology, type Spawned } from '../test/lab/netns.ts';
import { SeedLab, VIP } from '../test/lab/lab.ts';
import { RealNode, REAL_HEARTBEAT, NODE, until, type NodeName, type Setting } from './_detect-nodes.ts';

const here = dirname(fileURLToPath(import.meta.url));
const LAB = join(here, '../test/lab');
export const ANSWER_PORT = 7777;
export const PROBE_TIMEOUT_MS = 800;
const ADDR = { lb1: '192.168.136.5', lb2: '192.168.136.6', cl: '192.168.136.200' } as const;

export interface Cluster {
  readonly title: string;
  /** The names the directors answer with (what the UDP probe reports in `by`). */
  readonly primaryName: string;
  readonly backupName: string;
  readonly takeoverDeadlineMs: number;
  readonly failbackDeadlineMs: number;
  start(): Promise<void>;
  directors(): { name: string; ns: string }[];
  /** The client's probes, one request every intervalMs: UDP to the directors' answerer, and TCP. */
  probes(intervalMs: number): { udp: Spawned; tcp: Spawned; tcpPath: string };
  /** The primary's host dies: its link is cut, its daemons SIGKILLed, its addresses gone. */
  killPrimary(): Promise<void>;
  /** The primary's host comes back: link up, daemons started. */
  restorePrimary(): Promise<void>;
  notes(): string[];
  close(): Promise<void>;
  /**
   * Where the daemon can say when it declared the primary dead: resolves with that wall time
   * (tandem's control socket `wait`), armed before the kill.
   */
  armDetect?(timeoutMs: number): Promise<number>;
}

const ms = (v: number) => (v % 1000 === 0 ? String(v / 1000) : `${v}ms`);

// ---------------------------------------------------------------------------------------------
// tandem

export class TandemCluster implements Cluster {
  readonly title: string;
  readonly primaryName = 'loadbalancer';
  readonly backupName = 'backup';
  readonly takeoverDeadlineMs: number;
  readonly failbackDeadlineMs = 90_000;
  readonly lab: SeedLab;

  constructor(s: Setting, ipfail = false) {
    this.title = `tandem ${ms(s.keepaliveMs)}/${ms(s.deadtimeMs)}${ipfail ? ' +ipfail' : ''}`;
    this.takeoverDeadlineMs = s.deadtimeMs + 15_000;
    this.lab = new SeedLab({
      keepalive: ms(s.keepaliveMs),
      deadtime: ms(s.deadtimeMs),
      warntime: ms(Math.max(s.keepaliveMs * 2, Math.round(s.deadtimeMs / 2))),
      initdead: ms(Math.max(2000, s.deadtimeMs * 2)),
    }, { haresources: `loadbalancer IPaddr::${VIP}/24/eth0\n`, hotBalancer: true, answerPort: ANSWER_PORT, ipfail, startTimeoutMs: 90_000 });
  }

  async start(): Promise<void> {
    await this.lab.build();
    await until('tandem: the VIP on loadbalancer', async () => ((await this.lab.vipHolders()).join() === 'loadbalancer' ? true : undefined), 60_000, 100);
  }

  directors() {
    return [{ name: 'loadbalancer', ns: this.lab.topo.ns('lb1') }, { name: 'backup', ns: this.lab.topo.ns('lb2') }];
  }

  probes(intervalMs: number) {
    return {
      udp: this.lab.probe({ udp: true, port: ANSWER_PORT, intervalMs, seconds: 7200, timeoutMs: PROBE_TIMEOUT_MS, wall: true }),
      // TCP goes the whole way: VIP:80 through the hot balancer to the real servers.
      tcp: this.lab.probe({ port: 80, intervalMs, seconds: 7200, timeoutMs: PROBE_TIMEOUT_MS, wall: true }),
      tcpPath: 'HTTP to VIP:80 through the balancer to rs1-3',
    };
  }

  killPrimary() { return this.lab.killDirector('lb1'); }

  async armDetect(timeoutMs: number): Promise<number> {
    const r = await controlRequest(this.lab.hbSocket('lb2'), { cmd: 'wait', event: 'node-dead', node: 'loadbalancer', timeoutMs }, timeoutMs + 5000);
    if (!r.ok) throw new Error(String(r.error));
    return r.wallMs as number;
  }
  restorePrimary() { return this.lab.restoreDirector('lb1'); }
  notes() { return [process.env.TANDEM_LAB_KEEP ? `logs: ${this.lab.dir}` : 'logs: set TANDEM_LAB_KEEP=1 to keep them']; }
  close() { return this.lab.close(); }
}

// ---------------------------------------------------------------------------------------------
// the peers' common topology

abstract class PeerCluster implements Cluster {
  abstract readonly title: string;
  abstract readonly primaryName: string;
  abstract readonly backupName: string;
  abstract readonly takeoverDeadlineMs: number;
  abstract readonly failbackDeadlineMs: number;
  readonly topo: Topology;
  readonly root: string;

  constructor(tag: string, root: string) {
    this.topo = new Topology(tag);
    this.root = root;
    mkdirSync(root, { recursive: true });
  }

  abstract startDaemons(host: 'lb1' | 'lb2'): Promise<void>;
  abstract killDaemons(host: 'lb1' | 'lb2'): Promise<void>;
  abstract answerName(host: 'lb1' | 'lb2'): string;

  async start(): Promise<void> {
    await this.topo.build([
      { name: 'cl', addresses: [`${ADDR.cl}/24`] },
      { name: 'lb1', addresses: [`${ADDR.lb1}/24`] },
      { name: 'lb2', addresses: [`${ADDR.lb2}/24`] },
    ]);
    for (const h of ['lb1', 'lb2'] as const) {
      const a = this.topo.spawn(h, NODE, [join(LAB, 'realserver.ts'), this.answerName(h), String(ANSWER_PORT), '0.0.0.0'], { label: `${h} answers` });
      a.proc.stdout?.resume();
      a.proc.stderr?.resume();
    }
    await this.startDaemons('lb1');
    await this.startDaemons('lb2');
    await until(`${this.title}: the VIP on lb1 only`, async () => ((await this.holders()).join() === this.primaryName ? true : undefined), 90_000, 200);
  }

  async holders(): Promise<string[]> {
    const out: string[] = [];
    for (const d of this.directors()) {
      const r = await execa('ip', ['-n', d.ns, '-o', '-4', 'addr', 'show', 'dev', 'eth0'], { reject: false });
      if (String(r.stdout).includes(` ${VIP}/`)) out.push(d.name);
    }
    return out;
  }

  directors() {
    return (['lb1', 'lb2'] as const).map((h) => ({ name: this.answerName(h), ns: this.topo.ns(h) }));
  }

  probes(intervalMs: number) {
    const probe = (udp: boolean) => {
      const args = [join(LAB, 'probe.ts'), '--vip', VIP, '--port', String(ANSWER_PORT), '--interval', String(intervalMs), '--seconds', '7200', '--timeout', String(PROBE_TIMEOUT_MS), '--wall'];
      if (udp) args.push('--udp');
      return this.topo.spawn('cl', NODE, args, { label: `client probe ${udp ? 'udp' : 'tcp'}` });
    };
    return { udp: probe(true), tcp: probe(false), tcpPath: `HTTP to VIP:${ANSWER_PORT}, answered by the director` };
  }

  async killPrimary(): Promise<void> {
    await this.topo.setLink('lb1', false);
    await this.killDaemons('lb1');
    // A dead machine holds no addresses: drop the VIP the SIGKILLed daemon left, as a reboot would.
    await execa('ip', ['-n', this.topo.ns('lb1'), 'addr', 'del', `${VIP}/24`, 'dev', 'eth0'], { reject: false });
  }

  async restorePrimary(): Promise<void> {
    await this.topo.setLink('lb1', true);
    await this.startDaemons('lb1');
  }

  notes(): string[] { return []; }

  abstract closeDaemons(): Promise<void>;

  async close(): Promise<void> {
    try {
      await this.closeDaemons();
    } finally {
      await this.topo.close();
    }
  }
}

// ---------------------------------------------------------------------------------------------
// heartbeat 3.0.6

/**
 * A real heartbeat node (bench/_detect-nodes.ts's RealNode: own mount + UTS namespace, /run tmpfs,
 * private /etc/ha.d and /var/lib/heartbeat) with the VIP as its only resource. The VIP's stop can
 * hardly fail, but should any stop fail ResourceManager runs `pkill -9 heartbeat` machine-wide and
 * `/sbin/reboot -nf`, and cl_reboot calls reboot(2) (reference/heartbeat.md §8). So:
 *  - heartbeat runs without CAP_SYS_BOOT in its bounding set (setpriv), so reboot(2) fails;
 *  - inside its private mount namespace pkill/pgrep and reboot (systemctl) are a stub that only
 *    logs, so other heartbeats on the machine and the machine itself are safe;
 *  - it is only ever stopped with SIGKILL (master control process first), never asked to release.
 */
export class RealHbDirector extends RealNode {
  readonly blockedLog: string;

  constructor(topo: Topology, host: string, name: NodeName, root: string, s: Setting) {
    super(topo, host, name, root, s);
    const had = join(this.dir, 'ha.d');
    writeFileSync(join(had, 'ha.cf'), [
      `logfile ${this.log}`, `keepalive ${ms(s.keepaliveMs)}`, `deadtime ${ms(s.deadtimeMs)}`,
      `warntime ${ms(Math.max(s.keepaliveMs * 2, Math.round(s.deadtimeMs / 2)))}`, 'initdead 10', 'udpport 694',
      'mcast eth0 225.0.0.1 694 1 0', 'auto_failback on', 'node node1', 'node node2', '',
    ].join('\n'));
    writeFileSync(join(had, 'haresources'), `node1 IPaddr::${VIP}/24/eth0\n`);
    this.blockedLog = join(this.dir, 'blocked.log');
    writeFileSync(join(this.dir, 'stub'), `#!/bin/sh\necho "$(date +%s.%N) blocked: $0 $*" >> ${this.blockedLog}\nexit 0\n`);
    chmodSync(join(this.dir, 'stub'), 0o755);
  }

  protected override holderMounts(): string[] {
    const stub = join(this.dir, 'stub');
    // pkill is pgrep, reboot is systemctl (symlinks): the bind mounts land on those.
    return [`mount --bind ${stub} /usr/bin/pkill`, `mount --bind ${stub} /usr/sbin/reboot`];
  }

  override async setup(): Promise<void> {
    await super.setup();
    // Prove the stubs are in place before the daemon can need them.
    for (const cmd of ['pkill', '/usr/bin/pkill', '/sbin/reboot']) await this.enter(cmd, ['--stub-selftest'], 5000);
    const seen = existsSync(this.blockedLog) ? readFileSync(this.blockedLog, 'utf8').split('\n').filter((l) => l.includes('--stub-selftest')).length : 0;
    if (seen < 3) throw new Error(`${this.name}: the pkill/reboot stubs are not in place (${seen}/3 answered)`);
  }

  override async start(): Promise<void> {
    await this.enter('rm', ['-f', '/run/heartbeat.pid']);
    const r = await this.enter('setpriv', ['--bounding-set', '-sys_boot', REAL_HEARTBEAT]);
    if (r.exitCode !== 0) throw new Error(`heartbeat 3.0.6 on ${this.name}: exit ${r.exitCode}: ${r.stderr}`);
  }

  override async stop(): Promise<void> {
    const r = await this.enter('cat', ['/run/heartbeat.pid'], 5000);
    const master = Number(String(r.stdout).trim());
    // The master first: a master that sees its children die would go to emergency shutdown.
    if (master > 0 && processAlive(master)) {
      try { process.kill(master, 'SIGKILL'); } catch { /* gone */ }
    }
    await this.killAll('SIGKILL');
  }

  blocked(): number {
    try {
      return readFileSync(this.blockedLog, 'utf8').split('\n').filter((l) => / blocked: /.test(l) && !l.includes('--stub-selftest')).length;
    } catch {
      return 0;
    }
  }
}

export class HeartbeatCluster extends PeerCluster {
  readonly title: string;
  readonly primaryName = 'node1';
  readonly backupName = 'node2';
  readonly takeoverDeadlineMs: number;
  readonly failbackDeadlineMs = 90_000;
  readonly nodes: Record<'lb1' | 'lb2', RealHbDirector>;

  constructor(s: Setting, root: string) {
    super('hb', root);
    this.title = `heartbeat 3.0.6 ${ms(s.keepaliveMs)}/${ms(s.deadtimeMs)}`;
    this.takeoverDeadlineMs = s.deadtimeMs + 15_000;
    this.nodes = {
      lb1: new RealHbDirector(this.topo, 'lb1', 'node1', root, s),
      lb2: new RealHbDirector(this.topo, 'lb2', 'node2', root, s),
    };
  }

  answerName(h: 'lb1' | 'lb2') { return h === 'lb1' ? 'node1' : 'node2'; }

  async startDaemons(h: 'lb1' | 'lb2'): Promise<void> {
    if (this.nodes[h].holderPid < 0) await this.nodes[h].setup();
    await this.nodes[h].start();
  }

  async killDaemons(h: 'lb1' | 'lb2'): Promise<void> {
    await this.nodes[h].stop();
  }

  override notes(): string[] {
    const b = this.nodes.lb1.blocked() + this.nodes.lb2.blocked();
    return [`logs: ${this.root}`, ...(b ? [`WARNING: heartbeat 3.0.6 tried pkill/reboot ${b} times (blocked; see */blocked.log)`] : [])];
  }

  async closeDaemons(): Promise<void> {
    for (const n of Object.values(this.nodes)) await n.close().catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------
// keepalived 2.2.7

export class KeepalivedCluster extends PeerCluster {
  readonly title: string;
  readonly primaryName = 'lb1';
  readonly backupName = 'lb2';
  readonly takeoverDeadlineMs: number;
  readonly failbackDeadlineMs = 30_000;
  readonly #procs = new Map<string, Spawned>();

  constructor(advertInt: number, root: string) {
    super('ka', root);
    this.title = `keepalived 2.2.7 advert_int ${advertInt}`;
    this.takeoverDeadlineMs = advertInt * 4000 + 15_000;
    for (const [h, prio] of [['lb1', 150], ['lb2', 100]] as const) {
      writeFileSync(join(root, `${h}.conf`), [
        'global_defs {', `  router_id ${h}`, '  vrrp_version 3', '}',
        'vrrp_instance VI_1 {', '  state BACKUP', '  interface eth0', '  virtual_router_id 51', `  priority ${prio}`, `  advert_int ${advertInt}`,
        '  virtual_ipaddress {', `    ${VIP}/24 dev eth0`, '  }', '}', '',
      ].join('\n'));
    }
  }

  answerName(h: 'lb1' | 'lb2') { return h; }

  #file(h: string, what: string) { return join(this.root, `${h}.${what}`); }

  async startDaemons(h: 'lb1' | 'lb2'): Promise<void> {
    for (const f of ['pid', 'vrrp.pid', 'checkers.pid']) rmSync(this.#file(h, f), { force: true });
    const p = this.topo.spawn(h, 'keepalived', ['-f', this.#file(h, 'conf'), '-p', this.#file(h, 'pid'), '-r', this.#file(h, 'vrrp.pid'),
      '-c', this.#file(h, 'checkers.pid'), '--vrrp', '-n', '-l', '-D'], { label: `${h} keepalived` });
    p.proc.stdout?.resume();
    p.proc.stderr?.resume();
    this.#procs.set(h, p);
    await until(`${h} keepalived's VRRP child`, async () => {
      if (!processAlive(p.pid)) throw new Error(`keepalived on ${h} exited`);
      try {
        return Number(readFileSync(this.#file(h, 'vrrp.pid'), 'utf8')) > 0 ? true : undefined;
      } catch {
        return undefined;
      }
    }, 15_000, 50);
  }

  async killDaemons(h: 'lb1' | 'lb2'): Promise<void> {
    // The VRRP child first, then the parent (which would otherwise respawn it).
    let child = 0;
    try { child = Number(readFileSync(this.#file(h, 'vrrp.pid'), 'utf8')); } catch { /* none */ }
    const parent = this.#procs.get(h);
    if (child > 0 && processAlive(child)) {
      try { process.kill(child, 'SIGKILL'); } catch { /* gone */ }
    }
    if (parent) await this.topo.kill(parent, 'SIGKILL');
    this.#procs.delete(h);
  }

  override notes() { return [`configs: ${this.root}`]; }

  async closeDaemons(): Promise<void> {
    for (const h of ['lb1', 'lb2'] as const) await this.killDaemons(h).catch(() => undefined);
  }
}
