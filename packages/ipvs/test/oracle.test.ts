import { strict as assert } from 'node:assert';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Counters, RealStats, TableStats } from '@tandem/ipvs';
import { IpvsDaemon, realId, serviceId } from '@tandem/ipvs';
import { type CliRun, type RealIpvsadm, cli, realIpvsadm, stubDataplane } from './helpers.ts';
import { seededRandom } from '@tandem/core/random';

/**
 * tandem-ipvsadm side by side with Debian's ipvsadm 1.31. The real tool runs over a fake kernel
 * (test/fixtures/fake-ipvs-kernel.c, LD_PRELOAD) since this machine has no ip_vs module; the fake
 * answers the IPv4 sockopt interface only, so IPv6, --pe and the connection table are compared
 * elsewhere. Every command runs on both; exit code, standard output and standard error must match.
 */

/** Commands the fake kernel answers like the real one (IPv4 only, no -c/--daemon, our own -h/-v texts). */
const CASES = `-A
-A -t
-A -t 1.2.3.4:80 -s foo
-A -t 1.2.3.4:80 -s rr
-A -t 1.2.3.4:80 -s rr
-A -t 1.2.3.4:70000
-A -t 1.2.3.4:http -s rr
-A -t 300.1.1.1:80
-A -t nosuchhost.invalid:80
-A -t 1.2.3.4:nosuchport
-A -f 0
-A -f abc
-A -t 1.2.3.4:81 -p 0
-A -t 1.2.3.4:81 -p abc
-A -t 1.2.3.4:81 -M 255.255.0.0
-A -t 1.2.3.4:81 -p 30 -M 300.0.0.0
-A -t 1.2.3.4:81 -b sh-port
-A -t 1.2.3.4:81 -s sh -b nonsense
-A -t 1.2.3.4:81 -s rr -b sh-port
-A -t 1.2.3.4:81 -o
-A -u 1.2.3.4:81 -o
-A -t 1.2.3.4:81 -t 1.2.3.4:82
-A -t 1.2.3.4:81 -u 1.2.3.4:82
-A -t 1.2.3.4:83 -r 5.5.5.5
-A -t 1.2.3.4:84 -w 3
-A -t 1.2.3.4:85 -m
-A -C
-E -t 9.9.9.9:80 -s rr
-E -t 1.2.3.4:80
-D -t 9.9.9.9:80
-D -t 1.2.3.4:81 -s rr
-D
-a -t 1.2.3.4:80
-a -t 1.2.3.4:80 -r 5.5.5.5:80 -w -1
-a -t 1.2.3.4:80 -r 5.5.5.5:80 -w 70000
-a -t 1.2.3.4:80 -r 5.5.5.5:80 -w abc
-a -t 1.2.3.4:80 -r 5.5.5.5:80 -x 70000
-a -t 1.2.3.4:80 -r 5.5.5.5:80 -y abc
-a -t 1.2.3.4:80 -r 5.5.5.6:80 -y 5
-a -t 1.2.3.4:80 -r 5.5.5.6:80 -x 5 -y 10
-a -t 1.2.3.4:80 -r 5.5.5.5:80 -g -m
-a -t 1.2.3.4:80 -r 5.5.5.5:80 -s rr
-a -t 1.2.3.4:80 -r 5.5.5.5:80 -p 10
-a -t 9.9.9.9:80 -r 5.5.5.5:80
-a -t 1.2.3.4:80 -r 5.5.5.5:80
-a -t 1.2.3.4:80 -r 300.5.5.5:80
-a -t 1.2.3.4:80 -r [::1]:80
-a -t 1.2.3.4:80 -r 5.5.5.6:90 -g
-e -t 1.2.3.4:80 -r 5.5.5.7:80
-e -t 9.9.9.9:80 -r 5.5.5.5:80
-d -t 1.2.3.4:80 -r 5.5.5.7:80
-d -t 9.9.9.9:80 -r 5.5.5.5:80
-d -t 1.2.3.4:80 -r 5.5.5.5:80 -w 3
-d -t 1.2.3.4:80
-a -r 5.5.5.5:80
-C -t 1.2.3.4:80
-C extra
-L -t 9.9.9.9:80
-L -r 5.5.5.5
-L -s rr
-L -c -t 1.2.3.4:80
-Z -t 9.9.9.9:80
-Z -t 1.2.3.4:80 -s rr
-S -t 1.2.3.4:80
-S --stats
-R -t 1.2.3.4:80
--nosuchoption
-X
-Ln extra
-L -n -n
-A -t 1.2.3.4:86 -s rr -s wrr
-A -t 1.2.3.4:87 -s
-A -t ::1:80 -s rr
-A -t [::1] -s rr
-a -f 99 -r 5.5.5.5
-A -f 7 -s rr
-a -f 7 -r 5.5.5.5 -m
-a -f 7 -r 5.5.5.5:0 -m
-d -f 7 -r 5.5.5.5
-a -t 1.2.3.4:80 -r 5.5.5.8 --tun-type gue
-e -t 1.2.3.4:80 -r 5.5.5.5:80 -m -w 0
-A -t 1.2.3.4:90 -s RR
-A -t 1.2.3.4:91 -s rr -p 30 -M 255.0.255.0
-A -t 1.2.3.4:0 -s rr -p 30
-A -t 1.2.3.4:92 -s rr -6
-a -t 1.2.3.4:80 -r 5.5.5.9 -i
-a -t 1.2.3.4:80 -r 5.5.5.10:1234 -i
-a -t 1.2.3.4:80 -r 5.5.5.11:0 -g
-a -t 1.2.3.4:80 -r 5.5.5.12:0 -m
-A -u 1.2.3.4:53
-D -u 1.2.3.4:53
-A -t 01.2.3.4:93 -s rr
-A -t 1.2.3:94 -s rr
-A -t 1.2.3.4:95: -s rr
-A -t :95 -s rr
-A -t 1.2.3.4:65535 -s rr
-A -t 1.2.3.4:65536 -s rr
-A -t 1.1.1.1:82 --scheduler=rr
-A -t1.1.1.1:83 -srr
-A -t 1.1.1.1:84 -s rr -p20
-A -t 1.1.1.1:85 -s rr -p -20
-A -t 1.1.1.1:86 -p 20 -p 30
-A -t 1.1.1.1:87 -M 255.255.0.0 -M 255.0.0.0
-Z -Z
-L -L
--add-service -t 1.1.1.1:88
-Ln --stats --stats
-A -X
-A -6 -f 5
-A -t 1.1.1.1:80 extra
-L -t
-A -tx
-LX
-Lx
--list -n
--list=3
-A -u 1.1.1.1:81 --ops=1
-A -t 1.1.1.1:183 --persistent=5
-A -t 1.1.1.1:184 --persistent 5
-A -t 1.1.1.1:185 --persistent
-L --timeout
--set 1 2
--set a b c
--set 1 2 3 4
--set 1000 0 20
foo -A -t 1.2.3.4:99
--start-daemon
--start-daemon foo
-
--
-A -- -t 1.1.1.1:80
-a -t 1.2.3.4:80 -r 2.2.2.2 -w
-a -t 1.2.3.4:80 -r 2.2.2.2:
-a -t 1.2.3.4:80 -r :80
-a -t 1.2.3.4:80 -r 2.2.2.2:0x50
-a -t 1.2.3.4:80 -r 2.2.2.2:080
-A -t 1.1.1.1:0x50 -s rr
-A -t localhost:87 -s rr
-A -t 1.1.1.1:http-alt -s rr
-a -t 1.2.3.4:80 -r 2.2.2.3 -w 0x10
-a -t 1.2.3.4:80 -r 2.2.2.5 -w 010
-a -t 1.2.3.4:80 -r 2.2.2.6 -w 2147483647
-a -t 1.2.3.4:80 -r 2.2.2.7 -w 2147483648
-a -t 1.2.3.4:80 -r 2.2.2.9 -x -1
-a -t 1.2.3.4:80 -r 2.2.2.9 -x 4294967296
-A -t 1.1.1.1:90 -p 2678400
-A -t 1.1.1.1:91 -p 2678401
-A -f 4294967295 -s rr
-A -f 4294967296
-A -f 0x10 -s rr
-A -t 1.1.1.1:93 -s sh -b sh-port,sh-port
-A -t 1.1.1.1:94 -s sh -b flag-1,flag-2,flag-3
-A -t 1.1.1.1:95 -s mh -b mh-fallback,flag-3
-A -t 1.1.1.1:96 -M 24 -p
-A -u 1.1.1.1:97 -o -p
-A -t 1.1.1.1:98 -s rr -b flag-2,flag-3
-R -n
-S -n -n
-C -n
-Z -n
-e -t 1.2.3.4:80 -r 2.2.2.2 -x 5
-d -t 1.2.3.4:80 -r 2.2.2.2 -g
-Lt 1.2.3.4:80 -r 2.2.2.2
-Ln
-L
-Ln --thresholds
-Ln --persistent-conn
-Ln --nosort
-S -n
-S
-Ln -t 1.2.3.4:80
-Z
-Z -t 1.2.3.4:80
-D -t 1.2.3.4:80
-Ln
-C
-Ln`;

