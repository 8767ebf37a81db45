import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryLogger, ProblemSink, processAlive } from '@tandem/core';
import { AgentRunner, checkAgents, parseHaresources, type ResourceGroup } from '../src/index.ts';

/**
 * Fixture agents write one trace line per call (`name args... action`) and keep their "running"
 * state as a file, so ordering, rollback and status are observed from real processes.
 */
const HB_AGENT = `#!/bin/sh
# heartbeat-style fixture: trace NAME [mode] {start|stop|status}
name=$1; shift
mode=""; [ $# -ge 2 ] && { mode=$1; shift; }
echo "$name $mode $1" | sed 's/  / /' >> "$TRACE"
state="$STATE_DIR/$name"
case "$1" in
  start)
    case "$mode" in
      failstart) echo "cannot start $name: port in use" >&2; exit 7;;
      slow) sleep 30 & echo $! > "$STATE_DIR/sleeper.pid"; wait;;
      daemon) sleep 30 & echo $! > "$STATE_DIR/daemon.pid";;
    esac
    : > "$state"; echo "started $name";;
  stop)
    case "$mode" in
      failstop) exit 1;;
      flakystop) n=$(cat "$state.n" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$state.n"; [ $n -lt 3 ] && exit 1;;
    esac
    rm -f "$state";;
  status)
    if [ -e "$state" ]; then echo "$name is running"; else echo "$name is stopped"; fi;;
esac
exit 0
`;

const LSB_SCRIPT = `#!/bin/sh
echo "svc $*" >> "$TRACE"
case "$1" in
  start) : > "$STATE_DIR/svc";;
  stop) rm -f "$STATE_DIR/svc";;
  status) [ -e "$STATE_DIR/svc" ] && { echo "svc is running"; exit 0; }; echo "svc is stopped"; exit 3;;
  *) exit 2;;
esac
`;

const OCF_AGENT = `#!/bin/sh
echo "dummy $1 state=$OCF_RESKEY_state instance=$OCF_RESOURCE_INSTANCE root=$OCF_ROOT" >> "$TRACE"
case "$1" in
  start) : > "$OCF_RESKEY_state"; exit 0;;
  stop) rm -f "$OCF_RESKEY_state"; exit 0;;
  monitor) [ -e "$OCF_RESKEY_state" ] && exit 0; exit 7;;
esac
exit 3
`;

