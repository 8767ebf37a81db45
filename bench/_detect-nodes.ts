/**
 * bench/detect helpers: a pair of tandem heartbeat daemons, a pair of real heartbeat 3.0.6 daemons,
 * and the load, each in namespaces the benchmark created (test/lab/netns.ts). Everything started
 * here is stopped by pid.
 */
import { mkdirSync, writeFileSync, chmodSync, readFileSync, existsSync, cpSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';
import { controlRequest, processAlive } from '@tandem/core';
import type { Topology, Spawned } from '../test/lab/netns.ts';
import { V8_FLAGS } from '../packages/heartbeat/src/cli/heartbeat.ts';
import { waitFor } from '../test/lab/ports.ts';

const here = dirname(fileURLToPath(import.meta.url));
export const NODE = join(here, '../node_modules/.bin/node');
const HEARTBEAT_TS = join(here, '../packages/heartbeat/src/cli/heartbeat.ts');
export const REAL_HEARTBEAT = '/usr/libexec/heartbeat/heartbeat';

export interface Setting {
  keepaliveMs: number;
  deadtimeMs: number;
}

export const label = (s: Setting) => `ka${s.keepaliveMs}_dt${s.deadtimeMs}`;
/** ha.cf time syntax that both tandem and heartbeat 3.0.6 accept. */
const hbTime = (ms: number) => (ms % 1000 === 0 ? String(ms / 1000) : `${ms}ms`);

export const ADDR = { node1: '10.78.0.1', node2: '10.78.0.2' } as const;
export type NodeName = keyof typeof ADDR;

function haCf(s: Setting, log: string, extra: string[] = []): string {
  return [
    `keepalive ${hbTime(s.keepaliveMs)}`, `deadtime ${hbTime(s.deadtimeMs)}`,
    // initdead must be ≥ deadtime; 10 s keeps both daemons' start-up quiet.
    'initdead 10', 'udpport 694', `ucast eth0 ${ADDR.node1}`, `ucast eth0 ${ADDR.node2}`,
    'node node1 node2', `logfile ${log}`, 'auto_failback on', ...extra, '',
  ].join('\n');
}

function writeAuthkeys(dir: string): void {
  writeFileSync(join(dir, 'authkeys'), 'auth 1\n1 sha1 bench-detect-secret\n');
  chmodSync(join(dir, 'authkeys'), 0o600);
}

const until = <T>(what: string, probe: () => Promise<T | undefined>, ms: number, stepMs = 50): Promise<T> => waitFor(what, probe, ms, stepMs, { retryErrors: false });

// ---------------------------------------------------------------------------------------------
// tandem

export class TandemNode {
  readonly name: NodeName;
  readonly dir: string;
  readonly socket: string;
  readonly log: string;
  proc: Spawned | undefined;
  readonly #topo: Topology;
  readonly #host: string;

  constructor(topo: Topology, host: string, name: NodeName, root: string, s: Setting, extra: string[] = []) {
    this.#topo = topo;
    this.#host = host;
    this.name = name;
    this.dir = join(root, `tandem-${name}-${label(s)}`);
    mkdirSync(join(this.dir, 'ha.d'), { recursive: true });
    this.socket = join(this.dir, 'hb.sock');
    this.log = join(this.dir, 'ha-log');
    writeFileSync(join(this.dir, 'ha.d', 'ha.cf'), haCf(s, this.log, extra));
    writeAuthkeys(join(this.dir, 'ha.d'));
    writeFileSync(join(this.dir, 'ha.d', 'nodeinfo'), `${name}\n`);
  }

  /**
   * Runs the daemon in the foreground as `heartbeat -f` would run it, with the same V8 flags as a
   * detached start; `-M`: no resource manager (detection only, like the real heartbeat given no groups).
   */
  start(): void {
    const args = [...V8_FLAGS, HEARTBEAT_TS, '-f', '-M', '--config-dir', join(this.dir, 'ha.d'),
      '--socket', this.socket, '--pid-file', join(this.dir, 'hb.pid'), '--state-dir', join(this.dir, 'state')];
    this.proc = this.#topo.spawn(this.#host, NODE, args, { label: `tandem ${this.name}` });
    this.proc.proc.stdout?.resume();
    this.proc.proc.stderr?.resume();
  }

  async status(): Promise<Record<string, unknown> | undefined> {
    try {
      const r = await controlRequest(this.socket, { cmd: 'status' }, 2000);
      return r.ok ? (r.status as Record<string, unknown>) : undefined;
    } catch {
      return undefined;
    }
  }

  async peerState(peer: NodeName): Promise<string | undefined> {
    const s = await this.status();
    return (s?.nodes as { name: string; state: string }[] | undefined)?.find((n) => n.name === peer)?.state;
  }

  async waitPeer(peer: NodeName, state: string, timeoutMs = 30_000): Promise<void> {
    await until(`${this.name} to see ${peer} ${state}`, async () => ((await this.peerState(peer)) === state ? true : undefined), timeoutMs);
  }

  /** Arms a wait for the peer's death; resolves with the wall time the daemon declared it. */
  waitDead(peer: NodeName, timeoutMs: number): Promise<number> {
    return controlRequest(this.socket, { cmd: 'wait', event: 'node-dead', node: peer, timeoutMs }, timeoutMs + 5000).then((r) => {
      if (!r.ok) throw new Error(`${this.name}: ${r.error}`);
      return r.wallMs as number;
    });
  }

  async counter(name: string, labels: string): Promise<number> {
    const r = await controlRequest(this.socket, { cmd: 'metrics' }, 2000);
    if (!r.ok) return NaN;
    const m = new RegExp(`^${name}\\{${labels}\\} (\\S+)$`, 'm').exec(String(r.text));
    return m ? Number(m[1]) : 0;
  }

  async kill(signal: NodeJS.Signals): Promise<void> {
    if (!this.proc) return;
    const p = this.proc;
    this.proc = undefined;
    if (signal === 'SIGKILL') {
      try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ }
      await p.proc.catch(() => undefined);
    } else await this.#topo.kill(p, signal);
  }
}

