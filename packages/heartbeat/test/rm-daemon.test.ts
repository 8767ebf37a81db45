/**
 * The resource manager plugged into two real in-process heartbeat daemons (in-memory media, real
 * timers, real control sockets), running real agent processes: groups start, move with hb_standby
 * and hb_takeover over the control socket, move at once on a graceful stop, come back with
 * auto_failback, and a failing start is rolled back.
 */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryLogger, controlRequest } from '@tandem/core';
import { AgentRunner, parseHaresources } from '@tandem/resources';
import { HeartbeatDaemon } from '../src/daemon.ts';
import { MemoryNetwork } from '../src/media/memory.ts';
import { HaresourcesManager } from '../src/rm/index.ts';
import type { AuthKeys } from '../src/types.ts';
import { waitFor } from '../../../test/lab/ports.ts';

const keys: AuthKeys = { active: 1, keys: new Map([[1, { method: 'sha1', secret: 'rm-test' }]]) };
const timing = { keepaliveMs: 50, deadtimeMs: 1500, warntimeMs: 500, initdeadMs: 3000 };

const AGENT = `#!/bin/sh
# fixture agent: svc NAME {start|stop|status}; state in $STATE_DIR; fails to start when $STATE_DIR/NAME.fail exists
echo "$(date +%s.%N) $*" >> "$STATE_DIR/trace"
case "$2" in
  start) [ -e "$STATE_DIR/$1.fail" ] && { echo "cannot start $1" >&2; exit 1; }; : > "$STATE_DIR/$1";;
  stop) rm -f "$STATE_DIR/$1";;
  status) [ -e "$STATE_DIR/$1" ] && echo running || echo stopped;;
esac
exit 0
`;

const until = (what: string, cond: () => boolean, ms = 20_000): Promise<void> => waitFor(what, cond, ms, 20, { retryErrors: false }).then(() => {});

