/**
 * The control-socket side of the tools: what `cl_status`, `heartbeat -s` and hb_standby/hb_takeover
 * ask the daemon, and the pure rendering of its answers in the real tools' words and exit codes
 * (reference/heartbeat-wire/cli-transcript.txt). Rendering takes the status as data, so the texts are
 * tested without a daemon, and the same code runs against a live one.
 */
import { hostname } from 'node:os';
import { controlRequest } from '@tandem/core';
import { DEFAULT_CONTROL_SOCKET } from './daemon.ts';
import type { NodeView } from './membership.ts';

/** The status object the daemon returns for `{"cmd":"status"}` (HeartbeatDaemon.status()). */
export interface DaemonStatus {
  version: string;
  pid: number;
  node: string;
  lifecycle: string;
  localState: string;
  generation: number;
  managedBy: string;
  resources: string;
  nodes: NodeView[];
  parameters: Record<string, string>;
  drops: Record<string, number>;
  eventLoopDelayMs: { p50: number; p99: number; max: number };
  keepaliveSendLateMaxMs: number;
  [key: string]: unknown;
}

export interface ToolOutput {
  stdout: string;
  stderr: string;
  code: number;
}

/** The socket path: `--socket PATH`/`-S PATH` on the command line, else $TANDEM_HB_SOCKET, else the default. */
export function socketFrom(args: string[]): { socket: string; rest: string[] } {
  const rest: string[] = [];
  let socket = process.env.TANDEM_HB_SOCKET || DEFAULT_CONTROL_SOCKET;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--socket' || a === '-S') socket = args[++i] ?? socket;
    else if (a.startsWith('--socket=')) socket = a.slice('--socket='.length);
    else rest.push(a);
  }
  return { socket, rest };
}

