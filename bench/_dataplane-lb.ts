// The embedded balancer as its own process for bench/dataplane.ts:
//   node bench/_dataplane-lb.ts VIP PORT SOURCE REAL1 REAL2 ...   (REAL = addr:port)
// TANDEM_DP_ENGINE=raw|net|auto picks the TCP engine.
// Prints `READY` once listening; answers `stats` on stdin with one JSON line.
import { createInterface } from 'node:readline';
import { createDataplane } from '../packages/ipvs/src/dataplane/index.ts';

const [vip, port, source, ...reals] = process.argv.slice(2);
const engine = (process.env.TANDEM_DP_ENGINE ?? 'auto') as 'auto' | 'raw' | 'net';
const dp = createDataplane({ engine, sourceAddress: source, onEvent: (e) => e.level !== 'debug' && console.error(`lb: ${e.code} ${e.message}`) });
await dp.update({
  services: [
    {
      protocol: 'tcp',
      address: vip,
      port: Number(port),
      scheduler: 'rr',
      reals: reals.map((r) => {
        const i = r.lastIndexOf(':');
        return { address: r.slice(0, i), port: Number(r.slice(i + 1)), forwarding: 'masq' as const, weight: 1 };
      }),
    },
  ],
});
console.log('READY');
createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.trim() === 'stats') {
    let active = 0;
    let conns = 0;
    for (const s of dp.stats().services.values()) {
      conns += s.service.conns;
      for (const r of s.reals.values()) active += r.activeConns;
    }
    const m = process.memoryUsage();
    console.log(JSON.stringify({ active, conns, open: dp.openConnections, rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, engine: dp.engine === 'raw' ? 1 : 0 }));
  } else if (line.trim() === 'gc') {
    (globalThis as { gc?: () => void }).gc?.();
    console.log(JSON.stringify({ gc: true }));
  }
});
process.stdin.on('end', () => void dp.close().then(() => process.exit(0)));
process.on('SIGTERM', () => void dp.close().then(() => process.exit(0)));
