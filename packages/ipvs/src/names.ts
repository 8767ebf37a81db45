import { readFileSync } from 'node:fs';
import { canonicalAddress } from './addr.ts';

/**
 * Host and service names as ipvsadm sees them through the C library: /etc/hosts for host names
 * (gethostbyname / gethostbyaddr; this project's machines have no DNS) and /etc/services for port
 * names. Synchronous, read once, injectable for tests.
 */
export interface NameResolver {
  /** IPv4 address of a host name, or undefined. */
  hostToAddress(name: string): string | undefined;
  /** Host name of an address, or undefined (then the address is printed). */
  addressToHost(address: string): string | undefined;
  /** Port of a service name for tcp/udp, or undefined. */
  serviceToPort(name: string, proto: 'tcp' | 'udp' | 'sctp'): number | undefined;
  /** Service name of a port for tcp/udp, or undefined (then the number is printed). */
  portToService(port: number, proto: 'tcp' | 'udp' | 'sctp'): string | undefined;
}

export interface NameTables {
  hosts?: string;
  services?: string;
}

function readOr(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

export function createNameResolver(tables: NameTables = {}): NameResolver {
  let hosts: { byName: Map<string, string>; byAddr: Map<string, string> } | undefined;
  let services: { byName: Map<string, number>; byPort: Map<string, string> } | undefined;
  const loadHosts = () => {
    if (hosts) return hosts;
    hosts = { byName: new Map(), byAddr: new Map() };
    for (const line of (tables.hosts ?? readOr('/etc/hosts')).split('\n')) {
      const [addr, ...names] = line.replace(/#.*/, '').trim().split(/\s+/);
      const a = addr ? canonicalAddress(addr) : undefined;
      if (!a || names.length === 0) continue;
      if (!hosts.byAddr.has(a)) hosts.byAddr.set(a, names[0]!);
      for (const n of names) if (!hosts.byName.has(n) && !a.includes(':')) hosts.byName.set(n, a);
    }
    return hosts;
  };
  const loadServices = () => {
    if (services) return services;
    services = { byName: new Map(), byPort: new Map() };
    for (const line of (tables.services ?? readOr('/etc/services')).split('\n')) {
      const m = /^([^\s#]+)\s+(\d+)\/(\w+)([^#]*)/.exec(line);
      if (!m) continue;
      const [, name, port, proto, aliases] = m;
      for (const n of [name!, ...aliases!.trim().split(/\s+/).filter(Boolean)]) {
        if (!services.byName.has(`${n}/${proto}`)) services.byName.set(`${n}/${proto}`, Number(port));
      }
      if (!services.byPort.has(`${port}/${proto}`)) services.byPort.set(`${port}/${proto}`, name!);
    }
    return services;
  };
  return {
    hostToAddress: (name) => loadHosts().byName.get(name),
    addressToHost: (address) => loadHosts().byAddr.get(address),
    serviceToPort: (name, proto) => (proto === 'sctp' ? undefined : loadServices().byName.get(`${name}/${proto}`)),
    portToService: (port, proto) => (proto === 'sctp' ? undefined : loadServices().byPort.get(`${port}/${proto}`)),
  };
}

/** A resolver that knows no names (numeric only). */
export const numericResolver: NameResolver = {
  hostToAddress: () => undefined,
  addressToHost: () => undefined,
  serviceToPort: () => undefined,
  portToService: () => undefined,
};
