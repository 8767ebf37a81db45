import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryLogger, realClock } from '@tandem/core';
import { execa } from 'execa';
import { PingTracker, Pinger, RespawnPolicy, Respawner, isIpfail, pingInterval, spawnPing } from '../src/rm/index.ts';
import type { PingSpawner } from '../src/rm/pinger.ts';

describe('respawn and ping reachability', function () {
  this.timeout(30_000);

  it('restarts a program unless it exits 100, pausing longer while it keeps dying fast', () => {
    const p = new RespawnPolicy({ minUptimeMs: 10_000, baseDelayMs: 1000, maxDelayMs: 4000 });
    assert.deepEqual([1, 2, 3, 4].map(() => p.onExit(0, 100, 1).delayMs), [1000, 2000, 4000, 4000]);
    // A run longer than minUptime is a fresh start: no pause, and the back-off resets.
    assert.equal(p.onExit(0, 20_000, 1).delayMs, 0);
    assert.equal(p.onExit(0, 100, 1).delayMs, 1000);
    const stop = p.onExit(0, 100, 100);
    assert.equal(stop.restart, false);
    assert.match(stop.reason, /not respawned/);
    assert.ok(isIpfail('/usr/lib/heartbeat/ipfail'));
    assert.ok(!isIpfail('/usr/lib/heartbeat/ccm'));
  });

  it('supervises a real program: restarts it after a crash and stops when it exits 100', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'respawn-'));
    try {
      const prog = join(dir, 'prog');
      const count = join(dir, 'count');
      // Exits 1 twice, then 100.
      writeFileSync(prog, `#!/bin/sh\nn=$(cat ${count} 2>/dev/null || echo 0); n=$((n+1)); echo $n > ${count}\n[ $n -ge 3 ] && exit 100\nexit 1\n`);
      chmodSync(prog, 0o755);
      const log = new MemoryLogger();
      const r = new Respawner({ user: 'root', command: prog, args: [] }, { logger: log, clock: realClock, policy: { baseDelayMs: 20, maxDelayMs: 50 } });
      await r.start();
      for (let i = 0; i < 500 && r.lastExit?.restart !== false; i++) await new Promise((res) => setTimeout(res, 20));
      assert.equal(r.starts, 3);
      assert.equal(readFileSync(count, 'utf8').trim(), '3');
      assert.equal(r.lastExit?.restart, false);
      assert.match(log.text(), /exited with 1 after \d+ ms; respawning in 20 ms \(too fast\)/);
      await r.stop();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('tracks ping nodes and groups: up on any answer, dead after deadping', () => {
    const t = new PingTracker([{ name: 'group1', addresses: ['192.168.136.1', '192.168.136.2'] }, { name: '10.0.0.1', addresses: ['10.0.0.1'] }], 1000);
    assert.deepEqual(t.replied('group1', 0), [{ name: 'group1', up: true }]);
    assert.deepEqual(t.replied('group1', 500), []);
    assert.equal(t.nextDeadline(), 1500);
    assert.deepEqual(t.tick(1499), []);
    assert.deepEqual(t.tick(1500), [{ name: 'group1', up: false }]);
    assert.equal(t.isUp('10.0.0.1'), false);
    assert.deepEqual(t.replied('unknown', 0), []);
  });

  it('probes loopback with the system ping and reports it up', async () => {
    const calls: string[][] = [];
    const changes: string[] = [];
    const spawn: PingSpawner = (args) => {
      calls.push(args);
      return spawnPing(args);
    };
    const p = new Pinger({
      targets: [{ name: 'lo', addresses: ['127.0.0.1'] }], intervalMs: 200, deadpingMs: 2000, clock: realClock, spawn,
      onChange: (c) => changes.push(`${c.name} ${c.up ? 'up' : 'dead'}`),
    });
    p.start();
    for (let i = 0; i < 200 && changes.length === 0; i++) await new Promise((res) => setTimeout(res, 20));
    p.stop();
    assert.deepEqual(changes, ['lo up']);
    // One long-running ping per address, at the interval asked for.
    assert.deepEqual(calls, [['-n', '-i', '0.200', '-W', '2', '127.0.0.1']]);
  });

  it('stays up across many deadpings while echoes keep coming, and goes dead when they stop', async () => {
    const changes: string[] = [];
    const p = new Pinger({
      targets: [{ name: 'lo', addresses: ['127.0.0.1'] }], intervalMs: 50, deadpingMs: 400, clock: realClock,
      onChange: (c) => changes.push(`${c.name} ${c.up ? 'up' : 'dead'}`),
    });
    p.start();
    for (let i = 0; i < 200 && changes.length === 0; i++) await new Promise((res) => setTimeout(res, 20));
    // Stay up for several deadpings while echoes keep coming.
    await new Promise((res) => setTimeout(res, 1500));
    p.stop();
    assert.deepEqual(changes, ['lo up']);
    assert.equal(pingInterval(200, 1000), 200);
    assert.equal(pingInterval(1000, 1000), 250);
    assert.equal(pingInterval(5, 30_000), 20);
    assert.equal(pingInterval(2000, 30_000), 1000);

    // A ping that answers once and then falls silent: dead one deadping after the last reply.
    const silent: string[] = [];
    const q = new Pinger({
      targets: [{ name: 'gw', addresses: ['192.0.2.1'] }], intervalMs: 50, deadpingMs: 300, clock: realClock,
      spawn: () => execa('sh', ['-c', 'echo "64 bytes from 192.0.2.1: icmp_seq=1"; exec sleep 30'], { reject: false, buffer: false, stdin: 'ignore' }),
      onChange: (c) => silent.push(`${c.name} ${c.up ? 'up' : 'dead'}`),
    });
    q.start();
    for (let i = 0; i < 200 && silent.length < 2; i++) await new Promise((res) => setTimeout(res, 20));
    q.stop();
    assert.deepEqual(silent, ['gw up', 'gw dead']);
  });
});
