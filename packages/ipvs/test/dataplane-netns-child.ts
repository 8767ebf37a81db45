// Runs inside a network namespace created by dataplane-netns.test.ts:
//   node dataplane-netns-child.ts VIP
// Starts a backend on 127.0.0.1, asks the data plane to serve VIP:80 (an address that is not on
// any interface yet), reports whether it listens at once, then adds VIP to lo, waits until it
// listens and fetches through it. Prints one JSON line.
import { execa } from 'execa';
import { createDataplane, type DataplaneEvent } from '../src/dataplane/index.ts';
import { get, startBackend, until } from './dataplane-helpers.ts';

const vip = process.argv[2];
const events: DataplaneEvent[] = [];
const b = await startBackend('inside', '127.0.0.1');
const dp = createDataplane({ bindRetryMs: 200, onEvent: (e) => events.push(e) });
const result: Record<string, unknown> = {};
try {
  await dp.update({ services: [{ protocol: 'tcp', address: vip, port: 80, scheduler: 'rr', reals: [{ address: '127.0.0.1', port: b.port, forwarding: 'masq', weight: 1 }] }] });
  result.listeningAtOnce = dp.listening();
  result.retryWarnings = events.filter((e) => e.code === 'W_IPVS_BIND_RETRY').length;
  const add = await execa('ip', ['addr', 'add', `${vip}/32`, 'dev', 'lo'], { reject: false });
  result.addedAddress = add.exitCode === 0;
  await until('listening', () => dp.listening(), 10_000);
  result.listeningAfterAdd = true;
  result.body = await get(vip, 80);
} catch (e) {
  result.error = String(e);
} finally {
  await dp.close();
  await b.close();
}
console.log(JSON.stringify(result));
