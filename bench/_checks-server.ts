// The real servers of `npm run bench -- checks`: one light HTTP server process listening on many
// loopback addresses (127.x.y.z:PORT, one listening socket each). It answers every request with a
// small page and records, per address, when requests arrive, so the benchmark can report the check
// period each real actually saw. Runs as a separate process (execaNode with IPC) so that its CPU is
// not counted as the checker's.
//
// argv: PORT ADDRESS... | PORT --range FIRST COUNT   (FIRST and COUNT index bench addresses)
import net from 'node:net';
import { getEachMessage, sendMessage } from 'execa';
import { benchAddress } from './_checks-addr.ts';

const [portArg, ...rest] = process.argv.slice(2);
const port = Number(portArg);
const addresses: string[] = [];
if (rest[0] === '--range') {
  const first = Number(rest[1]);
  const count = Number(rest[2]);
  for (let i = first; i < first + count; i++) addresses.push(benchAddress(i));
} else addresses.push(...rest);

const BODY = '<html><body>Test Page</body></html>\n';
const CLOSE = `HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: ${BODY.length}\r\nConnection: close\r\n\r\n${BODY}`;
const KEEP = `HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: ${BODY.length}\r\n\r\n${BODY}`;

// Per address: arrival times (ms, monotonic) of the requests in the current measuring window.
const arrivals = new Map<string, number[]>();
let recording = false;

function serve(address: string): Promise<void> {
  const times: number[] = [];
  arrivals.set(address, times);
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    socket.on('error', () => {});
    let pending = '';
    socket.on('data', (chunk: Buffer) => {
      pending += chunk.toString('latin1');
      for (let end = pending.indexOf('\r\n\r\n'); end >= 0; end = pending.indexOf('\r\n\r\n')) {
        const head = pending.slice(0, end);
        pending = pending.slice(end + 4);
        if (recording) times.push(performance.now());
        if (/\r\nconnection: *keep-alive/i.test(head)) socket.write(KEEP);
        else {
          socket.end(CLOSE);
          return;
        }
      }
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: address, port, backlog: 4096 }, () => resolve());
  });
}

for (let i = 0; i < addresses.length; i += 500) await Promise.all(addresses.slice(i, i + 500).map(serve));
await sendMessage({ ready: true, listening: addresses.length, pid: process.pid });

for await (const msg of getEachMessage()) {
  const m = msg as { cmd: string };
  if (m.cmd === 'record') {
    for (const t of arrivals.values()) t.length = 0;
    recording = true;
    await sendMessage({ ok: true });
  } else if (m.cmd === 'periods') {
    recording = false;
    const periods: number[] = [];
    let requests = 0;
    let silent = 0;
    for (const t of arrivals.values()) {
      requests += t.length;
      if (t.length < 2) silent++;
      for (let i = 1; i < t.length; i++) periods.push(t[i]! - t[i - 1]!);
    }
    const cpu = process.cpuUsage();
    // Raw periods (ms, rounded to 0.1) so that the benchmark can merge several server processes.
    await sendMessage({ requests, silent, periods: periods.map((p) => Math.round(p * 10) / 10), cpuUs: cpu.user + cpu.system });
  } else if (m.cmd === 'exit') {
    process.exit(0);
  }
}
