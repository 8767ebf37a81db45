/**
 * cl_status, hb_standby/hb_takeover and `heartbeat -s` texts against the real tool's transcript
 * (reference/heartbeat-wire/cli-transcript.txt): the same cluster described as a status object must
 * print the same bytes and exit codes.
 */
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { clStatus, parseStandbyArgs, heartbeatStatusLine, CL_STATUS_USAGE, clLogLine, type DaemonStatus } from '../src/control.ts';
import { FIXTURES } from '../../../test/fixtures/paths.ts';

const TRANSCRIPT = `${FIXTURES}/reference/heartbeat-wire/cli-transcript.txt`;

/** The transcript's node1, as tandem's daemon reports it. */
const node1: DaemonStatus = {
  version: '3.0.6', pid: 13092, node: 'node1', lifecycle: 'running', localState: 'active', generation: 1, managedBy: 'haresources',
  resources: 'local',
  nodes: [
    { name: 'node1', type: 'normal', state: 'active', generation: 1, lastSeq: 1, lastHeard: 0, deadtimeMs: 5000, links: [{ name: 'eth0', state: 'up', lastHeard: 0 }] },
    { name: 'node2', type: 'normal', state: 'active', generation: 1, lastSeq: 1, lastHeard: 0, deadtimeMs: 5000, links: [{ name: 'eth0', state: 'up', lastHeard: 0 }] },
    { name: '10.214.9.100', type: 'ping', state: 'ping', generation: undefined, lastSeq: undefined, lastHeard: 0, deadtimeMs: 5000, links: [{ name: '10.214.9.100', state: 'up', lastHeard: 0 }] },
  ],
  parameters: {
    keepalive: '1', deadtime: '5', warntime: '2500ms', initdead: '10', deadping: '5000ms', udpport: '694', auto_failback: 'on',
    hbversion: '3.0.6 (node: 958e11be8686759f1b99204c17812f2c2633b169)', baud: '19200', debug: '0', logfile: '/tmp/hbpeer/node1/ha-log', msgfmt: 'classic',
  },
  drops: {}, eventLoopDelayMs: { p50: 0, p99: 0, max: 0 }, keepaliveSendLateMaxMs: 0,
};

interface Case { argv: string[]; out: string; code: number }

/** Parses `$ [node1] cl_status ARGS` blocks of the transcript: output lines, then `[exit N]`. */
function transcriptCases(text: string, tool: string): Case[] {
  const out: Case[] = [];
  const blocks = text.split(/\n(?=\$ \[)/);
  for (const b of blocks) {
    const m = /^\$ \[node1\] (\S+)(.*)\n([\s\S]*?)\[exit (\d+)\]/.exec(b);
    if (!m || !m[1]!.endsWith(tool)) continue;
    out.push({ argv: m[2]!.trim().split(/\s+/).filter(Boolean), out: m[3]!, code: Number(m[4]) });
  }
  return out;
}

describe('cl_status against the real transcript', () => {
  const transcript = readFileSync(TRANSCRIPT, 'utf8');

  it('prints what the real cl_status printed on node1, byte for byte, with its exit codes', () => {
    const cases = transcriptCases(transcript, 'cl_status');
    assert.ok(cases.length >= 25, `only ${cases.length} cases parsed`);
    let compared = 0;
    for (const c of cases) {
      const r = clStatus(c.argv, node1);
      if (/ERROR: /.test(c.out)) {
        // cl_log lines carry a date, host and pid: compare the message part.
        const want = c.out.split('\n').filter(Boolean).map((l) => l.replace(/^.*?cl_status: \[\d+\]: /, ''));
        const got = r.stderr.split('\n').filter(Boolean).map((l) => l.replace(/^.*?cl_status: \[\d+\]: /, ''));
        assert.deepEqual(got, want, `cl_status ${c.argv.join(' ')}`);
      } else {
        assert.equal(r.stdout, c.out, `cl_status ${c.argv.join(' ')}`);
      }
      assert.equal(r.code, c.code, `exit code of cl_status ${c.argv.join(' ')}`);
      compared++;
    }
    assert.equal(compared, cases.length);
    assert.ok(cases.some((c) => c.argv.join(' ') === 'hbstatus -v'), 'the verbose listing is among them');
  });

  it('usage without a sub-command is the real one', () => {
    assert.equal(clStatus([], undefined).stdout, CL_STATUS_USAGE);
    assert.ok(transcript.includes(CL_STATUS_USAGE));
  });

  it('when heartbeat is not running: hbstatus says so (exit 2), other sub-commands fail (exit 1)', () => {
    assert.deepEqual(clStatus(['hbstatus'], undefined), { stdout: 'Heartbeat is stopped on this machine.\n', stderr: '', code: 2 });
    const r = clStatus(['nodestatus', 'node2'], undefined);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /ERROR: Cannot signon with heartbeat/);
  });

  it('rscstatus -m, link status of a dead link, an unknown link', () => {
    assert.equal(clStatus(['rscstatus', '-m'], { ...node1, resources: 'all' }).stdout, 'This node is holding all resources.\n');
    const dead = { ...node1, nodes: node1.nodes.map((n) => (n.name === 'node2' ? { ...n, state: 'dead' as const, links: [{ name: 'eth0', state: 'dead' as const, lastHeard: 0 }] } : n)) };
    assert.equal(clStatus(['hblinkstatus', 'node2', 'eth0'], dead).stdout, 'dead\n');
    assert.equal(clStatus(['nodestatus', 'node2'], dead).stdout, 'dead\n');
    assert.equal(clStatus(['hblinkstatus', 'node2', 'eth9'], node1).code, 11);
  });

  it('the cl_log line format', () => {
    assert.equal(clLogLine('x', new Date(2026, 10, 22, 10, 3, 48), 'node1', 18024), 'Nov 22 10:03:48 node1 cl_status: [18024]: ERROR: x\n');
  });
});

describe('hb_standby / hb_takeover arguments and heartbeat -s', () => {
  it('matches the transcript for --help and a bad argument', () => {
    assert.deepEqual(parseStandbyArgs('/usr/share/heartbeat/hb_standby', ['--help']), {
      stdout: 'usage:\n/usr/share/heartbeat/hb_standby [all|foreign|local|failback]\n', stderr: '', code: 1,
    });
    assert.deepEqual(parseStandbyArgs('/usr/share/heartbeat/hb_takeover', ['bogus']), {
      stdout: '/usr/share/heartbeat/hb_takeover: wrong resources(bogus).\nusage:\n/usr/share/heartbeat/hb_takeover [all|foreign|local|failback]\n', stderr: '', code: 1,
    });
  });

  it('defaults to all; failback means foreign', () => {
    assert.deepEqual(parseStandbyArgs('hb_standby', []), { resources: 'all' });
    assert.deepEqual(parseStandbyArgs('hb_standby', ['failback']), { resources: 'foreign' });
    assert.deepEqual(parseStandbyArgs('hb_standby', ['local']), { resources: 'local' });
  });

  it('heartbeat -s prints the real status line', () => {
    assert.equal(heartbeatStatusLine(node1).stdout, 'heartbeat OK [pid 13092 et al] is running on node1 [node1]...\n');
    assert.equal(heartbeatStatusLine(undefined).code, 3);
  });
});
