/**
 * The 54 ha.cf/authkeys variants that were run against the real heartbeat 3.0.6
 * (reference/heartbeat-wire/validate-config.txt), each with the real daemon's verdict. tandem must
 * agree, except where it deliberately accepts more (marked `tandem`, documented in HEARTBEAT-CONFIG.md).
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseHaCf, checkMachine, type MachineFacts } from '../src/hacf.ts';
import { loadAuthkeys } from '../src/authkeys.ts';
import { WIRE_DIR } from './codec-vectors.ts';

const BASE = ['node node1', 'node node2', 'keepalive 1', 'deadtime 5', 'initdead 10', 'ucast eth0 10.214.9.12', 'auto_failback on'];
const AUTH = ['auth 1', '1 sha1 hbpeer-secret'];

const node1: MachineFacts = {
  nodeName: 'node1',
  interfaces: new Set(['lo', 'eth0']),
  exists: () => true,
  executable: (p) => p === '/bin/sleep',
  userExists: (u) => ['root', 'hacluster'].includes(u),
};

interface Variant {
  /** Changes to the base ha.cf: lines to drop (by prefix) and lines to add. */
  drop?: string[];
  add?: string[];
  authkeys?: string[];
  mode?: number;
  /** What the real 3.0.6 daemon did. */
  real: 'ACCEPTED' | 'REJECTED';
  /** What tandem does when it differs on purpose. */
  tandem?: 'ACCEPTED';
  /** A message tandem must give (substring), when rejected. */
  message?: string;
  check?: (cfg: NonNullable<ReturnType<typeof parseHaCf>['config']>) => void;
}

