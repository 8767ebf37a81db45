import { readFileSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';
import { lookup } from 'node:dns/promises';

/**
 * Name resolution for ldirectord.cf, kept synchronous for the parser: host names and service
 * names are looked up in tables prepared before parsing (/etc/hosts, /etc/services, and DNS
 * answers gathered by `loadConfig` for names those files do not know). ldirectord resolves once at
 * parse time too, so the parsed config never changes under a running daemon.
 */
export interface NameTables {
  /** name → addresses (IPv4 and IPv6), in file order. */
  hosts: Map<string, string[]>;
  /** `name/proto` → port. */
  services: Map<string, number>;
}

/** Well-known services, used when /etc/services is missing (minimal containers). */
const BUILTIN_SERVICES: [string, number, string[]][] = [
  ['ftp', 21, ['tcp']], ['ssh', 22, ['tcp']], ['smtp', 25, ['tcp']], ['domain', 53, ['tcp', 'udp']],
  ['http', 80, ['tcp', 'udp']], ['www', 80, ['tcp']], ['pop3', 110, ['tcp']], ['pop-3', 110, ['tcp']],
  ['nntp', 119, ['tcp']], ['imap', 143, ['tcp']], ['imap2', 143, ['tcp']], ['ldap', 389, ['tcp', 'udp']],
  ['https', 443, ['tcp', 'udp']], ['submission', 587, ['tcp']], ['ldaps', 636, ['tcp']], ['imaps', 993, ['tcp']],
  ['pop3s', 995, ['tcp']], ['ms-sql-s', 1433, ['tcp']], ['radius', 1812, ['udp']], ['mysql', 3306, ['tcp']],
  ['sip', 5060, ['tcp', 'udp']], ['postgresql', 5432, ['tcp']], ['http-alt', 8080, ['tcp']], ['webcache', 8080, ['tcp']],
  ['squid', 3128, ['tcp']], ['ntp', 123, ['udp']], ['snmp', 161, ['udp']],
];

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

export function parseHostsFile(text: string, into = new Map<string, string[]>()): Map<string, string[]> {
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) continue;
    const [addr, ...names] = line.split(/\s+/);
    if (!addr || !(isIPv4(addr) || isIPv6(addr))) continue;
    for (const n of names) {
      const k = n.toLowerCase();
      const list = into.get(k) ?? [];
      if (!list.includes(addr)) list.push(addr);
      into.set(k, list);
    }
  }
  return into;
}

export function parseServicesFile(text: string, into = new Map<string, number>()): Map<string, number> {
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) continue;
    const [name, portProto, ...aliases] = line.split(/\s+/);
    const m = /^(\d+)\/(\w+)$/.exec(portProto ?? '');
    if (!name || !m) continue;
    for (const n of [name, ...aliases]) {
      const k = `${n}/${m[2]}`;
      if (!into.has(k)) into.set(k, Number(m[1]));
    }
  }
  return into;
}

let systemTables: NameTables | undefined;

/** /etc/hosts and /etc/services of this machine (read once), plus built-in well-known services. */
export function systemNameTables(): NameTables {
  if (systemTables) return systemTables;
  const hosts = parseHostsFile(readText('/etc/hosts') ?? '');
  if (!hosts.has('localhost')) hosts.set('localhost', ['127.0.0.1', '::1']);
  const services = parseServicesFile(readText('/etc/services') ?? '');
  for (const [name, port, protos] of BUILTIN_SERVICES) for (const p of protos) if (!services.has(`${name}/${p}`)) services.set(`${name}/${p}`, port);
  systemTables = { hosts, services };
  return systemTables;
}

/** Resolves names that the tables do not know through the system resolver (DNS), for loadConfig. */
export async function resolveMissing(names: Iterable<string>, tables: NameTables, timeoutMs = 5000): Promise<NameTables> {
  const hosts = new Map(tables.hosts);
  await Promise.all(
    [...new Set(names)].map(async (name) => {
      const timer = new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), timeoutMs).unref());
      const found = await Promise.race([lookup(name, { all: true }).catch(() => undefined), timer]);
      if (found && found.length > 0) hosts.set(name.toLowerCase(), found.map((a) => a.address));
    }),
  );
  return { hosts, services: tables.services };
}
