/**
 * Seed 001's cluster, built for real inside network namespaces: a client (which also holds the
 * ping-group addresses .1 and .2, as the seed's gateway does), two directors `loadbalancer` (.5) and
 * `backup` (.6) joined by mcast on the bridge and by a serial link (a PTY pair), and three real
 * servers (.11, .12, .101) serving the test page. Each director runs, as the seed's machines do,
 * tandem's heartbeat with the seed's ha.cf, haresources, authkeys and ldirectord.cf (adapted: see
 * seed001/), and tandem's userspace balancer (tandem-ipvsd) in place of kernel IPVS; heartbeat's
 * haresources line `loadbalancer lvs IPaddr::192.168.136.10/24/eth0 ipvsadm ldirectord` brings up
 * the VIP, the rules and ldirectord on whichever director is active.
 */
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync, chmodSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';
import { controlRequest, processAlive } from '@tandem/core';
import { Topology, type Spawned } from './netns.ts';
import { waitForControl } from './ports.ts';

const here = dirname(fileURLToPath(import.meta.url));
export const ROOT = resolve(here, '../..');
const NODE = join(ROOT, 'node_modules/.bin/node');
const BIN = {
  heartbeat: join(ROOT, 'packages/heartbeat/bin/heartbeat'),
  clStatus: join(ROOT, 'packages/heartbeat/bin/cl_status'),
  hbStandby: join(ROOT, 'packages/heartbeat/bin/hb_standby'),
  ipvsd: join(ROOT, 'packages/ipvs/bin/tandem-ipvsd.ts'),
  ipvsadm: join(ROOT, 'packages/ipvs/bin/tandem-ipvsadm.ts'),
  ldirectord: join(ROOT, 'packages/ldirectord/bin/ldirectord.ts'),
};

export const VIP = '192.168.136.10';
export const DIRECTORS = [
  { host: 'lb1', node: 'loadbalancer', address: '192.168.136.5' },
  { host: 'lb2', node: 'backup', address: '192.168.136.6' },
] as const;
export const REALS = [
  { host: 'rs1', name: 'rs1', address: '192.168.136.11' },
  { host: 'rs2', name: 'rs2', address: '192.168.136.12' },
  { host: 'rs3', name: 'rs3', address: '192.168.136.101' },
] as const;
export type DirectorHost = (typeof DIRECTORS)[number]['host'];

export interface LabTiming {
  keepalive: string;
  deadtime: string;
  warntime: string;
  initdead: string;
}

export const DEMO_TIMING: LabTiming = { keepalive: '200ms', deadtime: '1', warntime: '500ms', initdead: '2' };

export interface LabEvent {
  at: Date;
  text: string;
}

interface DirectorProcs {
  ipvsd?: Spawned;
  heartbeat?: Spawned;
  fallback?: Spawned;
  ldirectord?: Spawned;
  answer?: Spawned;
}

/** Variations of the lab for benchmarks (bench/failover.ts); the defaults are seed 001 as is. */
export interface LabOptions {
  /** haresources content in place of seed001/haresources, e.g. `loadbalancer IPaddr::192.168.136.10/24/eth0\n`. */
  haresources?: string;
  /**
   * Runs ldirectord on both directors all the time (started with the balancer, not by heartbeat),
   * as kernel IPVS tables stay loaded under keepalived: a takeover then only moves the VIP. Meant
   * together with a haresources that names only the VIP.
   */
  hotBalancer?: boolean;
  /**
   * A port on which each director itself answers (realserver.ts on 0.0.0.0, named after the
   * director's node): a UDP or TCP probe to VIP:port shows which director holds the VIP.
   */
  answerPort?: number;
  /**
   * false: ha.cf without the seed's ping_group and ipfail lines (`ping_group`, `respawn ... ipfail`,
   * `apiauth ipfail`), so that only the directors' own heartbeats decide a takeover.
   */
  ipfail?: boolean;
  /** How long a director's daemons may take to answer on their sockets at start (default 20 s). */
  startTimeoutMs?: number;
}

export class SeedLab {
  readonly topo = new Topology('lab');
  readonly dir = mkdtempSync(join(tmpdir(), 'tandem-lab-'));
  readonly events: LabEvent[] = [];
  readonly timing: LabTiming;
  readonly #directors = new Map<string, DirectorProcs>();
  readonly #reals = new Map<string, Spawned>();
  #serial?: ResultPromise;
  #closed = false;

  readonly options: LabOptions;

  constructor(timing: LabTiming = DEMO_TIMING, options: LabOptions = {}) {
    this.timing = timing;
    this.options = options;
  }

  log(text: string): void {
    this.events.push({ at: new Date(), text });
    if (this.events.length > 200) this.events.shift();
  }

  path(...p: string[]): string {
    return join(this.dir, ...p);
  }

