/**
 * The ipvsadm and ldirectord agents of resource.d, run as real processes against commands that
 * keep their state in files: this kernel has no IPVS, so the ipvsadm the agent drives is a small
 * stand-in with ipvsadm's -R / -S -n / -D interface (IPVSADM points the agent at it, as it points
 * it at tandem-ipvsadm in production), and ldirectord is one with ldirectord's start/stop/status.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { FIXTURES } from './fixtures/paths.ts';

const RD = fileURLToPath(new URL('../resource.d/', import.meta.url));

const FAKE_IPVSADM = `#!/bin/sh
echo "ipvsadm $*" >> "$CALLS"
touch "$STATE"
case "$1" in
  -S|-Sn) cat "$STATE"; exit 0;;
  -R)
    while read -r op proto addr rest; do
      case "$op" in
        -A) if grep -q -- "^-A $proto $addr " "$STATE"; then echo "Service already exists" >&2; exit 1; fi
            echo "-A $proto $addr $rest" >> "$STATE";;
        -a) grep -q -- "^-A $proto $addr " "$STATE" || { echo "No such service" >&2; exit 1; }
            echo "-a $proto $addr $rest" >> "$STATE";;
      esac
    done; exit 0;;
  -D) grep -q -- "^-A $2 $3 " "$STATE" || { echo "No such service" >&2; exit 1; }
      grep -v -- "^-[Aa] $2 $3 " "$STATE" > "$STATE.new"; mv "$STATE.new" "$STATE"; exit 0;;
esac
exit 2
`;

const FAKE_LDIRECTORD = `#!/bin/sh
echo "ldirectord $*" >> "$CALLS"
eval "action=\\\${$#}"
case "$action" in
  start) : > "$STATE"; exit 0;;
  stop) [ -e "$STATE" ] || exit 1; rm -f "$STATE"; exit 0;;
  status) [ -e "$STATE" ] && { echo "ldirectord for $1 is running"; exit 0; }; echo "ldirectord is stopped"; exit 3;;
esac
exit 2
`;

describe('ipvsadm and ldirectord agents', () => {
  let dir: string;
  let env: Record<string, string>;
  const run = (name: string, args: string[]) => execa(`${RD}${name}`, args, { reject: false, env });
  const state = () => readFileSync(env.STATE!, 'utf8');
  const calls = () => readFileSync(env.CALLS!, 'utf8').trim().split('\n');

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'agents-'));
    for (const [n, body] of [['fake-ipvsadm', FAKE_IPVSADM], ['fake-ldirectord', FAKE_LDIRECTORD]] as const) {
      writeFileSync(join(dir, n), body);
      chmodSync(join(dir, n), 0o755);
    }
    env = { STATE: join(dir, 'state'), CALLS: join(dir, 'calls'), IPVSADM: join(dir, 'fake-ipvsadm'), TANDEM_LDIRECTORD: join(dir, 'fake-ldirectord') };
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('ipvsadm restores the seed rules file, reports running, and stop removes exactly its services', async () => {
    const rules = `${FIXTURES}/examples/sysconfig-ipvsadm`;
    // A service that is not in the file must survive the stop.
    writeFileSync(env.STATE!, '-A -t 10.0.0.1:25 -s wlc\n');
    assert.equal(String((await run('ipvsadm', [rules, 'status'])).stdout).trim(), 'stopped');
    const up = await run('ipvsadm', [rules, 'start']);
    assert.equal(up.exitCode, 0, String(up.stderr));
    assert.match(state(), /^-A -t 192\.168\.136\.10:80 -s rr$/m);
    assert.equal(state().split('\n').filter((l) => l.startsWith('-a -t 192.168.136.10:80')).length, 5);
    const st = await run('ipvsadm', [rules, 'status']);
    assert.equal(String(st.stdout).trim(), 'running');
    assert.equal(st.exitCode, 0);
    // A second start leaves exactly the saved table (the service is replaced, not doubled).
    assert.equal((await run('ipvsadm', [rules, 'start'])).exitCode, 0);
    assert.equal(state().split('\n').filter((l) => l.startsWith('-A -t 192.168.136.10:80')).length, 1);
    const down = await run('ipvsadm', [rules, 'stop']);
    assert.equal(down.exitCode, 0, String(down.stderr));
    assert.equal(state(), '-A -t 10.0.0.1:25 -s wlc\n');
    assert.ok(calls().includes('ipvsadm -D -t 192.168.136.10:80'));
    // Stopping what is stopped succeeds and touches nothing.
    assert.equal((await run('ipvsadm', [rules, 'stop'])).exitCode, 0);
    assert.equal(String((await run('ipvsadm', [rules, 'status'])).stdout).trim(), 'stopped');
  });

  it('ipvsadm reports a restore failure with the command\'s message, and a missing rules file', async () => {
    const bad = join(dir, 'bad-rules');
    writeFileSync(bad, '-a -t 10.9.9.9:80 -r 10.0.0.2:80 -g\n');
    const r = await run('ipvsadm', [bad, 'start']);
    assert.equal(r.exitCode, 1);
    assert.match(String(r.stderr), /-R < .*bad-rules failed: No such service/);
    const missing = await run('ipvsadm', [join(dir, 'nope'), 'status']);
    assert.equal(missing.exitCode, 1);
    assert.match(String(missing.stderr), /cannot read rules file/);
  });

  it('ldirectord passes its config file, prints running/stopped, and stop of a stopped one succeeds', async () => {
    assert.equal(String((await run('ldirectord', ['ldirectord.cf', 'status'])).stdout).trim(), 'stopped');
    assert.equal((await run('ldirectord', ['ldirectord.cf', 'start'])).exitCode, 0);
    const st = await run('ldirectord', ['ldirectord.cf', 'status']);
    assert.equal(String(st.stdout).trim(), 'running');
    assert.equal(st.exitCode, 0);
    assert.equal((await run('ldirectord', ['ldirectord.cf', 'stop'])).exitCode, 0);
    assert.equal((await run('ldirectord', ['ldirectord.cf', 'stop'])).exitCode, 0);
    assert.equal((await run('ldirectord', ['start'])).exitCode, 0);
    assert.deepEqual(calls().filter((c) => / (start|stop)$/.test(c)), [
      'ldirectord ldirectord.cf start', 'ldirectord ldirectord.cf stop', 'ldirectord ldirectord.cf stop', 'ldirectord start',
    ]);
    env.TANDEM_LDIRECTORD = join(dir, 'missing');
    const r = await run('ldirectord', ['status']);
    assert.equal(r.exitCode, 5);
    assert.match(String(r.stderr), /not found/);
  });

  it('Delay waits on start and stop and reports running in between', async () => {
    const e = { ...env, HA_RSCTMP: join(dir, 'rsctmp') };
    const d = (args: string[]) => execa(`${RD}Delay`, args, { reject: false, env: e });
    assert.equal(String((await d(['0.2', '0.1', 'status'])).stdout).trim(), 'stopped');
    const t0 = process.hrtime.bigint();
    assert.equal((await d(['0.2', '0.1', 'start'])).exitCode, 0);
    assert.ok(process.hrtime.bigint() - t0 >= 200_000_000n, 'it waited its start delay');
    assert.equal(String((await d(['0.2', '0.1', 'status'])).stdout).trim(), 'running');
    assert.equal((await d(['0.2', '0.1', 'stop'])).exitCode, 0);
    assert.equal((await d(['0.2', '0.1', 'status'])).exitCode, 3);
    assert.equal((await d(['x', 'start'])).exitCode, 2);
  });
});