describe('agent runner (fixture scripts, real processes)', function () {
  this.timeout(60_000);
  let dir: string;
  let trace: string;
  let stateDir: string;
  let runner: AgentRunner;
  let log: MemoryLogger;

  const group = (line: string): ResourceGroup => parseHaresources(line, 'haresources').groups[0]!;
  const calls = () => (existsSync(trace) ? readFileSync(trace, 'utf8').trim().split('\n') : []);

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'runner-'));
    trace = join(dir, 'trace');
    stateDir = join(dir, 'state');
    mkdirSync(stateDir);
    for (const d of ['resource.d', 'init.d', 'ocf/resource.d/test']) mkdirSync(join(dir, d), { recursive: true });
    const put = (p: string, body: string) => { writeFileSync(join(dir, p), body); chmodSync(join(dir, p), 0o755); };
    put('resource.d/trace', HB_AGENT);
    put('init.d/svc', LSB_SCRIPT);
    put('init.d/trace', '#!/bin/sh\necho "init.d trace must not run" >> "$TRACE"\n');
    put('ocf/resource.d/test/dummy', OCF_AGENT);
    writeFileSync(join(dir, 'resource.d/not-executable'), '#!/bin/sh\n');
    log = new MemoryLogger();
    runner = new AgentRunner({
      resourceDirs: [join(dir, 'resource.d')], initDirs: [join(dir, 'init.d')], ocfRoot: join(dir, 'ocf'),
      env: { TRACE: trace, STATE_DIR: stateDir }, stopRetryDelayMs: 10, logger: log,
    });
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('starts a group left to right with a status check before each start, and stops it right to left', async () => {
    const g = group('node1 trace::first::x trace::second trace::third\n');
    const started = await runner.startGroup(g);
    assert.equal(started.ok, true);
    assert.deepEqual(calls(), [
      'first x status', 'first x start', 'second status', 'second start', 'third status', 'third start',
    ]);
    rmSync(trace);
    const stopped = await runner.stopGroup(g);
    assert.equal(stopped.ok, true);
    assert.deepEqual(calls(), ['third stop', 'second stop', 'first x stop']);
    assert.match(log.text(), /Running .*resource\.d\/trace first x start/);
  });

  it('does not start a resource that already reports running', async () => {
    writeFileSync(join(stateDir, 'second'), '');
    const r = await runner.startGroup(group('node1 trace::first trace::second\n'));
    assert.equal(r.ok, true);
    assert.deepEqual(calls(), ['first status', 'first start', 'second status']);
  });

  it('rolls back what it started, right to left, when a start fails, and reports exit code and output', async () => {
    const g = group('node1 trace::first trace::second::failstart trace::third\n');
    const r = await runner.startGroup(g);
    assert.equal(r.ok, false);
    assert.equal(r.failed?.exitCode, 7);
    assert.match(r.failed?.output ?? '', /cannot start second: port in use/);
    assert.match(r.failed?.error ?? '', /exit 7: cannot start second/);
    assert.deepEqual(r.rolledBack, ['trace::second::failstart', 'trace::first']);
    assert.deepEqual(calls(), ['first status', 'first start', 'second failstart status', 'second failstart start', 'second failstart stop', 'first stop']);
    assert.equal(existsSync(join(stateDir, 'first')), false, 'first was stopped again');
    assert.match(log.text(), /Giving up resources due to failure of trace::second::failstart/);
  });

  it('kills an agent that outlives its timeout and reports it', async () => {
    const quick = new AgentRunner({
      resourceDirs: [join(dir, 'resource.d')], initDirs: [], ocfRoot: join(dir, 'ocf'),
      env: { TRACE: trace, STATE_DIR: stateDir }, timeouts: { start: 300 },
    });
    const r = await quick.startGroup(group('node1 trace::a::slow\n'));
    assert.equal(r.ok, false);
    assert.equal(r.failed?.timedOut, true);
    assert.match(r.failed?.error ?? '', /timed out after 300 ms/);
    // The script's own child (the sleep) went with it: the whole process group was killed.
    const sleeper = Number(readFileSync(join(stateDir, 'sleeper.pid'), 'utf8'));
    let alive = true;
    for (let i = 0; i < 100 && alive; i++) {
      alive = processAlive(sleeper);
      if (alive) await new Promise((res) => setTimeout(res, 50));
    }
    assert.equal(alive, false, 'the agent\'s child was killed with it');
  });

  it('finishes when the script exits even though the daemon it started keeps stdout open', async () => {
    const r = await runner.startGroup(group('node1 trace::d::daemon\n'));
    assert.equal(r.ok, true);
    assert.match(r.steps.at(-1)!.output, /started d/);
    const pid = Number(readFileSync(join(stateDir, 'daemon.pid'), 'utf8'));
    assert.equal(processAlive(pid), true, 'the daemon still runs after the start returned');
    process.kill(pid, 'SIGKILL');
  });

  it('runs LSB init scripts with exit-code status (0 running, 3 stopped); resource.d wins over init.d', async () => {
    const svc = group('node1 svc\n').resources[0]!;
    assert.equal(runner.resolve(svc).kind, 'lsb');
    assert.equal((await runner.status(svc)).running, false);
    assert.equal((await runner.run(svc, 'start')).ok, true);
    const st = await runner.status(svc);
    assert.equal(st.running, true);
    assert.equal(st.exitCode, 0);
    assert.equal(runner.resolve(group('node1 trace\n').resources[0]!).kind, 'heartbeat');
    assert.ok(!calls().some((l) => l.includes('init.d trace')));
  });

  it('runs OCF agents with OCF_RESKEY_ variables, OCF_ROOT, monitor for status (7 = stopped)', async () => {
    const state = join(stateDir, 'ocfstate');
    const g = group(`node1 ocf:test:dummy::state=${state}\n`);
    const r = g.resources[0]!;
    assert.equal(runner.resolve(r).kind, 'ocf');
    assert.equal((await runner.status(r)).running, false);
    assert.equal((await runner.startGroup(g)).ok, true);
    assert.equal((await runner.status(r)).running, true);
    assert.ok(calls().some((l) => l.startsWith(`dummy start state=${state} instance=ocf_test_dummy__state_`) && l.endsWith(`root=${join(dir, 'ocf')}`)), calls().join('\n'));
    // Found without the ocf: prefix too, after resource.d and init.d.
    assert.equal(runner.resolve(group(`node1 dummy::state=${state}\n`).resources[0]!).kind, 'ocf');
    const bad = await runner.run(group('node1 ocf:test:dummy::positional\n').resources[0]!, 'start');
    assert.equal(bad.ok, false);
    assert.match(bad.error ?? '', /must be name=value/);
  });

  it('reports a missing or non-executable agent with the directories searched and a near name', async () => {
    const r = group('node1 trac\n').resources[0]!;
    assert.throws(() => runner.resolve(r), (e: Error & { code?: string; hint?: string }) => e.code === 'E_RSC_NOT_FOUND' && /did you mean "trace"/.test(e.hint ?? ''));
    const res = await runner.startGroup(group('node1 not-executable\n'));
    assert.equal(res.ok, false);
    assert.match(res.failed?.error ?? '', /no executable agent "not-executable"/);
  });

  it('retries a failing stop, and judges a stop that keeps failing by status', async () => {
    const flaky = group('node1 trace::f::flakystop\n');
    await runner.startGroup(flaky);
    rmSync(trace);
    const r = await runner.stopGroup(flaky);
    assert.equal(r.ok, true);
    assert.deepEqual(calls(), ['f flakystop stop', 'f flakystop stop', 'f flakystop stop']);

    const stuck = group('node1 trace::s::failstop\n');
    await runner.startGroup(stuck);
    const r2 = await new AgentRunner({ resourceDirs: [join(dir, 'resource.d')], initDirs: [], env: { TRACE: trace, STATE_DIR: stateDir }, stopRetries: 2, stopRetryDelayMs: 10 }).stopGroup(stuck);
    assert.equal(r2.ok, false, 'still running after every retry');
    assert.equal(r2.failed?.exitCode, 1);
  });

  it('reports a group status as ALL, SOME or NONE', async () => {
    const g = group('node1 trace::a trace::b\n');
    assert.equal((await runner.statusGroup(g)).state, 'NONE');
    writeFileSync(join(stateDir, 'a'), '');
    assert.equal((await runner.statusGroup(g)).state, 'SOME');
    writeFileSync(join(stateDir, 'b'), '');
    const all = await runner.statusGroup(g);
    assert.equal(all.state, 'ALL');
    assert.match(all.resources[0]!.output, /a is running/);
  });

  it('checks that every agent of haresources exists, as warnings with file:line', () => {
    const res = parseHaresources('node1 trace svc\nnode2 trac ocf:test:dummy::state=x\n', 'haresources');
    const sink = new ProblemSink('haresources');
    assert.equal(checkAgents(res.groups, runner, sink), 1);
    assert.deepEqual(sink.problems.map((p) => [p.severity, p.code, p.location?.line]), [['warning', 'E_HARES_AGENT_NOT_FOUND', 2]]);
    assert.match(sink.problems[0]!.hint ?? '', /did you mean "trace"/);
  });
});
