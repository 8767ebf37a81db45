import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryLogger, realClock, type CommandRunner } from '@tandem/core';
import { PingTracker, Pinger, RespawnPolicy, Respawner, isIpfail } from '../src/rm/index.ts';

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
    const calls: string[] = [];
    const changes: string[] = [];
    const real: CommandRunner = (await import('@tandem/core')).runCommand;
    const run: CommandRunner = (cmd, args, o) => {
      calls.push(args.at(-1)!);
      return real(cmd, args, o);
    };
    const p = new Pinger({
      targets: [{ name: 'lo', addresses: ['127.0.0.1'] }], intervalMs: 200, deadpingMs: 2000, clock: realClock, run,
      onChange: (c) => changes.push(`${c.name} ${c.up ? 'up' : 'dead'}`),
    });
    p.start();
    for (let i = 0; i < 200 && changes.length === 0; i++) await new Promise((res) => setTimeout(res, 20));
    p.stop();
    assert.deepEqual(changes, ['lo up']);
    assert.ok(calls.every((a) => a === '127.0.0.1'));
  });
});