// ---------------------------------------------------------------------------------------------
// heartbeat 3.0.6

export function realHeartbeatInstalled(): boolean {
  return existsSync(REAL_HEARTBEAT) && existsSync('/usr/bin/cl_status');
}

/**
 * One real heartbeat node: its own mount and UTS namespace inside the host's network namespace (held
 * open by a `sleep` holder), with hostname = node name, a private tmpfs on /run (pid file, API
 * sockets) and per-node copies of /etc/ha.d and /var/lib/heartbeat bind-mounted over the real ones.
 * No haresources groups: heartbeat then never runs a stop script (a failing stop makes it run
 * `pkill -9 heartbeat` machine-wide and reboot, reference §8).
 */
export class RealNode {
  readonly name: NodeName;
  readonly dir: string;
  readonly log: string;
  holder: ResultPromise | undefined;
  holderPid = -1;
  readonly #topo: Topology;
  readonly #ns: string;

  constructor(topo: Topology, host: string, name: NodeName, root: string, s: Setting) {
    this.#topo = topo;
    this.#ns = topo.ns(host);
    this.name = name;
    this.dir = join(root, `real-${name}-${label(s)}`);
    this.log = join(this.dir, 'ha-log');
    const had = join(this.dir, 'ha.d');
    mkdirSync(this.dir, { recursive: true });
    cpSync('/etc/ha.d', had, { recursive: true });
    cpSync('/var/lib/heartbeat', join(this.dir, 'lib'), { recursive: true });
    writeFileSync(join(had, 'ha.cf'), haCf(s, this.log));
    writeFileSync(join(had, 'haresources'), '# no resources: detection only\n');
    writeAuthkeys(had);
  }

  /** More shell lines for the holder's private mount namespace, before it settles (subclasses). */
  protected holderMounts(): string[] {
    return [];
  }

