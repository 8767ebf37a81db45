/**
 * haresources, read the way heartbeat 3.0.6's ResourceManager reads it:
 *
 *     node  resource  [resource ...]
 *
 * - `#` starts a comment anywhere on a physical line; the comment is removed BEFORE continuation
 *   lines are joined, and a line continues only when a backslash is its very last character
 *   (ResourceManager's sed does exactly this, so `a \ ` with a trailing blank does not continue).
 * - Runs of white space count as one; the node name is lowercased.
 * - A resource is `agent` or `agent::arg1::arg2...`. A token shaped like an IPv4 address (the glob
 *   `[0-9]*.[0-9]*.[0-9]*.[0-9]*`) is shorthand for `IPaddr::token`.
 * - The first resource of a line is the group's key and must be unique in the file.
 *
 * Parsing is pure: it returns groups and reports every problem to a ProblemSink with file:line.
 */
import { readFileSync } from 'node:fs';
import { ProblemSink, TandemError, didYouMean, type Location } from '@tandem/core';

export interface ResourceSpec {
  /** The token as written (`IPaddr::10.0.0.1/24/eth0`, `10.0.0.1/24`, `httpd`). */
  token: string;
  /** Agent name (`IPaddr`, `httpd`, `ocf:heartbeat:IPaddr2`). */
  agent: string;
  /** Arguments split on `::`, passed before the action. */
  args: string[];
  /** Written as a bare address: heartbeat's IPaddr shorthand. */
  ipShorthand: boolean;
  location?: Location | undefined;
}

export interface ResourceGroup {
  /** The preferred node, lowercased. */
  node: string;
  /** The first resource token as written: heartbeat's group key (`ResourceManager listkeys`). */
  key: string;
  resources: ResourceSpec[];
  location?: Location | undefined;
}

export interface HaResources {
  file: string;
  groups: ResourceGroup[];
}

export interface HaresourcesOptions {
  /** Node names from ha.cf (`node` lines). When given, the first word of every line must be one. */
  nodes?: readonly string[] | undefined;
}

/** ResourceManager's isip(): the shell glob `[0-9]*.[0-9]*.[0-9]*.[0-9]*`. */
export function looksLikeIp(token: string): boolean {
  return /^[0-9].*\.[0-9].*\.[0-9].*\.[0-9]/.test(token);
}