/** -R inputs: blank lines, comments (errors in ipvsadm), the `ipvsadm` prefix, refusals in the middle. */
const RESTORES = [
  '-A -t 1.1.1.1:80 -s rr\nipvsadm -a -t 1.1.1.1:80 -r 2.2.2.2\n\n-a -t 1.1.1.1:80 -r 2.2.2.2\n-a -t 1.1.1.1:80 -r 2.2.2.3\n',
  '-A -t 1.1.1.1:80 -s rr\n-a -t 1.1.1.1:80 -r 2.2.2.2 -w abc\n-a -t 1.1.1.1:80 -r 2.2.2.3\n',
  // (No -L inside -R here: over the sockopt interface ipvsadm sizes that listing with the service count it saw at start.)
  '-A -t 1.1.1.1:80 -s rr\n-C\n-A -t 1.1.1.2:80 -s rr\n  -a   -t   1.1.1.2:80    -r 2.2.2.3 "-w" 4\n',
  '-R\n',
  '-A -t 1.1.1.3:80 -s rr',
  '-A -t 1.1.1.4:80 -s rr # comment\n',
  '--bogus\n-A -t 1.1.1.5:80\n',
  '# c\n-A -t 1.1.1.1:80\n',
  'ipvsadm\n-A -t 1.1.1.1:80\n',
  '\t-A\t-t 1.1.1.1:80\r\n',
  '/sbin/ipvsadm -A -t 1.1.1.2:80\n',
  '-A -t 1.1.1.1:80\n-A -t 1.1.1.1:80\n-A -t 1.1.1.2:80\n',
  '-A -t 1.1.1.1:80\n-A -t 1.1.1.1:80\n\n',
  '-A -t 1.1.1.1:80\n-L -t 1.1.1.9:80\n-A -t 1.1.1.2:80\n',
  '-A -t 1.1.1.1:80 -s "r r"\n',
  '-C\n-A -t 1.1.1.1:80 -s rr -s rr\n-A -t 1.1.1.2:80\n',
];