  async setup(): Promise<void> {
    const script = [
      'set -e', `hostname ${this.name}`, 'mount --make-rprivate /', 'mount -t tmpfs tmpfs /run', 'mkdir -p /run/heartbeat /run/resource-agents',
      `mount --bind ${join(this.dir, 'ha.d')} /etc/ha.d`, `mount --bind ${join(this.dir, 'lib')} /var/lib/heartbeat`,
      ...this.holderMounts(),
      'echo ready', 'exec sleep 100000',
    ].join('\n');
    this.holder = execa('ip', ['netns', 'exec', this.#ns, 'unshare', '--mount', '--uts', 'sh', '-c', script], { reject: false, stdin: 'ignore', buffer: false });
    const pid = this.holder.pid ?? -1;
    await until(`${this.name} holder`, async () => {
      try {
        const comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
        return comm === 'sleep' ? true : undefined;
      } catch {
        throw new Error(`holder for ${this.name} exited`);
      }
    }, 10_000);
    this.holderPid = pid;
  }

  enter(cmd: string, args: string[], timeoutMs = 20_000) {
    return execa('nsenter', ['-t', String(this.holderPid), '-m', '-u', '-n', cmd, ...args], { reject: false, timeout: timeoutMs });
  }

  async start(): Promise<void> {
    // A stale pid file from a SIGKILLed run makes heartbeat believe it is still running (reference §8.5).
    await this.enter('rm', ['-f', '/run/heartbeat.pid']);
    const r = await this.enter(REAL_HEARTBEAT, []);
    if (r.exitCode !== 0) throw new Error(`heartbeat 3.0.6 on ${this.name}: exit ${r.exitCode}: ${r.stderr}`);
  }

  async nodestatus(peer: NodeName): Promise<string> {
    const r = await this.enter('/usr/bin/cl_status', ['nodestatus', peer], 5000);
    return String(r.stdout).trim();
  }

  async waitPeer(peer: NodeName, state: string, timeoutMs = 60_000): Promise<void> {
    await until(`${this.name} (3.0.6) to see ${peer} ${state}`, async () => ((await this.nodestatus(peer)) === state ? true : undefined), timeoutMs, 200);
  }

  /** Every heartbeat process of this node (everything in its namespace but the holder). */
  async pids(): Promise<number[]> {
    const r = await execa('ip', ['netns', 'pids', this.#ns], { reject: false });
    return String(r.stdout).split(/\s+/).filter(Boolean).map(Number).filter((p) => p !== this.holderPid && p !== this.holder?.pid)
      .filter((p) => {
        try { return /heartbeat/.test(readFileSync(`/proc/${p}/cmdline`, 'utf8')); } catch { return false; }
      });
  }

  async killAll(signal: NodeJS.Signals): Promise<void> {
    for (const p of await this.pids()) {
      try { process.kill(p, signal); } catch { /* gone */ }
    }
  }

  /** Graceful stop by pid (SIGTERM to the master), then SIGKILL whatever is left. */
  async stop(): Promise<void> {
    const r = await this.enter('cat', ['/run/heartbeat.pid'], 5000);
    const master = Number(String(r.stdout).trim());
    if (master > 0 && processAlive(master)) {
      try { process.kill(master, 'SIGTERM'); } catch { /* gone */ }
      const end = Date.now() + 15_000;
      while (Date.now() < end && (await this.pids()).length > 0) await new Promise((res) => setTimeout(res, 200));
    }
    await this.killAll('SIGKILL');
  }

  async close(): Promise<void> {
    await this.stop().catch(() => undefined);
    if (this.holderPid > 0) {
      try { process.kill(this.holderPid, 'SIGKILL'); } catch { /* gone */ }
    }
    await this.holder?.catch(() => undefined);
  }

  countInLog(re: RegExp): number {
    try {
      return readFileSync(this.log, 'utf8').split('\n').filter((l) => re.test(l)).length;
    } catch {
      return 0;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// load

/**
 * The load of the soak: a CPU hog (a busy loop) and a GC-heavy Node process (allocates and drops
 * object graphs as fast as it can), so both cores are busy and the kernel has to choose.
 */
export class Load {
  readonly #procs: ResultPromise[] = [];

  start(): void {
    const hog = 'for(;;){}';
    const gc = 'let keep=[];for(;;){const a=[];for(let i=0;i<20000;i++)a.push({i,s:"x"+i,o:{i}});keep.push(a);if(keep.length>50)keep=[];}';
    for (const code of [hog, gc]) {
      const p = execa(NODE, ['--max-old-space-size=512', '-e', code], { reject: false, stdin: 'ignore', stdout: 'ignore', stderr: 'ignore' });
      p.catch(() => undefined);
      this.#procs.push(p);
    }
  }

  async stop(): Promise<void> {
    for (const p of this.#procs.splice(0)) {
      if (p.pid) {
        try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ }
      }
      await p.catch(() => undefined);
    }
  }
}

export { until };