  hbSocket(host: string): string { return this.path(host, 'hb.sock'); }
  ipvsdSocket(host: string): string { return this.path(host, 'ipvsd.sock'); }

  async build(): Promise<void> {
    await this.topo.build([
      { name: 'cl', addresses: ['192.168.136.1/24', '192.168.136.2/24', '192.168.136.200/24'] },
      ...DIRECTORS.map((d) => ({ name: d.host, addresses: [`${d.address}/24`] })),
      ...REALS.map((r) => ({ name: r.host, addresses: [`${r.address}/24`] })),
    ]);
    this.log('namespaces, bridge and veth pairs are up');
    await this.#startSerial();
    for (const d of DIRECTORS) this.#writeDirectorFiles(d.host);
    for (const r of REALS) await this.startReal(r.host);
    for (const d of DIRECTORS) {
      const ns = this.topo.ns(d.host);
      // The balancer listens on the VIP before it is local, so a takeover only moves the address.
      await this.topo.exec(ns, 'sysctl', ['-q', '-w', 'net.ipv4.ip_nonlocal_bind=1']);
      const procs: DirectorProcs = {};
      this.#directors.set(d.host, procs);
      procs.fallback = this.topo.spawn(d.host, NODE, [join(here, 'realserver.ts'), `fallback@${d.node}`, '80', '127.0.0.1'], { label: `${d.host} fallback` });
      await this.startDirector(d.host);
    }
  }

