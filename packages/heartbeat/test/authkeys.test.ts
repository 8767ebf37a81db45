import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatProblem } from '@tandem/core';
import { parseAuthkeys, loadAuthkeys, checkAuthkeysMode } from '../src/authkeys.ts';

describe('authkeys', () => {
  let dir: string;
  before(() => { dir = mkdtempSync(join(tmpdir(), 'tandem-authkeys-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reads the seed example (crc active, commented alternatives)', () => {
    const r = parseAuthkeys('auth 1\n1 crc\n#2 sha1 sha1_any_password\n#3 md5 md5_any_password\n', 'authkeys');
    assert.equal(r.keys!.active, 1);
    assert.deepEqual([...r.keys!.keys], [[1, { method: 'crc', secret: '' }]]);
    assert.ok(r.problems.some((p) => p.severity === 'warning' && /crc authenticates nothing/.test(p.message)));
  });
  it('keeps every key for input, signs with the active one', () => {
    const r = parseAuthkeys('auth 3\n1 crc\n2 md5 m5\n3 SHA1 s1 # not a comment\n', 'authkeys');
    assert.equal(r.keys!.active, 3);
    assert.deepEqual(r.keys!.keys.get(2), { method: 'md5', secret: 'm5' });
    assert.deepEqual(r.keys!.keys.get(3), { method: 'sha1', secret: 's1' });
  });
  it('a key may contain #', () => {
    assert.equal(parseAuthkeys('auth 1\n1 sha1 a#b\n', 'authkeys').keys!.keys.get(1)!.secret, 'a#b');
  });
  it('errors carry file:line and a hint; all are collected', () => {
    const r = parseAuthkeys('auth 1\n17 sha1 x\n2 rot13 x\nbogus\n', '/etc/ha.d/authkeys');
    const msgs = r.problems.filter((p) => p.severity === 'error').map(formatProblem);
    assert.deepEqual(msgs.map((m) => m.split(':').slice(0, 2).join(':')), ['/etc/ha.d/authkeys:2', '/etc/ha.d/authkeys:3', '/etc/ha.d/authkeys:4', '/etc/ha.d/authkeys:1']);
    assert.match(msgs[0]!, /Invalid authnum \[17\].*E_AUTHKEYS_BAD_INDEX/);
    assert.match(msgs[1]!, /Invalid authtype \[rot13\].*E_AUTHKEYS_BAD_METHOD/);
    assert.match(msgs[3]!, /Auth Key \[1\] not found/);
  });
  it('mode: group or other read bits are fatal, write bits are not', () => {
    for (const [mode, bad] of [[0o600, false], [0o400, false], [0o602, false], [0o620, false], [0o640, true], [0o604, true], [0o644, true], [0o666, true]] as const) {
      assert.equal(checkAuthkeysMode(0o100000 | mode, 'k') !== undefined, bad, mode.toString(8));
    }
  });
  it('loadAuthkeys refuses a world-readable file with the real message', () => {
    const f = join(dir, 'authkeys');
    writeFileSync(f, 'auth 1\n1 sha1 secret\n');
    chmodSync(f, 0o644);
    const r = loadAuthkeys(f);
    assert.equal(r.keys, undefined);
    assert.equal(r.problems[0]!.code, 'E_AUTHKEYS_MODE');
    assert.match(r.problems[0]!.message, /^Bad permissions on keyfile \[.*authkeys\], 600 recommended/);
    assert.match(r.problems[0]!.hint!, /chmod 600/);
    chmodSync(f, 0o600);
    assert.equal(loadAuthkeys(f).keys!.keys.get(1)!.secret, 'secret');
  });
  it('a missing file is E_CONF_READ', () => {
    assert.throws(() => loadAuthkeys(join(dir, 'nope')), (e: Error & { code?: string }) => e.code === 'E_CONF_READ');
  });
});
