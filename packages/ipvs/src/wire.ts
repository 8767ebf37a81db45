import type { Counters, RealStats, TableStats } from './model.ts';

/** What the daemon and its clients share: where the socket is, and stats in JSON form. */

export const DEFAULT_SOCKET = '/run/tandem/ipvsd.sock';

/** The control socket path: the --socket option, else $TANDEM_IPVSD_SOCKET, else the default. */
export function socketPath(option?: string): string {
  return option ?? process.env.TANDEM_IPVSD_SOCKET ?? DEFAULT_SOCKET;
}

export type EncodedStats = [string, { service: Counters; reals: [string, RealStats][] }][];

export function encodeStats(s: TableStats): EncodedStats {
  return [...s.services].map(([id, v]) => [id, { service: v.service, reals: [...v.reals] }]);
}

export function decodeStats(e: EncodedStats | undefined): TableStats {
  return { services: new Map((e ?? []).map(([id, v]) => [id, { service: v.service, reals: new Map(v.reals) }])) };
}
