import { accessSync, constants } from 'node:fs';
import { type CommandRunner, type RunResult, describeResult, runCommand } from '@tandem/core';
import { canonicalAddress } from '../addr.ts';
import { IpvsError } from '../errors.ts';
import type { Forwarding, IpvsBackend, IpvsOp, IpvsTable, Protocol, RealServer, VirtualService } from '../model.ts';
import { realId, serviceId } from '../model.ts';
import { opToRuleLine } from '../rules.ts';

/**
 * The backend for kernel IPVS through the ipvsadm command (or any command that speaks its
 * language, such as tandem-ipvsadm). It reads the table with `ipvsadm -L -n` and
 * `ipvsadm -L -n --thresholds` and applies a whole batch as one `ipvsadm -R` run. Unlike the real
 * ldirectord, a failure is never ignored: a non-zero exit, or any message on standard error (ipvsadm
 * -R goes on after a refused line and may still exit 0), is an IpvsError with the exit code and output.
 */

export interface IpvsadmBackendOptions {
  /** The ipvsadm command; default /sbin/ipvsadm, else /usr/sbin/ipvsadm (as ldirectord looks for it). */
  path?: string | undefined;
  runner?: CommandRunner | undefined;
  timeoutMs?: number | undefined;
  env?: Record<string, string | undefined> | undefined;
}

const DEFAULT_PATHS = ['/sbin/ipvsadm', '/usr/sbin/ipvsadm'];

