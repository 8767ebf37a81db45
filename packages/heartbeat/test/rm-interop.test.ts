/**
 * A mixed pair, for real: a real heartbeat 3.0.6 node (Debian's package) and a tandem `heartbeat`
 * process, each in its own network namespace, with the same haresources. Their resource groups move
 * between them through the resource conversation in both directions — start-up, hb_standby on
 * either side, a graceful stop of either side, auto_failback — and every release is done before the
 * matching acquisition starts (checked in the shared trace of the agents).
 *
 * Safety (reference/heartbeat.md §8): the real node's agent can never fail a stop (it removes a
 * file and exits 0), because a failed stop makes heartbeat `pkill -9 heartbeat` and reboot. The real
 * node runs in its own mount + UTS namespace with its own /etc/ha.d, /var/lib/heartbeat and /run,
 * and every process is stopped by PID.
 */
import assert from 'node:assert/strict';
import { execa, type ResultPromise } from 'execa';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { processAlive } from '@tandem/core';
import { Topology, type Spawned } from '../../../test/lab/netns.ts';
import { waitFor } from '../../../test/lab/ports.ts';

const REAL_HEARTBEAT = '/usr/libexec/heartbeat/heartbeat';
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const NODE = join(ROOT, 'node_modules/.bin/node');
const TANDEM = join(ROOT, 'packages/heartbeat/src/cli/heartbeat.ts');
const BIN = join(ROOT, 'packages/heartbeat/bin');
const SECRET = 'mixed-pair-secret';

const AGENT = `#!/bin/sh
# rtrace NAME {start|stop|status}: a resource that is a file per node; stop never fails.
node=\${HA_CURHOST:-$(uname -n)}
mkdir -p "@STATE@/$node"
echo "$(date +%s%N) $node $1 $2" >> "@STATE@/trace"
case "$2" in
  start) : > "@STATE@/$node/$1";;
  stop) rm -f "@STATE@/$node/$1";;
  status) if [ -e "@STATE@/$node/$1" ]; then echo running; else echo stopped; fi;;
esac
exit 0
`;

const until = (what: string, pred: () => boolean | Promise<boolean>, ms = 60_000): Promise<void> => waitFor(what, pred, ms, 200, { retryErrors: false }).then(() => {});

