import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { formatProblem } from '@tandem/core';
import { parseHaCf, checkMachine, parseHbTime, DIRECTIVES, type MachineFacts, type HaConfig } from '../src/hacf.ts';
import { HEARTBEAT_ERRORS } from '../src/errors.ts';
import { FIXTURES } from '../../../test/fixtures/paths.ts';

const facts = (over: Partial<MachineFacts> = {}): MachineFacts => ({
  nodeName: 'loadbalancer', interfaces: new Set(['lo', 'eth0']), exists: () => true, executable: () => true, userExists: () => true, ...over,
});

function ok(text: string): HaConfig {
  const r = parseHaCf(text, 'ha.cf');
  assert.deepEqual(r.problems.filter((p) => p.severity === 'error').map(formatProblem), []);
  return r.config!;
}
function errors(text: string): string[] {
  const r = parseHaCf(text, 'ha.cf');
  assert.equal(r.config, undefined);
  return r.problems.filter((p) => p.severity === 'error').map(formatProblem);
}
const MIN = 'node a\nnode b\nbcast eth0\nauto_failback on\n';

describe('ha.cf: the seed example (shared/examples/ha.d/ha.cf)', () => {
  const r = parseHaCf(readFileSync(`${FIXTURES}/examples/ha.d/ha.cf`, 'utf8'), '/etc/ha.d/ha.cf');
  it('is accepted', () => assert.ok(r.config, r.problems.map(formatProblem).join('\n')));
  const c = r.config!;
  it('reads timing, logging and nodes', () => {
    assert.deepEqual([c.keepaliveMs, c.deadtimeMs, c.warntimeMs, c.initdeadMs], [2000, 30000, 10000, 120000]);
    assert.deepEqual(c.timing, { keepaliveMs: 2000, deadtimeMs: 30000, warntimeMs: 10000, initdeadMs: 120000 });
    assert.equal(c.logfile, '/var/log/ha-log');
    assert.equal(c.logfacility, 'local0');
    assert.deepEqual(c.nodes, ['loadbalancer', 'backup']);
    assert.equal(c.autoFailback, 'on');
  });
  it('reads serial (with the baud in force) and mcast', () => {
    assert.deepEqual(c.media.map((m) => m.type), ['serial', 'mcast']);
    const s = c.media[0]!;
    assert.ok(s.type === 'serial' && s.device === '/dev/ttyS0' && s.baud === 19200);
    const m = c.media[1]!;
    assert.ok(m.type === 'mcast');
    assert.deepEqual([m.dev, m.group, m.port, m.ttl, m.loop], ['eth0', '225.0.0.1', 694, 1, false]);
  });
  it('maps respawn .../ipfail to tandem ipfail and keeps apiauth ipfail', () => {
    assert.equal(c.ipfail, true);
    assert.deepEqual(c.respawn, []);
    assert.deepEqual(c.apiauth.map((a) => [a.client, [...a.uids], [...a.gids]]), [['ipfail', ['root'], ['root']]]);
    assert.deepEqual(c.pingGroups.map((g) => [g.name, [...g.addresses]]), [['group1', ['192.168.136.1', '192.168.136.2']]]);
  });
  it('machine checks: missing device and interface are machine problems, not parse errors', () => {
    const p = checkMachine(c, facts({ interfaces: new Set(['lo', 'ens3']), exists: () => false }));
    assert.deepEqual(p.map((x) => x.code).sort(), ['E_HACF_NO_DEVICE', 'E_HACF_NO_INTERFACE']);
    assert.match(formatProblem(p.find((x) => x.code === 'E_HACF_NO_INTERFACE')!), /ha\.cf:11: mcast: interface eth0 does not exist/);
    assert.deepEqual(checkMachine(c, facts()), []);
    const other = checkMachine(c, facts({ nodeName: 'node9' }));
    assert.equal(other[0]!.code, 'E_HACF_LOCAL_NODE');
  });
  it('the config object is frozen, deeply', () => {
    assert.ok(Object.isFrozen(c) && Object.isFrozen(c.media) && Object.isFrozen(c.media[0]) && Object.isFrozen(c.timing));
    assert.throws(() => (c.nodes as string[]).push('x'));
    assert.throws(() => (c.env as Map<string, string>).set('a', 'b'));
  });
});