/** The daemon's status, or undefined when nothing answers on the socket. */
export async function fetchStatus(socket: string, timeoutMs = 5000): Promise<DaemonStatus | undefined> {
  try {
    const r = await controlRequest(socket, { cmd: 'status' }, timeoutMs);
    return r.ok ? (r.status as DaemonStatus) : undefined;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// cl_status

export const CL_STATUS_USAGE = `Usage: cl_status <sub-command> [<options>] [<parameters>]

Sub-commands:
clientstatus <node-name> <client-id> [<timeout>]
\tShow the status of heartbeat clients.
hblinkstatus <node-name> <link-name>
\tShow the status of a heartbeat link
hbstatus
\tIndicate if heartbeat is running on the local system.
\tOptions:
\t\t-v\tverbose: also add "listnodes -v" output
listnodes [<option>]
\tList the nodes in the cluster.
\tOptions:
\t\t-p\tlist only 'ping' type nodes
\t\t-n\tlist only 'normal' type nodes
\t\t-v\tverbose: also list type and status,
\t\t\tthen add "listhblinks -v" output
listhblinks <node-name>
\tList the network interfaces used as hearbeat links.
\tOptions:
\t\t-v\tverbose: list link status as well
nodestatus <node-name>
\tList the node status.
nodeweight <node-name>
\tList the node weight.
nodesite <node-name>
\tList the node site.
nodetype <node-name>
\tList the nodes of a given type.
rscstatus
\tShow the status of cluster resources.
hbparameter -p <parameter-name>
\tRetrieve the value of a cluster parameter.
\tAs for the valid parameter names, please refer to the man page.
`;

const BAD_NODE = 'Error. May be due to incorrect node name\n';
/** cl_status's exit code for a bad node name or sub-command. */
const E_BAD = 11;
/** Parameters heartbeat does not hand out through hbparameter. */
const UNRETRIEVABLE = new Set(['node', 'logfacility', 'apiauth']);

/** cl_status logs errors through cl_log: `Nov 22 10:03:48 node1 cl_status: [18024]: ERROR: ...`. */
export function clLogLine(msg: string, now = new Date(), host = hostname(), pid = process.pid): string {
  const mon = now.toLocaleString('en-US', { month: 'short' });
  const p = (n: number) => String(n).padStart(2, '0');
  return `${mon} ${p(now.getDate())} ${p(now.getHours())}:${p(now.getMinutes())}:${p(now.getSeconds())} ${host} cl_status: [${pid}]: ERROR: ${msg}\n`;
}

/** heartbeat lists nodes newest first: the ping nodes (added last), then the node lines in reverse. */
function ordered(s: DaemonStatus): NodeView[] {
  return [...s.nodes].reverse();
}

function nodeBlock(n: NodeView): string {
  let out = `\n${n.name}\t${n.state}\t(nodetype: ${n.type})\n`;
  for (const l of n.links) out += `\t${l.name}\t${l.state}\n`;
  return out;
}

function find(s: DaemonStatus, name: string | undefined): NodeView | undefined {
  if (name === undefined) return undefined;
  return s.nodes.find((n) => n.name === name.toLowerCase());
}

const ok = (stdout: string, code = 0): ToolOutput => ({ stdout, stderr: '', code });

/**
 * Runs one cl_status sub-command against a status (undefined: heartbeat is not running). Pure.
 */
export function clStatus(argv: readonly string[], s: DaemonStatus | undefined): ToolOutput {
  const [sub, ...args] = argv;
  if (sub === undefined) return ok(CL_STATUS_USAGE);
  const flags = new Set(args.filter((a) => /^-[a-z]$/.test(a)));
  const pos = args.filter((a) => !/^-[a-z]$/.test(a));
  const known = ['hbstatus', 'listnodes', 'nodestatus', 'nodetype', 'nodeweight', 'nodesite', 'listhblinks', 'hblinkstatus', 'clientstatus', 'rscstatus', 'hbparameter'];
  if (!known.includes(sub)) return { stdout: '', stderr: clLogLine(`${sub}: invalid sub-command.`), code: E_BAD };
  if (!s) {
    if (sub === 'hbstatus') return { stdout: 'Heartbeat is stopped on this machine.\n', stderr: '', code: 2 };
    return { stdout: '', stderr: clLogLine('Cannot signon with heartbeat') + clLogLine('REASON: heartbeat is not running (no answer on its control socket)'), code: 1 };
  }
  switch (sub) {
    case 'hbstatus': {
      let out = 'Heartbeat is running on this machine.\n';
      if (flags.has('-v')) {
        out = `version:\t${s.parameters.hbversion ?? s.version}\nmanaged by:\t"${s.managedBy}"\n`;
        for (const n of ordered(s)) out += nodeBlock(n);
      }
      return ok(out);
    }
    case 'listnodes': {
      let nodes = ordered(s);
      if (flags.has('-p')) nodes = nodes.filter((n) => n.type === 'ping');
      if (flags.has('-n')) nodes = nodes.filter((n) => n.type === 'normal');
      if (flags.has('-v')) return ok(nodes.map(nodeBlock).join(''));
      return ok(nodes.map((n) => `${n.name}\n`).join(''));
    }
    case 'nodestatus': {
      const n = find(s, pos[0]);
      return n ? ok(`${n.state}\n`) : { stdout: BAD_NODE, stderr: '', code: E_BAD };
    }
    case 'nodetype': {
      const n = find(s, pos[0]);
      return n ? ok(`${n.type}\n`) : { stdout: BAD_NODE, stderr: '', code: E_BAD };
    }
    case 'nodeweight': {
      const n = find(s, pos[0]);
      return n ? ok('100\n') : { stdout: BAD_NODE, stderr: '', code: E_BAD };
    }
    case 'nodesite': {
      const n = find(s, pos[0]);
      return n ? ok('\n') : { stdout: BAD_NODE, stderr: '', code: E_BAD };
    }
    case 'listhblinks': {
      const n = find(s, pos[0]);
      if (!n) return { stdout: BAD_NODE, stderr: '', code: E_BAD };
      return ok(n.links.map((l) => (flags.has('-v') ? `\t${l.name}\t${l.state}\n` : `\t${l.name}\n`)).join(''));
    }
    case 'hblinkstatus': {
      const n = find(s, pos[0]);
      const l = n?.links.find((x) => x.name === pos[1]);
      return l ? ok(`${l.state}\n`) : { stdout: 'Error. May be due to incorrect node name or link name\n', stderr: '', code: E_BAD };
    }
    case 'clientstatus':
      // tandem has no heartbeat API clients (ipfail, ccm): every client is offline, as for heartbeat
      // when the client is not signed on.
      return { stdout: 'offline\n', stderr: '', code: 1 };
    case 'rscstatus': {
      const r = s.resources;
      return ok(flags.has('-m') ? `This node is holding ${r} resources.\n` : `${r}\n`);
    }
    case 'hbparameter': {
      const i = args.indexOf('-p');
      const name = i >= 0 ? args[i + 1] : undefined;
      const value = name !== undefined && !UNRETRIEVABLE.has(name) ? s.parameters[name] : undefined;
      if (value === undefined) {
        return { stdout: '', stderr: clLogLine(`Cannot get parameter ${name ?? ''}'s value`) + clLogLine('REASON: '), code: 1 };
      }
      return ok(`${value}\n`);
    }
  }
  return { stdout: '', stderr: clLogLine(`${sub}: invalid sub-command.`), code: E_BAD };
}

// ---------------------------------------------------------------------------------------------
// hb_standby / hb_takeover

export const STANDBY_CHOICES = ['all', 'foreign', 'local', 'failback'] as const;

/**
 * Parses hb_standby/hb_takeover arguments as the real scripts do: default `all`; `failback` means
 * `foreign`; anything else is `wrong resources(x).` plus usage, exit 1 (`--help` too).
 */
export function parseStandbyArgs(prog: string, args: readonly string[]): { resources: 'all' | 'foreign' | 'local' } | ToolOutput {
  const usage = `usage:\n${prog} [all|foreign|local|failback]\n`;
  if (args.length > 1 || args[0] === '--help' || args[0] === '-h') return { stdout: usage, stderr: '', code: 1 };
  const a = args[0] ?? 'all';
  if (!(STANDBY_CHOICES as readonly string[]).includes(a)) return { stdout: `${prog}: wrong resources(${a}).\n${usage}`, stderr: '', code: 1 };
  return { resources: a === 'failback' ? 'foreign' : (a as 'all' | 'foreign' | 'local') };
}

/** `heartbeat -s` output for a status (undefined: stopped). */
export function heartbeatStatusLine(s: DaemonStatus | undefined): ToolOutput {
  if (!s) return { stdout: 'heartbeat is stopped. No process\n', stderr: '', code: 3 };
  return { stdout: `heartbeat OK [pid ${s.pid} et al] is running on ${s.node} [${s.node}]...\n`, stderr: '', code: 0 };
}
