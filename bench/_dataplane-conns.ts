// Opens N idle TCP connections to HOST:PORT from the given source addresses (round robin), for
// the RSS measurement of bench/dataplane.ts. Prints `OPEN n` when all are connected (or failed),
// then holds them until stdin closes. Bounded: at most N, 200 connecting at a time, 60 s overall.
import net from 'node:net';

const [host, port, nStr, ...sources] = process.argv.slice(2);
const n = Number(nStr);
const sockets: net.Socket[] = [];
let opened = 0;
let failed = 0;
let started = 0;
let inflight = 0;
const deadline = Date.now() + 60_000;

function next(): void {
  while (inflight < 200 && started < n && Date.now() < deadline) {
    const s = net.connect({ host, port: Number(port), localAddress: sources[started % sources.length] });
    started++;
    inflight++;
    s.once('connect', () => {
      opened++;
      inflight--;
      sockets.push(s);
      done();
    });
    s.once('error', () => {
      failed++;
      inflight--;
      done();
    });
  }
}

function done(): void {
  if (opened + failed === n || (Date.now() >= deadline && inflight === 0)) {
    console.log(`OPEN ${opened} FAILED ${failed}`);
    return;
  }
  next();
}

next();
process.stdin.resume();
process.stdin.on('end', () => {
  for (const s of sockets) s.destroy();
  process.exit(0);
});