describe('ha.cf: parsing rules', () => {
  it('time syntax: heartbeat forms plus s/min', () => {
    const cases: [string, number | undefined][] = [['2', 2000], ['1.5', 1500], ['500ms', 500], ['500MSEC', 500], ['1500000us', 1500], ['2s', 2000], ['1min', 60000], ['100 MS', undefined], ['-1', undefined], ['1e3', undefined], ['ms', undefined], ['2 s', undefined]];
    for (const [t, ms] of cases) assert.equal(parseHbTime(t), ms, t);
  });
  it('values split on white space and commas; later values win', () => {
    const c = ok(`${MIN}keepalive 1, 2\nnode c,d\n`);
    assert.equal(c.keepaliveMs, 2000);
    assert.deepEqual(c.nodes, ['a', 'b', 'c', 'd']);
  });
  it('several bcast devices make several media; udpport applies only to media after it', () => {
    const c = ok('node a\nbcast eth0 eth1\nudpport 700\nucast eth0 10.0.0.2\nucast eth0 10.0.0.3\nauto_failback off\n');
    assert.deepEqual(c.media.map((m) => [m.type, 'dev' in m ? m.dev : '', 'port' in m ? m.port : 0]), [['bcast', 'eth0', 694], ['bcast', 'eth1', 694], ['ucast', 'eth0', 700], ['ucast', 'eth0', 700]]);
    const w = parseHaCf('node a\nbcast eth0\nudpport 700\n', 'ha.cf').problems.find((p) => p.code === 'E_HACF_ORDER');
    assert.ok(w && w.severity === 'warning' && w.location?.line === 3);
  });
  it('computed defaults: warntime = deadtime/2, initdead by deadtime, deadping = deadtime', () => {
    const d = (extra: string): HaConfig => ok(MIN + extra);
    assert.deepEqual([d('').deadtimeMs, d('').warntimeMs, d('').initdeadMs, d('').keepaliveMs], [30000, 15000, 30000, 1000]);
    assert.equal(d('deadtime 5\n').initdeadMs, 12000);
    assert.equal(d('deadtime 8\n').initdeadMs, 16000);
    assert.equal(d('deadtime 20\n').initdeadMs, 20000);
    assert.equal(d('deadtime 20\n').deadpingMs, 20000);
    assert.equal(d('keepalive 20ms\ndeadtime 100ms\n').warntimeMs, 50);
  });
  it('deadping must exceed 2×keepalive when set', () => {
    assert.match(errors(`${MIN}deadping 2\n`).join(), /Dead ping \[2000\] is too small/);
  });
  it('unknown directives: file:line and did-you-mean', () => {
    const e = errors(`${MIN}keepalvie 2\n`);
    assert.equal(e.length, 1);
    assert.match(e[0]!, /^ha\.cf:5: Illegal directive \[keepalvie\] \(did you mean keepalive\?\) \[E_HACF_UNKNOWN_DIRECTIVE\]$/);
  });
  it('collects every problem, not only the first', () => {
    const e = errors('node a\nkeepalive x\ndeadtime y\nfoo\nbcast eth0\nmcast eth0 1.2.3.4 694 1 0\nucast eth0\n');
    assert.equal(e.length, 5);
    assert.deepEqual(e.map((x) => x.split(':')[1]), ['2', '3', '4', '6', '7']);
  });
  it('a directive without a value is an error', () => assert.match(errors(`${MIN}keepalive\n`)[0]!, /keepalive needs a value/));
  it('mcast needs all five fields, a multicast group, a port, ttl and loop 0/1', () => {
    assert.match(errors('node a\nmcast eth0 239.1.1.1 694 1\n')[0]!, /mcast needs 5 fields/);
    assert.match(errors('node a\nmcast eth0 10.1.1.1 694 1 0\n')[0]!, /not an IPv4 multicast group/);
    assert.match(errors('node a\nmcast eth0 239.1.1.1 694 1 2\n')[0]!, /invalid loop/);
  });
  it('ucast takes one IPv4 peer per line', () => {
    assert.match(errors('node a\nucast eth0 10.0.0.2 10.0.0.3\n')[0]!, /one peer per ucast line/);
    assert.match(errors('node a\nucast eth0 peer.example\n')[0]!, /not an IPv4 address/);
  });
  it('udp is bcast with a warning; nice_failback maps to auto_failback', () => {
    const r = parseHaCf('node a\nudp eth0\nnice_failback on\n', 'ha.cf');
    assert.equal(r.config!.media[0]!.type, 'bcast');
    assert.equal(r.config!.autoFailback, 'off');
    assert.equal(r.problems.filter((p) => p.code === 'E_HACF_DEPRECATED').length, 2);
  });
  it('serial takes the baud in force', () => {
    const c = ok('node a\nbaud 115200\nserial /dev/ttyS0 /dev/ttyS1\nauto_failback on\n');
    assert.deepEqual(c.media.map((m) => m.type === 'serial' && [m.device, m.baud]), [['/dev/ttyS0', 115200], ['/dev/ttyS1', 115200]]);
  });
  it('env, logfacility, rtprio and friends', () => {
    const c = ok(`${MIN}env FOO=bar baz\nlogfacility LOCAL3\nrtprio 50\nrealtime off\nmemreserve 100\nmax_rexmit_delay 100\ndebug 2\nlog_badpack no\nconn_logd_time 10\ncoredumps false\ncoreroot /tmp/cores\nhopfudge 2\ncluster lab\n`);
    assert.equal(c.env.get('FOO'), 'bar baz');
    assert.deepEqual([c.logfacility, c.rtprio, c.realtime, c.memreserveKb, c.maxRexmitDelayMs, c.debug, c.logBadpack, c.connLogdTimeMs, c.coredumps, c.coreroot, c.hopfudge, c.cluster],
      ['local3', 50, false, 100, 100, 2, false, 10000, false, '/tmp/cores', 2, 'lab']);
    assert.match(errors(`${MIN}logfacility locl0\n`)[0]!, /did you mean local0/);
  });
  it('crm/pacemaker off is accepted, on is refused; pacemaker-only booleans warn', () => {
    ok(`${MIN}crm no\npacemaker off\n`);
    assert.match(errors(`${MIN}crm respawn\n`)[0]!, /crm is not supported by tandem .*R1 mode.*E_HACF_REFUSED/);
    const r = parseHaCf(`${MIN}record_config_changes on\n`, 'ha.cf');
    assert.ok(r.config && r.problems.some((p) => p.severity === 'warning' && /no effect without Pacemaker/.test(p.message)));
  });
  for (const line of ['stonith baytech /etc/ha.d/conf/stonith.baytech', 'stonith_host * baytech 10.0.0.3 mylogin mysecretpassword', 'watchdog /dev/watchdog', 'failfast hacluster /bin/true', 'mcast6 eth0 ff05::1 694 1 0', 'ucast6 eth0 fe80::1', 'ping6 ::1', 'quorum_server q.example', 'use_logd yes', 'use_apphbd on', 'pacemaker respawn']) {
    it(`refuses "${line}" with a reason`, () => {
      const e = errors(`${MIN}${line}\n`);
      assert.equal(e.length, 1);
      assert.match(e[0]!, /^ha\.cf:5: .*not supported by tandem \(.+\) \[E_HACF_REFUSED\]$/);
    });
  }
  it('every directive of heartbeat 3.0.6 (reference §3) is in the table', () => {
    const all = ['node', 'keepalive', 'deadtime', 'warntime', 'initdead', 'deadping', 'auto_failback', 'nice_failback', 'hopfudge', 'cluster', 'autojoin', 'uuidfrom', 'hbgenmethod',
      'udpport', 'bcast', 'mcast', 'mcast6', 'ucast', 'ucast6', 'serial', 'baud', 'ping', 'ping6', 'ping_group', 'udp',
      'logfile', 'debugfile', 'logfacility', 'use_logd', 'conn_logd_time', 'syslogmsgfmt', 'debug', 'log_badpack', 'coredumps', 'coreroot', 'realtime', 'rtprio', 'memreserve', 'watchdog',
      'respawn', 'failfast', 'apiauth', 'stonith', 'stonith_host', 'msgfmt', 'compression', 'compression_threshold', 'traditional_compression', 'max_rexmit_delay', 'env',
      'pacemaker', 'crm', 'crm_daemon_dir', 'crmd_spawns_pengine', 'record_config_changes', 'record_pengine_inputs', 'enable_config_writes', 'use_apphbd', 'quorum_server'];
    assert.deepEqual(Object.keys(DIRECTIVES).sort(), all.sort());
  });
  it('respawn: other programs are kept with their user and arguments', () => {
    const c = ok(`${MIN}respawn hacluster /usr/lib/heartbeat/ipfail\nrespawn root /usr/bin/logger -t x\n`);
    assert.equal(c.ipfail, true);
    assert.deepEqual(c.respawn.map((r) => [r.user, r.command, [...r.args]]), [['root', '/usr/bin/logger', ['-t', 'x']]]);
    const m = checkMachine(c, facts({ nodeName: 'a', executable: () => false, userExists: () => false }));
    assert.deepEqual(m.map((p) => p.code), ['E_HACF_RESPAWN', 'E_HACF_RESPAWN']);
  });
});

describe('HEARTBEAT-CONFIG.md', () => {
  const doc = readFileSync(new URL('../HEARTBEAT-CONFIG.md', import.meta.url), 'utf8');
  it('documents every directive', () => {
    for (const d of Object.keys(DIRECTIVES)) assert.ok(doc.includes(`\`${d}\``), d);
  });
  it('documents every error code', () => {
    for (const c of Object.keys(HEARTBEAT_ERRORS)) assert.ok(doc.includes(`\`${c}\``), c);
  });
});