describe('mixed pair: a real heartbeat 3.0.6 node and a tandem node hand their groups over', function () {
  this.timeout(300_000);
  let topo: Topology;
  let dir: string;
  let real: ResultPromise | undefined;
  let holder: Spawned | undefined;
  let tandem: Spawned | undefined;

  const state = () => join(dir, 'state');
  const has = (node: string, g: string) => existsSync(join(state(), node, g));
  const trace = () => (existsSync(join(state(), 'trace')) ? readFileSync(join(state(), 'trace'), 'utf8').trim().split('\n').map((l) => l.split(' ')) : []);
  const realLog = () => (existsSync(join(dir, 'ha-log')) ? readFileSync(join(dir, 'ha-log'), 'utf8') : '');
  const tandemLog = () => (existsSync(join(dir, 'tandem', 'ha-log')) ? readFileSync(join(dir, 'tandem', 'ha-log'), 'utf8') : '');
  const inReal = (cmd: string, args: string[]) => execa('nsenter', ['-t', String(holder!.pid), '-m', '-u', '-n', cmd, ...args], { reject: false, timeout: 15_000 });
  const tandemSock = () => join(dir, 'tandem', 'hb.sock');

  /** The last stop of `g` on `from` happened before the last start of `g` on `to`. */
  function releasedBeforeAcquired(g: string, from: string, to: string): boolean {
    const t = trace();
    const lastStop = t.filter((l) => l[1] === from && l[2] === g && l[3] === 'stop').map((l) => BigInt(l[0]!)).at(-1);
    const lastStart = t.filter((l) => l[1] === to && l[2] === g && l[3] === 'start').map((l) => BigInt(l[0]!)).at(-1);
    return lastStop !== undefined && lastStart !== undefined && lastStop < lastStart;
  }

  function startTandem(): void {
    tandem = topo.spawn('tn', NODE, [TANDEM, '-f', '-l', '--config-dir', join(dir, 'tandem', 'ha.d'), '--socket', tandemSock(),
      '--pid-file', join(dir, 'tandem', 'hb.pid'), '--state-dir', join(dir, 'tandem', 'var')],
    { label: 'tandem', env: { TANDEM_RESOURCE_DIRS: join(dir, 'tandem', 'resource.d'), TANDEM_INIT_DIRS: '/nonexistent' } });
  }

  async function stopTandem(): Promise<void> {
    if (!tandem) return;
    process.kill(tandem.pid, 'SIGTERM');
    await Promise.race([tandem.proc.catch(() => undefined), new Promise((r) => setTimeout(r, 30_000))]);
    tandem = undefined;
  }

  before(async function () {
    if (!existsSync(REAL_HEARTBEAT)) throw new Error(`${REAL_HEARTBEAT} is missing: run bash test/install-deps.sh`);
    dir = mkdtempSync(join(tmpdir(), 'tandem-mixed-'));
    topo = new Topology(`m${Math.floor(Math.random() * 1e4)}`);
    await topo.build([{ name: 'hb', addresses: ['10.79.0.1/24'] }, { name: 'tn', addresses: ['10.79.0.2/24'] }]);
    mkdirSync(state(), { recursive: true });
    const agent = AGENT.replaceAll('@STATE@', state());
    const haresources = 'node1 rtrace::g1\nnode2 rtrace::g2\n';
    // The tandem node lists the peer first: its graceful stop must still get shutdone and status dead
    // out before the medium closes, or the real peer would take over only after deadtime.
    const hacf = (log: string, ucast: string[]) => [
      `logfile ${log}`, 'keepalive 500ms', 'deadtime 3', 'warntime 2', 'initdead 8', 'udpport 694',
      ...ucast.map((a) => `ucast eth0 ${a}`), 'auto_failback on', 'node node1', 'node node2',
    ];

    // The real node's private /etc/ha.d and /var/lib/heartbeat.
    cpSync('/etc/ha.d', join(dir, 'ha.d'), { recursive: true });
    cpSync('/var/lib/heartbeat', join(dir, 'lib'), { recursive: true });
    writeFileSync(join(dir, 'ha.d', 'ha.cf'), [...hacf(join(dir, 'ha-log'), ['10.79.0.1', '10.79.0.2']), 'realtime off', 'crm off', ''].join('\n'));
    writeFileSync(join(dir, 'ha.d', 'authkeys'), `auth 1\n1 sha1 ${SECRET}\n`);
    chmodSync(join(dir, 'ha.d', 'authkeys'), 0o600);
    writeFileSync(join(dir, 'ha.d', 'haresources'), haresources);
    writeFileSync(join(dir, 'ha.d', 'resource.d', 'rtrace'), agent);
    chmodSync(join(dir, 'ha.d', 'resource.d', 'rtrace'), 0o755);

    // The tandem node.
    const tconf = join(dir, 'tandem', 'ha.d');
    mkdirSync(tconf, { recursive: true });
    mkdirSync(join(dir, 'tandem', 'resource.d'), { recursive: true });
    writeFileSync(join(tconf, 'ha.cf'), [...hacf(join(dir, 'tandem', 'ha-log'), ['10.79.0.1', '10.79.0.2']), ''].join('\n'));
    writeFileSync(join(tconf, 'authkeys'), `auth 1\n1 sha1 ${SECRET}\n`);
    chmodSync(join(tconf, 'authkeys'), 0o600);
    writeFileSync(join(tconf, 'haresources'), haresources);
    writeFileSync(join(tconf, 'nodeinfo'), 'node2\n');
    writeFileSync(join(dir, 'tandem', 'resource.d', 'rtrace'), agent);
    chmodSync(join(dir, 'tandem', 'resource.d', 'rtrace'), 0o755);

    holder = topo.spawn('hb', 'unshare', ['--mount', '--uts', '--propagation', 'private', 'sleep', '900'], { label: 'holder' });
    await until('holder', () => existsSync(`/proc/${holder!.pid}/cmdline`) && readFileSync(`/proc/${holder!.pid}/cmdline`, 'utf8').startsWith('sleep'), 10_000);
    for (const [cmd, args] of [
      ['hostname', ['node1']],
      ['mount', ['-t', 'tmpfs', 'tmpfs', '/run']],
      ['mkdir', ['-p', '/run/heartbeat/ccm', '/run/heartbeat/crm', '/run/resource-agents']],
      ['chown', ['hacluster:haclient', '/run/heartbeat/ccm', '/run/heartbeat/crm']],
      ['mount', ['--bind', join(dir, 'ha.d'), '/etc/ha.d']],
      ['mount', ['--bind', join(dir, 'lib'), '/var/lib/heartbeat']],
    ] as [string, string[]][]) {
      const r = await inReal(cmd, args);
      assert.equal(r.exitCode, 0, `${cmd} ${args.join(' ')}: ${r.stderr}`);
    }
  });

  after(async () => {
    await stopTandem().catch(() => undefined);
    if (real?.pid && processAlive(real.pid)) {
      process.kill(real.pid, 'SIGTERM');
      await Promise.race([real, new Promise((r) => setTimeout(r, 20_000))]);
    }
    await topo?.close();
    if (!process.env.TANDEM_KEEP_TEST_DIR) rmSync(dir, { recursive: true, force: true });
  });

  it('start-up, hb_standby both ways, graceful stops both ways, and auto_failback', async () => {
    real = execa('nsenter', ['-t', String(holder!.pid), '-m', '-u', '-n', REAL_HEARTBEAT, '-f'], { reject: false, buffer: false, stdin: 'ignore', stdout: 'ignore', stderr: 'ignore' });
    startTandem();

    // Start-up: each node takes its own group (after heartbeat's RQSTDELAY).
    await until('g1 on the real node and g2 on tandem', () => has('node1', 'g1') && has('node2', 'g2'));
    assert.ok(!has('node2', 'g1') && !has('node1', 'g2'));
    await until('real rscstatus local', async () => (await inReal('/usr/bin/cl_status', ['rscstatus'])).stdout.trim() === 'local');
    await until('tandem rscstatus local', async () => (await execa(join(BIN, 'cl_status'), ['--socket', tandemSock(), 'rscstatus'], { reject: false })).stdout === 'local');

    // hb_standby on the real node: tandem takes g1, after the real node released it.
    assert.equal((await inReal('/usr/share/heartbeat/hb_standby', ['all'])).exitCode, 0);
    await until('g1 on tandem', () => has('node2', 'g1') && !has('node1', 'g1'));
    assert.ok(releasedBeforeAcquired('g1', 'node1', 'node2'), 'real released g1 before tandem acquired it');
    await until('tandem rscstatus all', async () => (await execa(join(BIN, 'cl_status'), ['--socket', tandemSock(), 'rscstatus'], { reject: false })).stdout === 'all');

    // hb_standby foreign on tandem: g1 goes back to the real node, after tandem released it.
    assert.equal((await execa(join(BIN, 'hb_standby'), ['--socket', tandemSock(), 'foreign'], { reject: false })).exitCode, 0);
    await until('g1 back on the real node', () => has('node1', 'g1') && !has('node2', 'g1'));
    assert.ok(releasedBeforeAcquired('g1', 'node2', 'node1'), 'tandem released g1 before real acquired it');

    // Graceful stop of tandem: the real node takes g2 at once.
    await stopTandem();
    await until('g2 on the real node', () => has('node1', 'g2'));
    assert.ok(!has('node2', 'g2'));
    assert.ok(releasedBeforeAcquired('g2', 'node2', 'node1'));
    assert.match(realLog(), /Received shutdown notice from 'node2'/);
    assert.doesNotMatch(realLog(), /node node2: is dead/);

    // Tandem comes back: auto_failback gives g2 back to it, released by the real node first.
    startTandem();
    await until('g2 back on tandem', () => has('node2', 'g2') && !has('node1', 'g2'), 90_000);
    assert.ok(releasedBeforeAcquired('g2', 'node1', 'node2'));
    assert.ok(has('node1', 'g1'));

    // Graceful stop of the real node: tandem takes g1 at once.
    process.kill(real.pid!, 'SIGTERM');
    await until('g1 on tandem after the real node stopped', () => has('node2', 'g1') && !has('node1', 'g1'));
    assert.ok(releasedBeforeAcquired('g1', 'node1', 'node2'));
    assert.match(tandemLog(), /Resources being acquired from node1/);
    assert.doesNotMatch(realLog(), /ERROR: .*(Both machines own|No one owns)/);
  });
});