describe('resource manager in two in-process heartbeat daemons', function () {
  this.timeout(90_000);
  let dir: string;
  let net: MemoryNetwork;
  const daemons = new Map<string, HeartbeatDaemon>();
  const logs = new Map<string, MemoryLogger>();

  const haresources = 'node1 svc::web svc::db\nnode2 svc::mail\n';
  const groups = parseHaresources(haresources, 'haresources', { nodes: ['node1', 'node2'] }).groups;
  const stateDir = (n: string) => join(dir, n, 'state');
  const has = (n: string, r: string) => existsSync(join(stateDir(n), r));
  const sock = (n: string) => join(dir, n, 'hb.sock');

  async function start(name: string, mode: 'on' | 'off' | 'legacy' = 'on'): Promise<HeartbeatDaemon> {
    const logger = new MemoryLogger();
    logs.set(name, logger);
    const runner = new AgentRunner({ resourceDirs: [join(dir, 'resource.d')], initDirs: [], env: { STATE_DIR: stateDir(name) }, logger });
    const rm = new HaresourcesManager({
      localNode: name, nodes: ['node1', 'node2'], groups, autoFailback: mode, runner, logger, keepaliveMs: timing.keepaliveMs,
      machine: { rqstDelayMs: 300, failedStartStandbyDelayMs: 500 },
    });
    const d = new HeartbeatDaemon({
      config: { nodeName: name, nodes: ['node1', 'node2'], timing, authKeys: keys },
      media: [net.medium(name, 'eth0')], logger, resourceManager: rm, controlSocket: sock(name), stateDir: join(dir, name, 'var'),
    });
    daemons.set(name, d);
    await d.start();
    return d;
  }

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'rm-daemon-'));
    mkdirSync(join(dir, 'resource.d'));
    writeFileSync(join(dir, 'resource.d', 'svc'), AGENT);
    chmodSync(join(dir, 'resource.d', 'svc'), 0o755);
    for (const n of ['node1', 'node2']) mkdirSync(stateDir(n), { recursive: true });
    net = new MemoryNetwork();
  });
  afterEach(async () => {
    for (const d of daemons.values()) await d.stop().catch(() => undefined);
    daemons.clear();
    rmSync(dir, { recursive: true, force: true });
  });

  const rscstatus = (n: string) => daemons.get(n)!.status().resources;

  it('starts each node\'s groups, moves them with hb_standby and hb_takeover, and hands over at once on a graceful stop', async () => {
    await Promise.all([start('node1'), start('node2')]);
    await until('initial groups', () => has('node1', 'web') && has('node1', 'db') && has('node2', 'mail'));
    await until('stable rscstatus', () => rscstatus('node1') === 'local' && rscstatus('node2') === 'local');
    // Started left to right: web before db.
    const trace = readFileSync(join(stateDir('node1'), 'trace'), 'utf8');
    assert.ok(trace.indexOf('web start') < trace.indexOf('db start'));

    const r = await controlRequest(sock('node1'), { cmd: 'standby', resources: 'all' }, 5000);
    assert.equal(r.ok, true);
    await until('node2 holds all', () => has('node2', 'web') && has('node2', 'db') && !has('node1', 'web') && !has('node1', 'db'));
    await until('rscstatus after standby', () => rscstatus('node1') === 'none' && rscstatus('node2') === 'all');
    // Released right to left: db before web.
    const t1 = readFileSync(join(stateDir('node1'), 'trace'), 'utf8');
    assert.ok(t1.lastIndexOf('db stop') < t1.lastIndexOf('web stop'));

    assert.equal((await controlRequest(sock('node1'), { cmd: 'takeover', resources: 'foreign' }, 5000)).ok, true);
    // takeover foreign from node1: node2 goes standby [local]: mail moves to node1, web and db stay.
    await until('node1 holds mail', () => has('node1', 'mail') && !has('node2', 'mail'));
    assert.ok(has('node2', 'web') && has('node2', 'db'));
    assert.equal((await controlRequest(sock('node1'), { cmd: 'takeover', resources: 'all' }, 5000)).ok, true);
    await until('node1 holds all', () => has('node1', 'web') && has('node1', 'db') && has('node1', 'mail') && !has('node2', 'web'));

    await daemons.get('node1')!.stop();
    await until('node2 took over after node1 stopped', () => has('node2', 'web') && has('node2', 'db') && has('node2', 'mail'));
    assert.ok(!has('node1', 'web') && !has('node1', 'db') && !has('node1', 'mail'), 'node1 released everything before it went');
    const log2 = logs.get('node2')!.text();
    assert.ok(log2.includes('Resources being acquired from node1.'));
    assert.ok(!log2.includes('node node1: is dead'), 'taken over on the shutdown notice, not after deadtime');
  });

  it('auto_failback on: a returning node gets its groups back from the peer', async () => {
    await Promise.all([start('node1'), start('node2')]);
    await until('initial groups', () => has('node1', 'web') && has('node2', 'mail'));
    await daemons.get('node1')!.stop();
    await until('node2 holds all', () => has('node2', 'web') && has('node2', 'db'));
    await start('node1');
    await until('web and db back on node1', () => has('node1', 'web') && has('node1', 'db') && !has('node2', 'web') && !has('node2', 'db'));
    assert.ok(has('node2', 'mail'));
    await until('stable', () => rscstatus('node1') === 'local' && rscstatus('node2') === 'local');
  });

  it('a start that fails is rolled back and the group is offered to the peer', async () => {
    writeFileSync(join(stateDir('node1'), 'db.fail'), '');
    await Promise.all([start('node1'), start('node2')]);
    await until('node2 holds web and db', () => has('node2', 'web') && has('node2', 'db'), 30_000);
    assert.ok(!has('node1', 'web'), 'web was rolled back on node1');
    const log = logs.get('node1')!.text();
    assert.match(log, /Giving up resources due to failure of svc::db/);
    assert.match(log, /exit 1: cannot start db/);
  });
});