export function findIpvsadm(candidates: readonly string[] = DEFAULT_PATHS): string | undefined {
  for (const p of candidates) {
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/**
 * Whether this kernel has IPVS loaded (/proc/net/ip_vs exists). An installed ipvsadm alone says
 * nothing: on a machine without the module it cannot even start ("Can't initialize ipvs").
 */
export function kernelIpvsAvailable(procFile = '/proc/net/ip_vs'): boolean {
  try {
    accessSync(procFile, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

const FWD: Record<string, Forwarding> = { Masq: 'masq', Route: 'gate', Tunnel: 'ipip', Local: 'gate', Bypass: 'gate' };
const PROTO: Record<string, Protocol> = { TCP: 'tcp', UDP: 'udp', SCTP: 'sctp' };

function splitEndpoint(text: string, line: number): { address: string; port: number } {
  const m = /^\[([0-9a-fA-F:.]+)\]:(\d+)$/.exec(text) ?? /^(\d+\.\d+\.\d+\.\d+):(\d+)$/.exec(text);
  const address = m ? canonicalAddress(m[1]!) : undefined;
  if (!m || address === undefined) throw new IpvsError('E_IPVS_LISTING', `ipvsadm -L -n line ${line}: not an address:port: ${text}`);
  return { address, port: Number(m[2]) };
}

/** Parses `ipvsadm -L -n` output (any of its formats' service lines; reals from the default format). */
export function parseListing(text: string): IpvsTable {
  const services: VirtualService[] = [];
  let current: VirtualService | undefined;
  text.split('\n').forEach((raw, i) => {
    const line = i + 1;
    if (raw.trim() === '' || raw.startsWith('IP Virtual Server') || raw.startsWith('Prot ') || /^ {2}-> RemoteAddress:Port/.test(raw)) return;
    const real = /^ {2}-> (\S+)\s+(Masq|Route|Tunnel|Local|Bypass)\s+(-?\d+)\s+(\d+)\s+(\d+)\s*$/.exec(raw);
    if (real) {
      if (!current) throw new IpvsError('E_IPVS_LISTING', `ipvsadm -L -n line ${line}: a real server before any virtual service`);
      const ep = splitEndpoint(real[1]!, line);
      current.reals.push({ ...ep, forwarding: FWD[real[2]!]!, weight: Number(real[3]) });
      return;
    }
    const svc = /^(TCP|UDP|SCTP) +(\S+) (\S+)(.*)$/.exec(raw);
    const fwm = /^FWM +(-?\d+)( IPv6)? (\S+)(.*)$/.exec(raw);
    if (!svc && !fwm) throw new IpvsError('E_IPVS_LISTING', `ipvsadm -L -n line ${line}: not understood: ${raw}`);
    let s: VirtualService;
    let rest: string;
    if (svc) {
      s = { protocol: PROTO[svc[1]!]!, ...splitEndpoint(svc[2]!, line), scheduler: svc[3]!, reals: [] };
      rest = svc[4]!;
    } else {
      s = { protocol: 'fwm', address: '', port: 0, fwmark: Number(fwm![1]) >>> 0, family: fwm![2] ? 'inet6' : 'inet', scheduler: fwm![3]!, reals: [] };
      rest = fwm![4]!;
    }
    const flags = /^ \(([^)]*)\)/.exec(rest);
    if (flags) {
      s.schedFlags = flags[1]!.split(',');
      rest = rest.slice(flags[0].length);
    }
    const pers = / persistent (\d+)(?: mask (\S+))?/.exec(rest);
    if (pers) s.persistence = pers[2] ? { timeoutS: Number(pers[1]), netmask: pers[2] } : { timeoutS: Number(pers[1]) };
    if (/ ops\b/.test(rest)) s.ops = true;
    services.push(s);
    current = s;
  });
  return { services };
}

/** Parses `ipvsadm -L -n --thresholds`: upper/lower thresholds per service id and real id. */
export function parseThresholds(text: string): Map<string, Map<string, { upper: number; lower: number }>> {
  const out = new Map<string, Map<string, { upper: number; lower: number }>>();
  let sid: string | undefined;
  text.split('\n').forEach((raw, i) => {
    if (raw.trim() === '' || raw.startsWith('IP Virtual Server') || raw.startsWith('Prot ') || /^ {2}-> RemoteAddress:Port\s*$/.test(raw)) return;
    const real = /^ {2}-> (\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*$/.exec(raw);
    if (real) {
      if (sid === undefined) return;
      const ep = splitEndpoint(real[1]!, i + 1);
      out.get(sid)!.set(realId(ep), { upper: Number(real[2]), lower: Number(real[3]) });
      return;
    }
    const t = parseListing(raw);
    const s = t.services[0];
    if (s) {
      sid = serviceId(s);
      out.set(sid, new Map());
    }
  });
  return out;
}

export class IpvsadmBackend implements IpvsBackend {
  readonly name = 'ipvsadm';
  readonly path: string;
  readonly #run: CommandRunner;
  readonly #timeoutMs: number;
  readonly #env: Record<string, string | undefined> | undefined;

  constructor(opts: IpvsadmBackendOptions = {}) {
    const p = opts.path ?? findIpvsadm();
    if (!p) throw new IpvsError('E_IPVS_COMMAND', `cannot find ipvsadm (looked for ${DEFAULT_PATHS.join(', ')})`, { hint: 'install ipvsadm, or give its path' });
    this.path = p;
    this.#run = opts.runner ?? runCommand;
    this.#timeoutMs = opts.timeoutMs ?? 30_000;
    this.#env = opts.env;
  }

  async #ipvsadm(args: string[], input?: string): Promise<RunResult> {
    return this.#run(this.path, args, { timeoutMs: this.#timeoutMs, ...(input === undefined ? {} : { input }), ...(this.#env ? { env: this.#env } : {}) });
  }

  #fail(r: RunResult, what: string): never {
    throw new IpvsError('E_IPVS_COMMAND', `${what}: ${describeResult(r)}`, {
      details: { exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr, timedOut: r.timedOut },
    });
  }

  async read(): Promise<IpvsTable> {
    const list = await this.#ipvsadm(['-L', '-n']);
    if (!list.ok) this.#fail(list, 'reading the IPVS table');
    const thr = await this.#ipvsadm(['-L', '-n', '--thresholds']);
    if (!thr.ok) this.#fail(thr, 'reading the IPVS thresholds');
    const table = parseListing(list.stdout);
    const thresholds = parseThresholds(thr.stdout);
    for (const s of table.services) {
      const m = thresholds.get(serviceId(s));
      s.reals = s.reals.map((r): RealServer => {
        const t = m?.get(realId(r));
        const out: RealServer = { ...r };
        if (t?.upper) out.upperThreshold = t.upper;
        if (t?.lower) out.lowerThreshold = t.lower;
        return out;
      });
    }
    return table;
  }

  /** The `ipvsadm -R` input for a batch (one line per operation). */
  static rules(ops: readonly IpvsOp[]): string {
    return ops.map((op) => opToRuleLine(op) + '\n').join('');
  }

  async apply(ops: readonly IpvsOp[]): Promise<void> {
    if (ops.length === 0) return;
    const r = await this.#ipvsadm(['-R'], IpvsadmBackend.rules(ops));
    if (!r.ok || r.stderr.trim() !== '') this.#fail(r, `applying ${ops.length} operation(s) with ${this.path} -R`);
  }

  async close(): Promise<void> {}
}
