/**
 * A node for the media tests, run inside a network namespace: starts the media given as JSON in
 * argv[2], sends `<node> <type> <i>` on every medium every intervalMs, prints one JSON line per
 * packet received, and exits after durationMs (or on SIGTERM).
 */
import { createMedium } from '../src/media/index.ts';
import type { MediumConfig } from '../src/hacf.ts';

interface Args { node: string; media: MediumConfig[]; intervalMs: number; durationMs: number }

const args = JSON.parse(process.argv[2]!) as Args;
const media = args.media.map((m) => ({ cfg: m, medium: createMedium(m, { onError: (e) => console.log(JSON.stringify({ error: e.message })) }) }));
for (const { cfg, medium } of media) {
  await medium.start((r) => console.log(JSON.stringify({ got: r.packet.toString(), on: cfg.type, link: r.link, from: r.from })));
}
console.log(JSON.stringify({ ready: args.node }));
let i = 0;
const timer = setInterval(() => {
  i++;
  for (const { cfg, medium } of media) medium.send(Buffer.from(`${args.node} ${cfg.type} ${i}`));
}, args.intervalMs);
const stop = async (): Promise<void> => {
  clearInterval(timer);
  for (const { medium } of media) await medium.close();
  console.log(JSON.stringify({ done: args.node, sent: i }));
  process.exit(0);
};
setTimeout(() => void stop(), args.durationMs);
process.once('SIGTERM', () => void stop());