function same(real: CliRun, ours: CliRun, what: string): void {
  assert.deepEqual({ code: ours.code, stdout: ours.stdout, stderr: ours.stderr }, { code: real.code, stdout: real.stdout, stderr: real.stderr }, what);
}

describe('tandem-ipvsadm against Debian ipvsadm 1.31 (real tool over a fake kernel)', function () {
  this.timeout(120_000);
  let real: RealIpvsadm | undefined;
  before(function () {
    real = realIpvsadm();
    // Both are Debian packages of test/debian-packages.txt; without them there is nothing to compare with.
    if (!real) this.skip();
  });
  after(() => {
    if (real) rmSync(dirname(real.state), { recursive: true, force: true });
  });

  it('answers a sequence of 180 commands with the same output, messages and exit codes', async () => {
    const daemon = await IpvsDaemon.create({ dataplane: stubDataplane() });
    try {
      for (const line of CASES.split('\n')) {
        const argv = line.split(' ');
        same(real!.run(argv), await cli(daemon, argv), line);
      }
    } finally {
      await daemon.close();
    }
  });

  it('restores -R input the same way, line by line', async () => {
    for (const input of RESTORES) {
      const daemon = await IpvsDaemon.create({ dataplane: stubDataplane() });
      try {
        real!.run(['-C']);
        same(real!.run(['-R'], input), await cli(daemon, ['-R'], input), JSON.stringify(input));
        same(real!.run(['-S', '-n']), await cli(daemon, ['-S', '-n']), `table after ${JSON.stringify(input)}`);
      } finally {
        await daemon.close();
      }
    }
  });

  it('lists random tables identically in every format (order, widths, flags, counters)', async () => {
    const rnd = seededRandom(20261122);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    const nets = ['1.2.3.', '10.0.0.', '127.0.0.', '172.16.5.', '192.168.122.', '200.1.1.', '224.0.0.', '255.255.255.'];
    const big = () => pick([0, 1, 999, 99999999, 100000000, 999999999, 1000000000, 4294967295]);
    const bigger = () => pick([0, 5, 123456789, 99999999999, 100000000000, 99999999999999, 100000000000000, 2 ** 52]);
    for (let round = 0; round < 6; round++) {
      real!.run(['-C']);
      const dp = stubDataplane();
      const daemon = await IpvsDaemon.create({ dataplane: dp });
      const lines: string[] = [];
      const services: string[] = [];
      for (let i = 0; i < 6; i++) {
        const kind = pick(['tcp', 'tcp', 'udp', 'fwm', 'sctp'] as const);
        const sched = pick(['rr', 'wrr', 'lc', 'wlc', 'sh', 'mh', 'sed', 'nq', 'fo', 'ovf', 'dh', 'lblc', 'lblcr']);
        const svc = kind === 'fwm' ? `-f ${pick([1, 7, 100, 4294967295, 2147483648])}` : `${kind === 'tcp' ? '-t' : kind === 'udp' ? '-u' : '--sctp-service'} ${pick(nets)}${1 + Math.floor(rnd() * 254)}:${pick([80, 443, 53, 8080, 3306, 65535])}`;
        let line = `-A ${svc} -s ${sched}`;
        if (rnd() < 0.4) line += ` -p ${pick([1, 360, 3600, 2678400])}${rnd() < 0.5 ? ` -M ${pick(['255.255.255.0', '255.255.0.0', '255.0.255.0'])}` : ''}`;
        if (kind === 'udp' && rnd() < 0.5) line += ' -o';
        if ((sched === 'sh' || sched === 'mh') && rnd() < 0.6) line += ` -b ${sched}-port${rnd() < 0.5 ? `,${sched}-fallback` : ''}`;
        lines.push(line);
        services.push(svc);
        const n = Math.floor(rnd() * 6);
        for (let j = 0; j < n; j++) {
          const u = pick([0, 0, 10, 1000]);
          const l = u === 0 ? 0 : Math.floor(u / 2);
          lines.push(`-a ${svc} -r ${pick(nets)}${1 + Math.floor(rnd() * 254)}:${pick([80, 8080, 0, 53])} ${pick(['-g', '-m', '-i'])} -w ${pick([0, 1, 5, 10, 65535, 2147483647])}${u ? ` -x ${u} -y ${l}` : ''}`);
        }
      }
      for (const line of lines) {
        const argv = line.split(' ');
        same(real!.run(argv), await cli(daemon, argv), line);
      }
      // The same counters on both sides: written into the fake kernel's state and given to our data plane.
      const table = daemon.table;
      const stats: TableStats = { services: new Map() };
      const counters = (): Counters => ({ conns: big(), inPkts: big(), outPkts: big(), inBytes: bigger(), outBytes: bigger(), cps: big(), inPps: big(), outPps: big(), inBps: big(), outBps: big() });
      const state = readFileSync(real!.state, 'utf8').trimEnd().split('\n');
      const out: string[] = [];
      let si = -1;
      let ri = 0;
      for (const raw of state) {
        const f = raw.split(' ');
        const c = counters();
        const nums = [c.conns, c.inPkts, c.outPkts, c.inBytes, c.outBytes, c.cps, c.inPps, c.outPps, c.inBps, c.outBps].map(String);
        if (f[0] === 'S') {
          si++;
          ri = 0;
          const s = table.services[si]!;
          stats.services.set(serviceId(s), { service: c, reals: new Map() });
          out.push([...f.slice(0, 9), ...nums].join(' '));
        } else {
          const s = table.services[si]!;
          const r = s.reals[ri++]!;
          const rs: RealStats = { ...c, activeConns: big(), inactiveConns: big() };
          stats.services.get(serviceId(s))!.reals.set(realId(r), rs);
          out.push([...f.slice(0, 7), rs.activeConns, rs.inactiveConns, 0, ...nums].join(' '));
        }
      }
      writeFileSync(real!.state, out.join('\n') + '\n');
      dp.set(stats);
      try {
        // (Listings with names are compared in the command sequence; random addresses would wait on DNS here.)
        for (const args of ['-Ln', '-Ln --stats', '-Ln --rate', '-Ln --stats --exact', '-Ln --rate --exact', '-Ln --thresholds', '-Ln --persistent-conn', '-Ln --nosort', '-S -n', ...services.map((s) => `-Ln ${s}`), ...services.map((s) => `-L --stats ${s}`)]) {
          const argv = args.split(' ');
          same(real!.run(argv), await cli(daemon, argv), `round ${round}: ${args}`);
        }
      } finally {
        await daemon.close();
      }
    }
  });
});
