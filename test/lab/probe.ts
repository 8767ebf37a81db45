// The lab's client: sends one request to the VIP every INTERVAL ms (TCP: HTTP GET with a fresh
// connection; UDP: a datagram answered by the active director) and prints one JSON line per result:
//   {"t":<ms since start>,"ok":true,"by":"rs1"} or {"t":...,"ok":false,"err":"ECONNREFUSED"}
// Bounded: stops after --count requests or --seconds, whichever comes first. With --wall every line
// also holds "w", the send time in ms since the epoch, so another process can line results up
// with its own events (bench/failover.ts).
//   node probe.ts --vip 192.168.136.10 --port 80 [--udp] [--interval 10] [--count N] [--seconds S] [--timeout MS] [--wall]
import { request } from 'node:http';
import { createSocket } from 'node:dgram';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i]!;
  if (a.startsWith('--')) args.set(a.slice(2), process.argv[i + 1]?.startsWith('--') || i + 1 >= process.argv.length ? 'true' : process.argv[++i]!);
}
const vip = args.get('vip') ?? '127.0.0.1';
const port = Number(args.get('port') ?? 80);
const interval = Number(args.get('interval') ?? 10);
const count = Number(args.get('count') ?? 1_000_000);
const seconds = Number(args.get('seconds') ?? 3600);
const udp = args.get('udp') === 'true';
const timeoutMs = Number(args.get('timeout') ?? 1000);
const wall = args.get('wall') === 'true';
const start = performance.now();
const origin = performance.timeOrigin + start;
let sent = 0;
let inflight = 0;

function emit(o: Record<string, unknown>) {
  if (wall) o.w = +(origin + (o.t as number)).toFixed(1);
  process.stdout.write(JSON.stringify(o) + '\n');
}

function httpOnce(t: number) {
  inflight++;
  const req = request({ host: vip, port, path: '/', agent: false, timeout: timeoutMs, headers: { connection: 'close' } }, (res) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (c) => (body += c));
    res.on('end', () => {
      inflight--;
      emit({ t, ok: res.statusCode === 200, by: String(res.headers['x-real-server'] ?? body.trim()), ms: +(performance.now() - start - t).toFixed(1) });
    });
  });
  req.on('timeout', () => req.destroy(new Error('ETIMEDOUT')));
  req.on('error', (e: NodeJS.ErrnoException) => {
    inflight--;
    emit({ t, ok: false, err: e.code ?? e.message });
  });
  req.end();
}

const sock = udp ? createSocket(vip.includes(':') ? 'udp6' : 'udp4') : undefined;
const pending = new Map<number, { t: number; timer: NodeJS.Timeout }>();
if (sock) {
  sock.on('message', (msg) => {
    const [id, by] = msg.toString().split(' ');
    const p = pending.get(Number(id));
    if (!p) return;
    clearTimeout(p.timer);
    pending.delete(Number(id));
    emit({ t: p.t, ok: true, by, ms: +(performance.now() - start - p.t).toFixed(1) });
  });
}

function udpOnce(t: number, id: number) {
  const timer = setTimeout(() => {
    pending.delete(id);
    emit({ t, ok: false, err: 'ETIMEDOUT' });
  }, timeoutMs);
  pending.set(id, { t, timer });
  sock!.send(`${id} ping`, port, vip);
}

const tick = setInterval(() => {
  const t = +(performance.now() - start).toFixed(1);
  if (sent >= count || t > seconds * 1000) {
    clearInterval(tick);
    setTimeout(() => process.exit(0), timeoutMs + 100);
    return;
  }
  sent++;
  if (udp) udpOnce(t, sent);
  else httpOnce(t);
}, interval);
process.on('SIGTERM', () => process.exit(0));
