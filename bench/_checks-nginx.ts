// The light HTTP server of `npm run bench -- checks`: one nginx process (Debian's nginx-light, no
// master, one event loop) listening on every bench address 127.20.x.y:PORT, answering
// GET /index.html with the test page. Its access log (buffered, `$msec $server_addr`) gives the
// time each real was checked, from which the benchmark computes the period each real saw.
// nginx costs a fraction of what a Node server costs per connection, so the checker, not the
// server, is what the benchmark measures.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const PAGE = '<html><body>Test Page</body></html>\n';

export interface NginxServer {
  pid: number;
  /** user+system CPU of the nginx process so far, µs (from /proc, 10 ms resolution). */
  cpuUs(): number;
  /** Per-address arrival times (absolute ms) logged in [fromMs, toMs]; waits for the log buffer to be flushed. */
  arrivals(fromMs: number, toMs: number): Promise<Map<string, number[]>>;
  stop(): void;
}

export async function startNginx(dir: string, addresses: readonly string[], port: number): Promise<NginxServer> {
  const conf = join(dir, 'nginx.conf');
  const log = join(dir, 'access.log');
  const listens = addresses.map((a) => `    listen ${a}:${port} backlog=4096;`).join('\n');
  writeFileSync(
    conf,
    `daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile ${addresses.length + 25000};
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 20000; multi_accept on; }
http {
  log_format bench '$msec $server_addr';
  access_log ${log} bench buffer=64k flush=500ms;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi;
  uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  keepalive_timeout 65s;
  keepalive_requests 1000000;
  server {
${listens}
    location = /index.html { default_type text/html; return 200 '${PAGE.replace('\n', '\\n')}'; }
  }
}
`,
  );
  writeFileSync(log, '');
  const child: ChildProcess = spawn('nginx', ['-c', conf, '-p', dir], { stdio: ['ignore', 'inherit', 'inherit'] });
  const pid = child.pid!;
  let exited = false;
  child.on('exit', () => (exited = true));
  // Ready when the last address answers (nginx binds them in order).
  const last = addresses[addresses.length - 1]!;
  const net = await import('node:net');
  const deadline = performance.now() + 60_000;
  for (;;) {
    if (exited) throw new Error(`nginx exited at start-up; see ${dir}/error.log: ${safeRead(join(dir, 'error.log')).slice(-500)}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: last, port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) break;
    if (performance.now() > deadline) throw new Error(`nginx did not listen on ${last}:${port} within 60 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    pid,
    cpuUs() {
      const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
      // utime and stime are fields 14 and 15 of stat, in clock ticks (100 per second here).
      return (Number(fields[11]) + Number(fields[12])) * 10_000;
    },
    async arrivals(fromMs, toMs) {
      const wait = toMs + 1200 - (performance.timeOrigin + performance.now());
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const out = new Map<string, number[]>();
      for (const line of readFileSync(log, 'latin1').split('\n')) {
        const sp = line.indexOf(' ');
        if (sp < 0) continue;
        const t = Number(line.slice(0, sp)) * 1000;
        if (!(t >= fromMs && t <= toMs)) continue;
        const a = line.slice(sp + 1);
        let ts = out.get(a);
        if (!ts) out.set(a, (ts = []));
        ts.push(t);
      }
      return out;
    },
    stop() {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    },
  };
}

function safeRead(f: string): string {
  try {
    return readFileSync(f, 'utf8');
  } catch {
    return '';
  }
}
