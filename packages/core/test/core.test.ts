import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ManualClock, parseDuration, splitConfigLines, didYouMean, parseBool, ProblemSink, ConfigError,
  runCommand, describeResult, requireSuccess, claimPidFile, removePidFile, readPidFile,
  startControlServer, controlRequest, Metrics, createLogger, MemoryLogger, formatProblem,
} from '@tandem/core';

describe('core: time units', () => {
  const cases: [string, number | undefined][] = [
    ['2', 2000], ['1.5', 1500], ['500ms', 500], ['500msec', 500], ['1500000us', 1500], ['2s', 2000],
    ['1min', 60000], ['100 MS', 100], ['20ms', 20], ['abc', undefined], ['', undefined], ['-1', undefined], ['2 weeks', undefined],
  ];
  for (const [text, ms] of cases) it(`${JSON.stringify(text)} → ${ms}`, () => assert.equal(parseDuration(text), ms));
  it('bare numbers can default to ms', () => assert.equal(parseDuration('250', { bareUnitMs: 1 }), 250));
});

describe('core: ManualClock', () => {
  it('fires timers in due order, ties in set order, including timers set while advancing', () => {
    const c = new ManualClock();
    const seen: string[] = [];
    c.setTimeout(() => seen.push('b@10'), 10);
    c.setTimeout(() => { seen.push('a@5'); c.setTimeout(() => seen.push('c@7'), 2); }, 5);
    c.setTimeout(() => seen.push('d@10'), 10);
    const h = c.setTimeout(() => seen.push('never'), 8);
    c.clearTimeout(h);
    c.advance(20);
    assert.deepEqual(seen, ['a@5', 'c@7', 'b@10', 'd@10']);
    assert.equal(c.now(), 20);
    assert.equal(c.pending, 0);
  });
});

describe('core: config lines', () => {
  it('keeps line numbers, strips comments, joins continuations, measures indent', () => {
    const lines = splitConfigLines('# c\nkeepalive 2 # two\n\n\tbcast eth0 \\\n eth1\n', 'ha.cf', { continuation: true });
    assert.deepEqual(lines.map((l) => [l.line, l.text, l.indent]), [[2, 'keepalive 2', 0], [4, 'bcast eth0   eth1', 8]]);
  });
  it('suggests close directives only', () => {
    assert.equal(didYouMean('keepalvie', ['keepalive', 'deadtime']), 'keepalive');
    assert.equal(didYouMean('zzz', ['keepalive', 'deadtime']), undefined);
  });
  it('parses booleans as the classic tools do', () => {
    assert.equal(parseBool('Yes'), true);
    assert.equal(parseBool('off'), false);
    assert.equal(parseBool('maybe'), undefined);
  });
  it('collects every problem and throws one ConfigError', () => {
    const sink = new ProblemSink('x.cf');
    sink.error('E_CONF_INVALID', 'first', { file: 'x.cf', line: 1, directive: 'a' });
    sink.warn('E_CONF_INVALID', 'careful', { file: 'x.cf', line: 2 });
    sink.error('E_CONF_INVALID', 'second', { file: 'x.cf', line: 3, directive: 'b' }, 'try c');
    assert.throws(() => sink.throwIfErrors(), (e: ConfigError) => e.problems.length === 3 && /x.cf:3: b: second \(try c\)/.test(e.report()));
    assert.equal(formatProblem(sink.problems[1]!), 'x.cf:2: warning: careful [E_CONF_INVALID]');
  });
});

describe('core: runCommand', () => {
  it('returns exit code and output without throwing', async () => {
    const r = await runCommand('sh', ['-c', 'echo out; echo err >&2; exit 3']);
    assert.equal(r.exitCode, 3);
    assert.equal(r.stdout, 'out\n');
    assert.equal(r.ok, false);
    assert.match(describeResult(r), /exit 3: err/);
    assert.throws(() => requireSuccess(r), { code: 'E_RUN_FAILED' });
  });
  it('kills a command at its timeout', async () => {
    const r = await runCommand('sleep', ['5'], { timeoutMs: 100 });
    assert.equal(r.timedOut, true);
    assert.ok(r.durationMs < 3000);
  });
  it('reports a command that cannot start', async () => {
    const r = await runCommand('/nonexistent/tandem-cmd', []);
    assert.equal(r.ok, false);
    assert.ok(r.spawnError);
  });
  it('feeds standard input', async () => {
    const r = await runCommand('cat', [], { input: 'abc' });
    assert.equal(r.stdout, 'abc');
  });
});

describe('core: pid file and control socket', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-core-'));
  it('refuses a pid file held by a live process and keeps it', () => {
    const p = join(dir, 'x.pid');
    writeFileSync(p, `${process.ppid}\n`);
    assert.throws(() => claimPidFile(p), { code: 'E_PIDFILE_RUNNING' });
    removePidFile(p);
    assert.equal(readPidFile(p), process.ppid);
    writeFileSync(p, '999999999\n');
    claimPidFile(p);
    assert.equal(readPidFile(p), process.pid);
    removePidFile(p);
    assert.equal(readPidFile(p), undefined);
  });
  it('answers JSON requests on a 0600 unix socket', async () => {
    const path = join(dir, 'ctl.sock');
    const srv = await startControlServer(path, (req) => (req.cmd === 'hello' ? { ok: true, hi: req.name } : { ok: false, error: 'unknown' }));
    try {
      assert.deepEqual(await controlRequest(path, { cmd: 'hello', name: 'x' }), { ok: true, hi: 'x' });
      assert.equal((await controlRequest(path, { cmd: 'nope' })).ok, false);
    } finally {
      await srv.close();
      await srv.close();
    }
  });
});

describe('core: metrics and logging', () => {
  it('renders Prometheus text', () => {
    const m = new Metrics();
    m.inc('tandem_packets_dropped_total', 'dropped packets', { reason: 'bad_auth' });
    m.inc('tandem_packets_dropped_total', 'dropped packets', { reason: 'bad_auth' });
    m.set('tandem_up', 'up', 1);
    assert.match(m.render(), /tandem_packets_dropped_total\{reason="bad_auth"\} 2/);
    assert.equal(m.get('tandem_up'), 1);
  });
  it('writes the classic line format to logfile', async () => {
    const dir2 = mkdtempSync(join(tmpdir(), 'tandem-log-'));
    const file = join(dir2, 'ha-log');
    const log = createLogger({ ident: 'heartbeat', logfile: file });
    log.info('Node backup: status dead');
    log.debug('hidden');
    await log.close();
    const text = readFileSync(file, 'utf8');
    assert.match(text, /^heartbeat\[\d+\]: \d{4}\/\d\d\/\d\d_\d\d:\d\d:\d\d info: Node backup: status dead$/m);
    assert.doesNotMatch(text, /hidden/);
    const mem = new MemoryLogger();
    mem.warn('x');
    assert.equal(mem.text(), 'warn: x');
  });
});