const VARIANTS: Record<string, Variant> = {
  baseline: { real: 'ACCEPTED' },
  'keepalive 100ms deadtime 500ms': { drop: ['keepalive', 'deadtime'], add: ['keepalive 100ms', 'deadtime 500ms'], real: 'ACCEPTED', check: (c) => { assert.equal(c.keepaliveMs, 100); assert.equal(c.deadtimeMs, 500); assert.equal(c.warntimeMs, 250); } },
  'keepalive 10ms deadtime 30ms': { drop: ['keepalive', 'deadtime'], add: ['keepalive 10ms', 'deadtime 30ms'], real: 'ACCEPTED' },
  'keepalive 1ms deadtime 3ms': { drop: ['keepalive', 'deadtime'], add: ['keepalive 1ms', 'deadtime 3ms'], real: 'ACCEPTED' },
  'deadtime == 2*keepalive': { drop: ['deadtime'], add: ['deadtime 2'], real: 'REJECTED', message: 'Dead time [2000] is too small compared to keeplive [1000]' },
  'keepalive 0': { drop: ['keepalive'], add: ['keepalive 0'], real: 'REJECTED', message: 'keepalive must be more than 0' },
  'keepalive 400us (rounds to 0)': { drop: ['keepalive'], add: ['keepalive 400us'], real: 'REJECTED', message: 'keepalive must be more than 0' },
  'keepalive 1.5 (seconds, fractional)': { drop: ['keepalive'], add: ['keepalive 1.5'], real: 'ACCEPTED', check: (c) => assert.equal(c.keepaliveMs, 1500) },
  'keepalive 1500000us': { drop: ['keepalive'], add: ['keepalive 1500000us'], real: 'ACCEPTED', check: (c) => assert.equal(c.keepaliveMs, 1500) },
  'keepalive 2s (unit s not allowed)': { drop: ['keepalive'], add: ['keepalive 2s', 'deadtime 10'], real: 'REJECTED', tandem: 'ACCEPTED', check: (c) => assert.equal(c.keepaliveMs, 2000) },
  'keepalive 100 MS (space + case)': { drop: ['keepalive'], add: ['keepalive 100 MS'], real: 'REJECTED', message: 'invalid value [MS]: not a time' },
  'initdead < deadtime': { drop: ['deadtime', 'initdead'], add: ['deadtime 10', 'initdead 5'], real: 'REJECTED', message: 'Initial dead time [5000] is smaller than deadtime [10000]' },
  'warntime 0': { add: ['warntime 0'], real: 'REJECTED', message: 'Warn time [0] is invalid.' },
  'warntime > deadtime': { add: ['warntime 8'], real: 'ACCEPTED', check: (c) => assert.equal(c.warntimeMs, 8000) },
  'auto_failback legacy': { drop: ['auto_failback'], add: ['auto_failback legacy'], real: 'ACCEPTED', check: (c) => assert.equal(c.autoFailback, 'legacy') },
  'auto_failback yes': { drop: ['auto_failback'], add: ['auto_failback yes'], real: 'ACCEPTED', check: (c) => assert.equal(c.autoFailback, 'on') },
  'auto_failback maybe': { drop: ['auto_failback'], add: ['auto_failback maybe'], real: 'REJECTED', message: 'invalid value [maybe]' },
  'no auto_failback line': { drop: ['auto_failback'], real: 'ACCEPTED', check: (c) => assert.equal(c.autoFailback, 'legacy') },
  'unknown directive': { add: ['frobnicate 1'], real: 'REJECTED', message: 'Illegal directive [frobnicate]' },
  'udpport after media': { add: ['udpport 695'], real: 'ACCEPTED', check: (c) => { assert.equal(c.media[0]!.type === 'ucast' && c.media[0]!.port, 694); assert.equal(c.udpport, 695); } },
  'udpport 0': { add: ['udpport 0'], real: 'REJECTED', message: 'invalid port [0] specified.' },
  'no media': { drop: ['ucast'], real: 'REJECTED', message: 'No heartbeat media defined' },
  'no node lines': { drop: ['node'], real: 'REJECTED', message: 'no nodes defined' },
  'local node not listed': { drop: ['node node1'], add: ['node node3'], real: 'REJECTED', message: 'Current node [node1] not in configuration' },
  'autojoin any, no node lines': { drop: ['node'], add: ['autojoin any'], real: 'REJECTED', message: 'R1 style resource management conflicts with autojoin set' },
  'NODE names upper case': { drop: ['node'], add: ['node NODE1', 'node Node2'], real: 'ACCEPTED', check: (c) => assert.deepEqual(c.nodes, ['node1', 'node2']) },
  'comment after value': { drop: ['keepalive'], add: ['keepalive 1 # one second'], real: 'ACCEPTED', check: (c) => assert.equal(c.keepaliveMs, 1000) },
  'two values on one line (node a b)': { drop: ['node'], add: ['node node1 node2'], real: 'ACCEPTED', check: (c) => assert.deepEqual(c.nodes, ['node1', 'node2']) },
  'crm_daemon_dir (3.0.6 bug?)': { add: ['crm_daemon_dir /usr/lib/pacemaker'], real: 'REJECTED', message: 'crm_daemon_dir is not supported by tandem' },
  'msgfmt netstring': { add: ['msgfmt netstring'], real: 'ACCEPTED', check: (c) => assert.equal(c.msgfmt, 'netstring') },
  'msgfmt bogus': { add: ['msgfmt bogus'], real: 'REJECTED', message: 'invalid value [bogus]' },
  'respawn relative path': { add: ['respawn root sleep 10'], real: 'REJECTED', message: 'Client child command [sleep 10] is not full pathname' },
  'respawn unknown user': { add: ['respawn nosuchuser /bin/sleep 10'], real: 'REJECTED', message: 'Invalid uid [nosuchuser] specified for client child' },
  'respawn ok': { add: ['respawn root /bin/sleep 10'], real: 'ACCEPTED', check: (c) => assert.deepEqual(c.respawn.map((r) => [r.user, r.command, ...r.args]), [['root', '/bin/sleep', '10']]) },
  'apiauth without ids': { add: ['apiauth foo'], real: 'REJECTED', message: 'Invalid apiauth directive [foo]' },
  'apiauth ok': { add: ['apiauth ipfail uid=hacluster'], real: 'ACCEPTED', check: (c) => assert.deepEqual(c.apiauth[0]!.uids, ['hacluster']) },
  'ping + ping_group': { add: ['ping 10.214.9.100', 'ping_group gw 10.214.9.1 10.214.9.2'], real: 'ACCEPTED', check: (c) => { assert.deepEqual(c.pingNodes, ['10.214.9.100']); assert.deepEqual(c.pingGroups[0]!.addresses, ['10.214.9.1', '10.214.9.2']); } },
  'debug 300': { add: ['debug 300'], real: 'REJECTED', message: 'debug is 0..255' },
  'hbgenmethod time': { add: ['hbgenmethod time'], real: 'ACCEPTED', check: (c) => assert.equal(c.hbgenmethod, 'time') },
  'rtprio 100': { add: ['rtprio 100'], real: 'REJECTED', message: 'Illegal realtime priority [100]' },
  'baud 1234': { add: ['baud 1234'], real: 'REJECTED', message: 'invalid baudrate [1234] specified.' },
  'compression bz2': { add: ['compression bz2'], real: 'ACCEPTED', check: (c) => assert.equal(c.compression, 'bz2') },
  'uuidfrom nodename': { add: ['uuidfrom nodename'], real: 'ACCEPTED', check: (c) => assert.equal(c.uuidfrom, 'nodename') },
  'authkeys mode 644': { mode: 0o644, real: 'REJECTED', message: 'Bad permissions on keyfile' },
  'authkeys mode 640': { mode: 0o640, real: 'REJECTED', message: 'Bad permissions on keyfile' },
  'authkeys mode 602 (other-writable)': { mode: 0o602, real: 'ACCEPTED' },
  'authkeys crc with key': { authkeys: ['auth 1', '1 crc secret'], real: 'REJECTED', message: "Auth method [crc] doesn't use a key" },
  'authkeys md5 without key': { authkeys: ['auth 1', '1 md5'], real: 'REJECTED', message: 'Auth method [md5] requires a key' },
  'authkeys auth 2 not defined': { authkeys: ['auth 2', '1 sha1 x'], real: 'REJECTED', message: 'Auth Key [2] not found in keyfile' },
  'authkeys index 16': { authkeys: ['auth 16', '16 sha1 x'], real: 'REJECTED', message: 'Invalid authnum [16]' },
  'authkeys index 0': { authkeys: ['auth 0', '0 sha1 x'], real: 'ACCEPTED' },
  'authkeys no auth line': { authkeys: ['1 sha1 x'], real: 'REJECTED', message: 'Missing auth directive in keyfile' },
  'authkeys key with spaces': { authkeys: ['auth 1', '1 sha1 two words'], real: 'ACCEPTED' },
  'authkeys method sha256': { authkeys: ['auth 1', '1 sha256 x'], real: 'REJECTED', message: 'Invalid authtype [sha256]' },
};

