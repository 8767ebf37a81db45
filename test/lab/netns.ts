/**
 * Network-namespace topology for tests, benchmarks and the lab: hosts are namespaces joined by
 * veth pairs to one bridge that lives in its own 'switch' namespace. Nothing is ever added to the
 * machine's own namespace. Every name starts with `tdl<pid>` so two runs cannot collide and a
 * later run can remove what a killed run left behind (only when that pid is dead).
 */
import { execa, type ResultPromise } from 'execa';
import { readdirSync } from 'node:fs';
import { processAlive } from '@tandem/core';

export interface HostSpec {
  /** Short role name: client, lb1, rs1 ... (≤ 5 chars keeps interface names under 15). */
  name: string;
  /** Addresses with prefix on the host's eth0, e.g. ['192.168.136.5/24']. */
  addresses: string[];
}

const IP = 'ip';

async function ip(args: string[]): Promise<void> {
  const r = await execa(IP, args, { reject: false });
  if (r.exitCode !== 0) throw new Error(`ip ${args.join(' ')}: exit ${r.exitCode}: ${r.stderr}`);
}

/** Removes namespaces of earlier runs whose owning process is dead. */
export async function sweepStale(): Promise<void> {
  let names: string[] = [];
  try {
    names = readdirSync('/run/netns');
  } catch {
    return;
  }
  for (const n of names) {
    const m = /^tdl(\d+)-/.exec(n);
    if (m && !processAlive(Number(m[1]))) await execa(IP, ['netns', 'del', n], { reject: false });
  }
}

let instances = 0;

export interface Spawned {
  ns: string;
  proc: ResultPromise;
  pid: number;
  label: string;
}

export class Topology {
  readonly prefix: string;
  readonly switchNs: string;
  readonly hosts = new Map<string, HostSpec>();
  readonly #children: Spawned[] = [];
  #namespaces: string[] = [];
  #closed = false;

  constructor(tag = '') {
    // The instance counter keeps two topologies of one process (same tag) apart.
    this.prefix = `tdl${process.pid}${tag}${++instances}`;
    this.switchNs = `${this.prefix}-sw`;
  }

  ns(host: string): string {
    return `${this.prefix}-${host}`;
  }

  /** The veth end in the switch namespace for a host (also what a link cut takes down). */
  switchPort(host: string): string {
    return `p${host}`.slice(0, 15);
  }

  async build(hosts: HostSpec[]): Promise<void> {
    await sweepStale();
    await this.#addNs(this.switchNs);
    await this.exec(this.switchNs, IP, ['link', 'add', 'br0', 'type', 'bridge']);
    await this.exec(this.switchNs, IP, ['link', 'set', 'br0', 'up']);
    await this.exec(this.switchNs, IP, ['link', 'set', 'lo', 'up']);
    for (const h of hosts) await this.addHost(h);
  }

  async addHost(h: HostSpec): Promise<void> {
    const ns = this.ns(h.name);
    await this.#addNs(ns);
    const port = this.switchPort(h.name);
    // Create the pair inside the switch namespace, then move one end: never in the root namespace.
    await this.exec(this.switchNs, IP, ['link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    await this.exec(this.switchNs, IP, ['link', 'set', port, 'master', 'br0', 'up']);
    await this.exec(ns, IP, ['link', 'set', 'lo', 'up']);
    for (const a of h.addresses) await this.exec(ns, IP, ['addr', 'add', a, 'dev', 'eth0']);
    await this.exec(ns, IP, ['link', 'set', 'eth0', 'up']);
    this.hosts.set(h.name, h);
  }

  async #addNs(name: string): Promise<void> {
    await ip(['netns', 'add', name]);
    this.#namespaces.push(name);
  }

  /** Runs a command inside a namespace and waits; throws with stderr on failure. */
  async exec(ns: string, cmd: string, args: string[], opts: { reject?: boolean; timeoutMs?: number; env?: Record<string, string> } = {}) {
    const r = await execa(IP, ['netns', 'exec', ns, cmd, ...args], { reject: false, timeout: opts.timeoutMs ?? 20_000, env: opts.env });
    if (r.exitCode !== 0 && opts.reject !== false) throw new Error(`[${ns}] ${cmd} ${args.join(' ')}: exit ${r.exitCode}: ${r.stderr}`);
    return r;
  }

  /** Starts a long-running process inside a namespace; it is killed (by pid) on close(). */
  spawn(host: string, cmd: string, args: string[], opts: { env?: Record<string, string>; label?: string; cwd?: string } = {}): Spawned {
    const ns = this.ns(host);
    const proc = execa(IP, ['netns', 'exec', ns, cmd, ...args], {
      reject: false,
      env: opts.env,
      cwd: opts.cwd,
      stdin: 'ignore',
      buffer: false,
      stdout: 'pipe',
      stderr: 'pipe',
    });
    const s: Spawned = { ns, proc, pid: proc.pid ?? -1, label: opts.label ?? `${host}:${cmd}` };
    this.#children.push(s);
    return s;
  }

  /** Takes a host's link down at the switch (as if its cable were pulled) or back up. */
  async setLink(host: string, up: boolean): Promise<void> {
    await this.exec(this.switchNs, IP, ['link', 'set', this.switchPort(host), up ? 'up' : 'down']);
  }

  async kill(s: Spawned, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (s.pid > 0 && processAlive(s.pid)) {
      try { process.kill(s.pid, signal); } catch { /* gone */ }
    }
    await Promise.race([s.proc.catch(() => undefined), new Promise((r) => setTimeout(r, 3000))]);
    if (s.pid > 0 && processAlive(s.pid)) {
      try { process.kill(s.pid, 'SIGKILL'); } catch { /* gone */ }
    }
  }

  /** Kills every spawned process by pid, then deletes every namespace. Safe to call twice. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all(this.#children.map((c) => this.kill(c)));
    // Processes started inside a namespace by our children (daemons they forked) die with the
    // namespace's last reference only if nothing holds it; kill whatever still lives in it.
    for (const ns of this.#namespaces) {
      const pids = await execa(IP, ['netns', 'pids', ns], { reject: false });
      for (const p of String(pids.stdout).split(/\s+/).filter(Boolean)) {
        try { process.kill(Number(p), 'SIGKILL'); } catch { /* gone */ }
      }
    }
    for (const ns of [...this.#namespaces].reverse()) await execa(IP, ['netns', 'del', ns], { reject: false });
    this.#namespaces = [];
  }
}

/** Deletes the topology on SIGINT/SIGTERM/exit as well, for interactive runs. */
export function closeOnSignals(t: Topology): void {
  // process.on, not once: after a once-handler has run, a second signal (or execa's own handler
  // re-raising it) would kill the process before the namespaces are deleted.
  let closing = false;
  const handler = (sig: NodeJS.Signals) => {
    if (closing) return;
    closing = true;
    void t.close().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
}