/** `IPaddr::a::b` → { agent: IPaddr, args: [a, b] }; a bare address becomes IPaddr::address. */
export function parseResourceToken(token: string, location?: Location, sink?: ProblemSink): ResourceSpec | undefined {
  const ipShorthand = looksLikeIp(token);
  const canonical = ipShorthand ? `IPaddr::${token}` : token;
  const sep = canonical.indexOf('::');
  const agent = sep < 0 ? canonical : canonical.slice(0, sep);
  const rawArgs = sep < 0 ? [] : canonical.slice(sep + 2).split('::');
  if (agent === '') {
    sink?.error('E_HARES_BAD_RESOURCE', `resource "${token}" has no agent name before "::"`, location, 'write agent::argument');
    return undefined;
  }
  if (agent.includes('/') || /[\s'"`$;&|<>\\]/.test(agent)) {
    sink?.error('E_HARES_BAD_RESOURCE', `resource "${token}": "${agent}" is not an agent name`, location,
      'name a script of resource.d or init.d (no path, no shell characters)');
    return undefined;
  }
  const args = rawArgs.filter((a) => a !== '');
  if (args.length !== rawArgs.length) {
    // ResourceManager word-splits the arguments, so an empty one silently disappears; keep that
    // meaning but say so, it is nearly always a typo.
    sink?.warn('E_HARES_BAD_RESOURCE', `resource "${token}" has an empty "::" argument; it is ignored as heartbeat ignores it`, location);
  }
  const spec: ResourceSpec = { token, agent, args, ipShorthand, location };
  if ((agent === 'IPaddr' || agent === 'IPaddr2') && sink) {
    const ipArg = args[0];
    if (ipArg === undefined) {
      sink.error('E_HARES_BAD_IP', `${agent} needs an address: ${agent}::ip[/prefix[/iface[/broadcast]]]`, location);
    } else {
      const r = parseIpSpec(ipArg, agent);
      if (typeof r === 'string') sink.error('E_HARES_BAD_IP', `${ipShorthand ? 'address' : agent} "${ipArg}": ${r}`, location,
        'write ip[/prefix[/iface[/broadcast]]], e.g. 192.168.136.10/24/eth0');
    }
  }
  return spec;
}

export interface IpSpec {
  ip: string;
  /** Prefix length (a dotted netmask is converted). */
  prefix?: number | undefined;
  nic?: string | undefined;
  /** IPaddr2's `iface:label`. */
  label?: string | undefined;
  broadcast?: string | undefined;
}

function isIpv4(s: string): boolean {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  return !!m && m.slice(1).every((o) => Number(o) <= 255);
}

function maskToPrefix(mask: string): number | undefined {
  if (!isIpv4(mask)) return undefined;
  const n = mask.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
  let bits = 0;
  for (let i = 31; i >= 0; i--) {
    if (n & 2 ** i) bits++;
    else break;
  }
  // Must be contiguous ones followed by zeros.
  const rebuilt = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return rebuilt === n ? bits : undefined;
}

/**
 * IPaddr's argument `ip[/cidr_netmask[/nic[/broadcast]]]` (a purely numeric third field is the
 * broadcast, as heartbeat's IPaddr reads it) or IPaddr2's `ip[/bits[/iface[:label][/broadcast]]]`.
 * Returns the reason as a string when malformed.
 */
export function parseIpSpec(arg: string, agent: 'IPaddr' | 'IPaddr2' = 'IPaddr'): IpSpec | string {
  const parts = arg.split('/');
  const [ip, mask, third, fourth] = parts;
  if (parts.length > 4) return 'too many "/" fields';
  if (!ip || !isIpv4(ip)) return `"${ip ?? ''}" is not an IPv4 address`;
  const spec: IpSpec = { ip };
  if (mask !== undefined && mask !== '') {
    if (/^\d+$/.test(mask)) {
      const p = Number(mask);
      if (p > 32) return `prefix length ${mask} is above 32`;
      spec.prefix = p;
    } else {
      const p = maskToPrefix(mask);
      if (p === undefined) return `"${mask}" is neither a prefix length nor a netmask`;
      spec.prefix = p;
    }
  }
  if (third !== undefined && third !== '') {
    if (/^[0-9]/.test(third)) {
      if (!isIpv4(third)) return `broadcast "${third}" is not an IPv4 address`;
      spec.broadcast = third;
      if (fourth !== undefined) return 'nothing may follow the broadcast address';
    } else {
      const [nic, label] = third.split(':');
      if (!nic || !/^[A-Za-z0-9_.@-]{1,15}$/.test(nic)) return `"${third}" is not an interface name`;
      spec.nic = nic;
      if (label !== undefined) {
        if (agent === 'IPaddr' && !/^\d+$/.test(label)) return `"${third}": IPaddr takes a plain interface (labels are IPaddr2's)`;
        spec.label = label;
      }
      if (fourth !== undefined && fourth !== '') {
        if (!isIpv4(fourth)) return `broadcast "${fourth}" is not an IPv4 address`;
        spec.broadcast = fourth;
      }
    }
  }
  return spec;
}

interface LogicalLine {
  text: string;
  line: number;
}

/** Comments off each physical line, then backslash joins: ResourceManager's sed, in its order. */
function logicalLines(content: string, file: string, sink: ProblemSink): LogicalLine[] {
  const physical = content.split('\n').map((l) => l.replace(/\r$/, '').replace(/#.*/, ''));
  const out: LogicalLine[] = [];
  for (let i = 0; i < physical.length; i++) {
    const start = i + 1;
    let text = physical[i]!;
    while (text.endsWith('\\')) {
      if (i + 1 >= physical.length) {
        sink.error('E_HARES_CONTINUATION', 'the last line ends with a backslash: it continues into nothing', { file, line: start },
          'remove the trailing backslash');
        text = text.slice(0, -1);
        break;
      }
      text = text.slice(0, -1) + physical[++i]!;
    }
    if (text.trim() !== '') out.push({ text, line: start });
  }
  return out;
}

export function parseHaresources(content: string, file: string, opts: HaresourcesOptions = {}, sink = new ProblemSink(file)): HaResources {
  const groups: ResourceGroup[] = [];
  const keys = new Map<string, number>();
  const seen = new Map<string, { key: string; line: number }>();
  const nodes = opts.nodes?.map((n) => n.toLowerCase());
  for (const l of logicalLines(content, file, sink)) {
    const words = l.text.split(/[ \t]+/).filter((w) => w !== '');
    const node = words[0]!.toLowerCase();
    const location: Location = { file, line: l.line, directive: node };
    if (nodes && !nodes.includes(node)) {
      const dym = didYouMean(node, nodes);
      sink.error('E_HARES_BAD_NODE', `"${words[0]}" is not a node of ha.cf (nodes: ${nodes.join(', ')})`, location,
        dym ? `did you mean "${dym}"?` : 'the first word of a line is the node that prefers the group');
    }
    if (words.length < 2) {
      sink.error('E_HARES_NO_RESOURCES', `node "${words[0]}" has no resources on this line`, location,
        'write: node resource [resource ...]');
      continue;
    }
    const resources: ResourceSpec[] = [];
    for (const token of words.slice(1)) {
      const r = parseResourceToken(token, location, sink);
      if (r) resources.push(r);
    }
    const key = words[1]!;
    const prev = keys.get(key);
    if (prev !== undefined) {
      sink.error('E_HARES_DUPLICATE_KEY', `"${key}" already starts the group on line ${prev}; the first resource of a line names its group and must be unique`,
        location, 'reorder the resources or put a distinct resource first');
      continue;
    }
    keys.set(key, l.line);
    for (const r of resources) {
      const other = seen.get(r.token);
      if (other) sink.warn('E_HARES_DUPLICATE_RESOURCE', `"${r.token}" is also in the group "${other.key}" (line ${other.line}): both groups would run it`, location);
      else seen.set(r.token, { key, line: l.line });
    }
    if (resources.length === words.length - 1) groups.push({ node, key, resources, location });
  }
  return { file, groups };
}

/** Reads and parses a haresources file; throws ConfigError with every problem when one is an error. */
export function loadHaresources(path: string, opts: HaresourcesOptions = {}, sink = new ProblemSink(path)): HaResources {
  let content: string;
  try {
    content = readFileSync(path, 'utf8');
  } catch (err) {
    throw new TandemError('E_CONF_READ', `cannot read ${path}: ${(err as Error).message}`, { cause: err, hint: 'check the path and its permissions' });
  }
  const res = parseHaresources(content, path, opts, sink);
  sink.throwIfErrors();
  return res;
}

/** The line as ResourceManager logs it: `node1 10.0.0.1/24/eth0 httpd`. */
export function formatGroup(g: ResourceGroup): string {
  return [g.node, ...g.resources.map((r) => r.token)].join(' ');
}

/** Groups a node prefers (its "local" groups; every other group is "foreign" to it). */
export function groupsOf(res: HaResources | readonly ResourceGroup[], node: string): ResourceGroup[] {
  const groups = 'groups' in res ? res.groups : res;
  return groups.filter((g) => g.node === node.toLowerCase());
}

/**
 * The group a key names. Like ResourceManager's `ipresline`, a key given by a peer matches the
 * group it starts, or else the group containing that resource.
 */
export function findGroup(groups: readonly ResourceGroup[], key: string): ResourceGroup | undefined {
  return groups.find((g) => g.key === key) ?? groups.find((g) => g.resources.some((r) => r.token === key));
}
