// The floor of `npm run bench -- checks --floor`: what N first checks cost with no ldirectord
// around them. A fresh process (cold, as a daemon's start is) runs N plain-http exchanges on fresh
// connections with the lean client's bottom layer (rawExchange: connect, one write, parse, close;
// no config, scheduler, policy or table), one exchange per real address, on one thread or on the
// main thread plus one worker thread that pull the next address from one shared counter. The
// worker's start is inside the measured time, as the daemon's first-pass worker's is.
//
// argv[2]: JSON { n, port, concurrency, threads }. Prints one line: JSON { ms, cpuMs } (wall time
// from the first exchange to the last answer, and this process's CPU over it, all threads).
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { rawExchange, rawHttpAvailable } from '@tandem/ldirectord/checks/raw-http';
import { benchAddress } from './_checks-addr.ts';

interface Job {
  n: number;
  port: number;
  concurrency: number;
  counter: SharedArrayBuffer;
}

async function pass(job: Job): Promise<void> {
  if (!rawHttpAvailable().ok) throw new Error(`raw libuv handles unavailable: ${rawHttpAvailable().reason}`);
  const next = new Int32Array(job.counter);
  const signal = new AbortController().signal;
  await Promise.all(
    Array.from({ length: job.concurrency }, async () => {
      for (let i = Atomics.add(next, 0, 1); i < job.n; i = Atomics.add(next, 0, 1)) {
        const a = benchAddress(i);
        const head = Buffer.from(`GET /index.html HTTP/1.1\r\nHost: ${a}\r\nUser-Agent: tandem-ldirectord\r\nConnection: close\r\n\r\n`, 'latin1');
        const r = await rawExchange(a, job.port, false, head, false, signal, 5000);
        if (r.status !== 200 || !r.body.includes('Test Page')) throw new Error(`${a}: HTTP ${r.status}`);
      }
    }),
  );
}

if (!isMainThread) {
  await pass(workerData as Job);
  parentPort!.postMessage('done');
} else {
  const o = JSON.parse(process.argv[2]!) as { n: number; port: number; concurrency: number; threads: number };
  const job: Job = { n: o.n, port: o.port, concurrency: o.threads > 1 ? Math.ceil(o.concurrency / 2) : o.concurrency, counter: new SharedArrayBuffer(4) };
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const parts = [pass(job)];
  if (o.threads > 1) {
    const w = new Worker(new URL(import.meta.url), { workerData: job });
    parts.push(
      new Promise<void>((resolve, reject) => {
        w.once('message', () => resolve());
        w.once('error', reject);
      }),
    );
  }
  await Promise.all(parts);
  const ms = performance.now() - t0;
  const c = process.cpuUsage(c0);
  console.log(JSON.stringify({ ms, cpuMs: (c.user + c.system) / 1000 }));
  process.exit(0);
}