function realVerdicts(): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of readFileSync(join(WIRE_DIR, 'validate-config.txt'), 'utf8').split('\n')) {
    const r = /^=== (.*): (ACCEPTED|REJECTED)/.exec(line);
    if (r) m.set(r[1]!, r[2]!);
  }
  return m;
}

describe('ha.cf + authkeys: the 54 variants run against heartbeat 3.0.6', () => {
  let dir: string;
  before(() => { dir = mkdtempSync(join(tmpdir(), 'tandem-hacf-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const real = realVerdicts();
  it('the table covers every variant of validate-config.txt with the real verdict', () => {
    // The file holds 54 variants (the issue speaks of 55).
    assert.equal(real.size, 54);
    assert.deepEqual([...real.keys()].sort(), Object.keys(VARIANTS).sort());
    for (const [name, verdict] of real) assert.equal(VARIANTS[name]!.real, verdict, name);
  });

  for (const [name, v] of Object.entries(VARIANTS)) {
    const expect = v.tandem ?? v.real;
    it(`${name}: ${expect}${v.tandem ? ` (heartbeat: ${v.real})` : ''}`, () => {
      const lines = BASE.filter((l) => !(v.drop ?? []).some((d) => l.startsWith(d))).concat(v.add ?? []);
      const hacf = parseHaCf(lines.join('\n') + '\n', '/etc/ha.d/ha.cf');
      const machine = hacf.config ? checkMachine(hacf.config, node1) : [];
      const keyfile = join(dir, `authkeys-${name.replace(/\W+/g, '_')}`);
      writeFileSync(keyfile, (v.authkeys ?? AUTH).join('\n') + '\n');
      chmodSync(keyfile, v.mode ?? 0o600);
      const keys = loadAuthkeys(keyfile);
      const errors = [...hacf.problems, ...machine, ...keys.problems].filter((p) => p.severity === 'error');
      if (expect === 'ACCEPTED') {
        assert.deepEqual(errors, [], `${name}: unexpected errors`);
        assert.ok(hacf.config && keys.keys);
        v.check?.(hacf.config);
      } else {
        assert.ok(errors.length > 0, `${name}: should be refused`);
        assert.ok(errors.some((e) => e.message.includes(v.message!)), `${name}: got ${errors.map((e) => e.message).join(' | ')}`);
      }
    });
  }
});