  async #startSerial(): Promise<void> {
    // A null-modem cable between the directors: two PTYs joined by socat in the lab's own process tree.
    this.#serial = execa('socat', ['-d', '-d', `pty,raw,echo=0,link=${this.path('ttyS0-lb1')}`, `pty,raw,echo=0,link=${this.path('ttyS0-lb2')}`], { reject: false, buffer: false, stdin: 'ignore' });
    for (let i = 0; i < 100 && !(existsSync(this.path('ttyS0-lb1')) && existsSync(this.path('ttyS0-lb2'))); i++) await new Promise((r) => setTimeout(r, 50));
    if (!existsSync(this.path('ttyS0-lb2'))) throw new Error('socat did not create the PTY pair');
    this.log('serial link (PTY pair) is up');
  }

  #writeDirectorFiles(host: string): void {
    const haDir = this.path(host, 'ha.d');
    const logDir = this.path(host, 'log');
    const binDir = this.path(host, 'bin');
    for (const p of [haDir, logDir, binDir, this.path(host, 'state')]) mkdirSync(p, { recursive: true });
    const fill = (text: string) =>
      text
        .replaceAll('@LOGDIR@', logDir)
        .replaceAll('@SERIAL@', this.path(`ttyS0-${host}`))
        .replaceAll('@KEEPALIVE@', this.timing.keepalive)
        .replaceAll('@DEADTIME@', this.timing.deadtime)
        .replaceAll('@WARNTIME@', this.timing.warntime)
        .replaceAll('@INITDEAD@', this.timing.initdead);
    for (const f of ['ha.cf', 'haresources', 'authkeys', 'ldirectord.cf']) {
      writeFileSync(join(haDir, f), fill(readFileSync(join(here, 'seed001', f), 'utf8')));
    }
    if (this.options.haresources !== undefined) writeFileSync(join(haDir, 'haresources'), this.options.haresources);
    if (this.options.ipfail === false) {
      const hacf = readFileSync(join(haDir, 'ha.cf'), 'utf8').split('\n').filter((l) => !/^\s*(ping_group|ping|respawn\s.*ipfail|apiauth\s+ipfail)\b/.test(l));
      writeFileSync(join(haDir, 'ha.cf'), hacf.join('\n'));
    }
    chmodSync(join(haDir, 'authkeys'), 0o600);
    // The rules the `ipvsadm` resource restores: seed 001's /etc/sysconfig/ipvsadm for the lab's reals.
    writeFileSync(this.path(host, 'sysconfig-ipvsadm'), [
      `-A -t ${VIP}:80 -s rr`,
      ...REALS.map((r) => `-a -t ${VIP}:80 -r ${r.address}:80 -i`),
      '',
    ].join('\n'));
    // Commands the agents call, pointed at this director's balancer and config: what a package would
    // install as /usr/sbin/ipvsadm and /usr/sbin/ldirectord on a real director.
    const sh = (name: string, body: string) => {
      writeFileSync(join(binDir, name), `#!/bin/sh\n${body}\n`);
      chmodSync(join(binDir, name), 0o755);
    };
    sh('ipvsadm', `TANDEM_IPVSD_SOCKET=${this.ipvsdSocket(host)} exec ${NODE} ${BIN.ipvsadm} "$@"`);
    sh('ldirectord', `TANDEM_IPVSD_SOCKET=${this.ipvsdSocket(host)} exec ${NODE} ${BIN.ldirectord} --backend embedded --pid-file ${this.path(host, 'state', 'ldirectord.pid')} --control-socket ${this.path(host, 'ldirectord.sock')} ${join(haDir, 'ldirectord.cf')} "$@"`);
  }

  #env(host: string): Record<string, string> {
    return {
      PATH: `${this.path(host, 'bin')}:${dirname(NODE)}:/usr/sbin:/usr/bin:/sbin:/bin`,
      TANDEM_IPVSD_SOCKET: this.ipvsdSocket(host),
      TANDEM_HB_SOCKET: this.hbSocket(host),
      IPVSADM: join(this.path(host, 'bin'), 'ipvsadm'),
      IPVSADM_RULES: this.path(host, 'sysconfig-ipvsadm'),
      TANDEM_LDIRECTORD: join(this.path(host, 'bin'), 'ldirectord'),
    };
  }

  /** Starts the balancer and heartbeat on a director (as its machine booting). */
  async startDirector(host: string): Promise<void> {
    const d = DIRECTORS.find((x) => x.host === host)!;
    const procs = this.#directors.get(host)!;
    const env = this.#env(host);
    procs.ipvsd = this.topo.spawn(host, NODE, [BIN.ipvsd, '--socket', this.ipvsdSocket(host), '--state', this.path(host, 'state', 'ipvs.table'), '--logfile', this.path(host, 'log', 'ipvsd.log')], { env, label: `${host} tandem-ipvsd` });
    await this.#waitSocket(this.ipvsdSocket(host), `${host} tandem-ipvsd`, this.options.startTimeoutMs);
    if (this.options.hotBalancer) {
      procs.ldirectord = this.topo.spawn(host, join(this.path(host, 'bin'), 'ldirectord'), ['-d', 'start'], { env, label: `${host} ldirectord (hot)` });
      // -d logs to stderr: drain it so the pipe never fills and blocks the daemon.
      procs.ldirectord.proc.stdout?.resume();
      procs.ldirectord.proc.stderr?.resume();
    }
    if (this.options.answerPort) {
      procs.answer = this.topo.spawn(host, NODE, [join(here, 'realserver.ts'), d.node, String(this.options.answerPort), '0.0.0.0'], { label: `${host} answers as ${d.node}` });
      procs.answer.proc.stdout?.resume();
      procs.answer.proc.stderr?.resume();
    }
    // heartbeat names itself after `uname -n`: a private UTS namespace gives each director its seed name.
    procs.heartbeat = this.topo.spawn(host, 'unshare', ['--uts', 'sh', '-c', `hostname ${d.node} && exec "$@"`, 'sh',
      BIN.heartbeat, '-f', '--config-dir', this.path(host, 'ha.d'), '--socket', this.hbSocket(host),
      '--pid-file', this.path(host, 'state', 'heartbeat.pid'), '--state-dir', this.path(host, 'state')], { env, label: `${host} heartbeat` });
    await this.#waitSocket(this.hbSocket(host), `${host} heartbeat`, this.options.startTimeoutMs);
    this.log(`${d.node}: heartbeat and balancer started`);
  }

  #waitSocket(path: string, what: string, ms = 20_000): Promise<void> {
    return waitForControl(path, `${what} (logs in ${this.dir})`, ms);
  }

  /** The director's host dies: every daemon SIGKILLed and its cable pulled. */
  async killDirector(host: string): Promise<void> {
    const procs = this.#directors.get(host)!;
    // Power off: the daemons stop at once, then the cable goes (cutting the link first would let
    // the serial link carry keepalives for a moment longer than a dead host sends them).
    for (const p of [procs.heartbeat, procs.ipvsd]) if (p && processAlive(p.pid)) try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ }
    await this.topo.setLink(host, false);
    for (const p of [procs.heartbeat, procs.ipvsd]) if (p) await this.topo.kill(p, 'SIGKILL');
    // Whatever the dead director's heartbeat had started (ldirectord) dies with the host.
    const pids = await execa('ip', ['netns', 'pids', this.topo.ns(host)], { reject: false });
    for (const pid of String(pids.stdout).split(/\s+/).filter(Boolean).map(Number)) {
      if (pid !== procs.fallback?.pid && processAlive(pid)) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
    // A dead machine holds no addresses: drop the VIP as a reboot would.
    await this.topo.exec(this.topo.ns(host), 'ip', ['addr', 'flush', 'dev', 'eth0', 'label', 'eth0:*'], { reject: false });
    await this.topo.exec(this.topo.ns(host), 'ip', ['addr', 'del', `${VIP}/24`, 'dev', 'eth0'], { reject: false });
    rmSync(this.hbSocket(host), { force: true });
    rmSync(this.ipvsdSocket(host), { force: true });
    this.log(`${DIRECTORS.find((d) => d.host === host)!.node}: host killed (daemons SIGKILLed, link cut)`);
  }

  async restoreDirector(host: string): Promise<void> {
    await this.topo.setLink(host, true);
    await this.startDirector(host);
  }

  /** Cuts only heartbeat's UDP (mcast) between the directors; the serial link stays. */
  async cutMcast(host: string, cut: boolean): Promise<void> {
    const ns = this.topo.ns(host);
    if (cut) {
      await this.topo.exec(ns, 'nft', ['add', 'table', 'inet', 'tandemlab']);
      await this.topo.exec(ns, 'nft', ['add', 'chain', 'inet', 'tandemlab', 'in', '{ type filter hook input priority 0; }']);
      await this.topo.exec(ns, 'nft', ['add', 'chain', 'inet', 'tandemlab', 'out', '{ type filter hook output priority 0; }']);
      await this.topo.exec(ns, 'nft', ['add', 'rule', 'inet', 'tandemlab', 'in', 'udp', 'dport', '694', 'drop']);
      await this.topo.exec(ns, 'nft', ['add', 'rule', 'inet', 'tandemlab', 'out', 'udp', 'dport', '694', 'drop']);
      this.log(`${host}: mcast heartbeat link cut (nftables drops udp/694)`);
    } else {
      await this.topo.exec(ns, 'nft', ['delete', 'table', 'inet', 'tandemlab'], { reject: false });
      this.log(`${host}: mcast heartbeat link restored`);
    }
  }

  async startReal(host: string): Promise<void> {
    const r = REALS.find((x) => x.host === host)!;
    this.#reals.set(host, this.topo.spawn(host, NODE, [join(here, 'realserver.ts'), r.name, '80'], { label: `${host} web` }));
    this.log(`${r.name}: web server started`);
  }

  async killReal(host: string): Promise<void> {
    const s = this.#reals.get(host);
    if (s) await this.topo.kill(s, 'SIGKILL');
    this.#reals.delete(host);
    this.log(`${host}: web server killed`);
  }

  realRunning(host: string): boolean {
    return this.#reals.has(host);
  }

  directorRunning(host: string): boolean {
    const p = this.#directors.get(host)?.heartbeat;
    return !!p && processAlive(p.pid) && existsSync(this.hbSocket(host));
  }

  /** Runs a command-line tool of a director (cl_status, hb_standby, ipvsadm) inside its namespace. */
  async tool(host: string, tool: 'cl_status' | 'hb_standby' | 'hb_takeover' | 'ipvsadm', args: string[]) {
    const bin = tool === 'ipvsadm' ? join(this.path(host, 'bin'), 'ipvsadm') : join(ROOT, 'packages/heartbeat/bin', tool);
    return this.topo.exec(this.topo.ns(host), bin, args, { reject: false, env: this.#env(host) });
  }

  /** Which directors hold the VIP right now (from `ip addr` in each namespace). */
  async vipHolders(): Promise<string[]> {
    const out: string[] = [];
    for (const d of DIRECTORS) {
      const r = await this.topo.exec(this.topo.ns(d.host), 'ip', ['-o', 'addr', 'show', 'dev', 'eth0'], { reject: false });
      if (String(r.stdout).includes(` ${VIP}/`)) out.push(d.node);
    }
    return out;
  }

  /** Starts the client probe: one HTTP request to the VIP every intervalMs, results as JSON lines. */
  probe(opts: { intervalMs?: number; seconds?: number; udp?: boolean; port?: number; timeoutMs?: number; wall?: boolean } = {}): Spawned {
    const args = [join(here, 'probe.ts'), '--vip', VIP, '--port', String(opts.port ?? 80), '--interval', String(opts.intervalMs ?? 10), '--seconds', String(opts.seconds ?? 3600)];
    if (opts.udp) args.push('--udp');
    if (opts.timeoutMs !== undefined) args.push('--timeout', String(opts.timeoutMs));
    if (opts.wall) args.push('--wall');
    return this.topo.spawn('cl', NODE, args, { label: 'client probe' });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // Stop heartbeats gracefully first so their resources (ldirectord) are stopped by them.
    await this.topo.close();
    if (this.#serial?.pid && processAlive(this.#serial.pid)) process.kill(this.#serial.pid, 'SIGKILL');
    if (!process.env.TANDEM_LAB_KEEP) rmSync(this.dir, { recursive: true, force: true });
  }
}

/** True when this process can make network namespaces (root, iproute2 present, netns allowed). */
export async function canMakeNamespaces(): Promise<boolean> {
  if (process.getuid?.() !== 0) return false;
  const name = `tdl${process.pid}probe`;
  const r = await execa('ip', ['netns', 'add', name], { reject: false });
  if (r.exitCode !== 0) return false;
  await execa('ip', ['netns', 'del', name], { reject: false });
  return true;
}
