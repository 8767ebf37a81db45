import assert from 'node:assert/strict';
import { Metrics } from '@tandem/core';
import {
  decodePacket, encodePacket, classicText, crc32hb, digest, verify, ReplayGuard, buildFields, toHbFields,
  checkInnerAuth, str, FT_BINARY, type WireField, type GateContext, decodeClassic, encodeClassic, netstringToClassic,
} from '../src/codec.ts';
import type { AuthKeys } from '../src/types.ts';
import { captureNames, loadCapture, hexDumpPayloads, type Capture } from './codec-vectors.ts';

const captures: Capture[] = captureNames().map(loadCapture);
const keysOf = (c: Capture): AuthKeys => ({ active: c.key.num, keys: new Map([[c.key.num, { method: c.key.method, secret: c.key.secret }]]) });

describe('codec: captured heartbeat 3.0.6 packets', () => {
  it('covers every capture and a few hundred packets', () => {
    assert.deepEqual(captures.map((c) => c.name), ['bcast-sha1', 'mcast-sha1', 'ping-icmp', 'ucast-crc', 'ucast-md5', 'ucast-sha1', 'ucast-sha1-msgfmt-netstring']);
    assert.ok(captures.reduce((n, c) => n + c.vectors.length, 0) >= 430);
  });

  for (const c of captures) {
    describe(c.name, () => {
      it('every packet decodes to the decoded fields, in order', () => {
        for (const v of c.vectors) {
          const d = decodePacket(v.bytes);
          assert.ok(d.ok, `#${v.index}: ${!d.ok && d.detail}`);
          const got = d.packet.fields.map((f) => [f.type, f.name, f.value.toString('hex')]);
          const want = v.fields.map((f) => [f.type, f.name, f.value.toString('hex')]);
          assert.deepEqual(got, want, `#${v.index}`);
          assert.equal(`${d.packet.trailer.keyNum} ${d.packet.trailer.digest}`, v.trailer, `#${v.index}`);
        }
      });

      it('both auth strings recompute to the captured values', () => {
        for (const v of c.vectors) {
          const d = decodePacket(v.bytes);
          assert.ok(d.ok);
          assert.equal(`${c.key.num} ${digest(c.key.method, c.key.secret, d.packet.signed)}`, v.trailer, `trailer #${v.index}`);
          const inner = d.packet.fields.find((f) => f.name === 'auth');
          if (c.innerAuth) {
            assert.ok(inner, `#${v.index} has an inner auth field`);
            assert.equal(inner.value.toString(), `${c.key.num} ${v.inner}`);
            assert.equal(digest(c.key.method, c.key.secret, classicText(d.packet.fields)), v.inner, `inner #${v.index}`);
            assert.equal(checkInnerAuth(d.packet.fields, keysOf(c)), true);
          } else {
            assert.equal(inner, undefined, 'msgfmt netstring sends no inner auth');
          }
        }
      });

      it('encoding the decoded fields reproduces the captured bytes', () => {
        for (const v of c.vectors) {
          const own = v.fields.filter((f) => f.name !== 'auth');
          const out = encodePacket(own, c.key, { innerAuth: c.innerAuth });
          assert.equal(out.toString('latin1'), v.bytes.toString('latin1'), `#${v.index}`);
        }
      });

      it('the tcpdump -X hex dumps are the same packets', () => {
        const known = new Set(c.vectors.map((v) => v.bytes.toString('hex')));
        const dumps = hexDumpPayloads(c.name);
        assert.ok(dumps.length >= 4);
        for (const p of dumps) {
          assert.ok(known.has(p.toString('hex')), 'hex dump packet is among the decoded ones');
          assert.ok(decodePacket(p).ok);
        }
      });

      it('every packet re-framed as classic text (serial links) keeps its fields and its signature', () => {
        for (const v of c.vectors) {
          const classic = netstringToClassic(v.bytes, c.key)!;
          assert.ok(classic.subarray(0, 4).toString() === '>>>\n' && classic.subarray(-4).toString() === '<<<\n');
          const d = decodeClassic(classic);
          assert.ok(d.ok, `#${v.index}: ${!d.ok && d.detail}`);
          const own = (fs: WireField[]): string[] => fs.filter((f) => f.name !== 'auth').map((f) => `${f.type}${f.name}=${f.value.toString('hex')}`);
          assert.deepEqual(own(d.packet.fields), own(v.fields));
          if (c.innerAuth) assert.equal(`${d.packet.trailer.keyNum} ${d.packet.trailer.digest}`, `${c.key.num} ${v.inner}`);
          assert.ok(verify(classic, { keys: keysOf(c), knownNodes: undefined, replay: new ReplayGuard() }).ok);
          assert.deepEqual(encodeClassic(v.fields, c.key), classic);
        }
      });

      it('every packet passes the gate with the capture key', () => {
        const ctx: GateContext = { keys: keysOf(c), knownNodes: undefined, replay: new ReplayGuard() };
        let fresh = 0;
        for (const v of c.vectors) {
          const r = verify(v.bytes, ctx);
          assert.ok(r.ok, `#${v.index}: ${!r.ok && r.reason} ${!r.ok && r.detail}`);
          if (!r.duplicate) fresh++;
        }
        assert.ok(fresh > 0);
      });
    });
  }
});

describe('codec: digests', () => {
  it('crc is printed without leading zeros (%lx)', () => {
    // Search a short input whose crc has a leading zero nibble and check it is not padded.
    let found = false;
    for (let i = 0; i < 5000 && !found; i++) {
      const s = crc32hb(Buffer.from(`x${i}`));
      assert.match(s, /^[1-9a-f][0-9a-f]{0,7}$/);
      if (s.length < 8) found = true;
    }
    assert.ok(found, 'some crc is shorter than 8 hex digits');
  });
  it('crc of the empty input is ffffffff (init 0, complemented)', () => assert.equal(crc32hb(Buffer.alloc(0)), 'ffffffff'));
  it('crc equals POSIX cksum without the length step', () => {
    // "123456789" under CRC-32/POSIX without length is 0x765e7680 (catalogued CRC-32/POSIX check value).
    assert.equal(crc32hb(Buffer.from('123456789')), '765e7680');
  });
  it('md5 and sha1 are HMACs with the key as bytes', () => {
    // RFC 2202 test case 2.
    assert.equal(digest('md5', 'Jefe', Buffer.from('what do ya want for nothing?')), '750c783e6ab0b503eaa86e310a5db738');
    assert.equal(digest('sha1', 'Jefe', Buffer.from('what do ya want for nothing?')), 'effcdf6ae5eb2fa2d27416d5f184df9c259a7c79');
  });
});

const KEYS: AuthKeys = { active: 1, keys: new Map([[1, { method: 'sha1', secret: 's3cret' }], [2, { method: 'md5', secret: 'other' }]]) };
const UUID = Buffer.from('00112233445566778899aabbccddeeff', 'hex');

function status(src: string, seq: number, hg = 0x100, keyNum = 1): Buffer {
  const fields = buildFields([['t', 'status'], ['st', 'active'], ['dt', '1388'], ['protocol', '1']], {
    src, srcuuid: UUID, seq, hg, ts: 0x6b02ba8e, ld: '0.68 0.72 0.44 2/142 26128', ttl: 3,
  });
  const k = KEYS.keys.get(keyNum)!;
  return encodePacket(fields, { num: keyNum, ...k });
}

function gate(): GateContext {
  return { keys: KEYS, knownNodes: new Set(['node1', 'node2']), replay: new ReplayGuard(), metrics: new Metrics() };
}

describe('codec: building messages', () => {
  it('puts the control fields in heartbeat order', () => {
    const f = buildFields([['t', 'reqnodes']], { src: 'n1', srcuuid: UUID, destuuid: UUID, seq: 42, hg: 255, ts: 16, ld: 'x', ttl: 3 });
    assert.deepEqual(f.map((x) => x.name), ['t', 'destuuid', 'src', 'srcuuid', 'seq', 'hg', 'ts', 'ld', 'ttl']);
    const m = toHbFields(f);
    assert.equal(m.get('seq'), '2a');
    assert.equal(m.get('hg'), 'ff');
    assert.equal(m.get('srcuuid'), UUID.toString('base64'));
  });
  it('omits seq for NS_ messages and the inner auth for msgfmt netstring', () => {
    const f = buildFields([['t', 'NS_ackmsg'], ['dest', 'node1'], ['ackseq', '9']], { src: 'node1', srcuuid: UUID, hg: 1, ts: 1, ttl: 3 });
    const p = encodePacket(f, { num: 1, method: 'sha1', secret: 's3cret' }, { innerAuth: false });
    const d = decodePacket(p);
    assert.ok(d.ok);
    assert.deepEqual(d.packet.fields.map((x) => x.name), ['t', 'dest', 'ackseq', 'src', 'srcuuid', 'hg', 'ts', 'ttl']);
  });
  it('binary values survive any byte, including , = and NUL', () => {
    const val = Buffer.from([0x2c, 0x3d, 0, 0x25, 0x25, 0x25, 0x0a, 0xff]);
    const p = encodePacket([str('t', 'x'), { name: 'b', type: FT_BINARY, value: val }], { num: 0, method: 'crc', secret: '' });
    const d = decodePacket(p);
    assert.ok(d.ok);
    assert.deepEqual(d.packet.fields[1]!.value, val);
  });
});

describe('codec: the authentication gate', () => {
  it('accepts a fresh packet and reports duplicates of the same seq (second medium)', () => {
    const ctx = gate();
    const p = status('node2', 5);
    const a = verify(p, ctx);
    assert.ok(a.ok && !a.duplicate);
    assert.equal(a.msg.type, 'status');
    assert.equal(a.msg.seq, 5);
    assert.equal(a.msg.fields.get('st'), 'active');
    const b = verify(p, ctx);
    assert.ok(b.ok && b.duplicate);
    assert.equal(ctx.metrics!.get('tandem_heartbeat_packets_accepted_total', { duplicate: 'true' }), 1);
  });

  it('drops and counts a bad signature, an unknown key, an unknown node, malformed bytes', () => {
    const ctx = gate();
    const p = status('node2', 1);
    const bad = Buffer.from(p);
    const at = bad.indexOf('active');
    bad[at] = bad[at]! ^ 1;
    const r1 = verify(bad, ctx);
    assert.ok(!r1.ok && r1.reason === 'bad_auth');
    const noKey: GateContext = { ...ctx, keys: { active: 2, keys: new Map([[2, KEYS.keys.get(2)!]]) } };
    const r2 = verify(p, noKey);
    assert.ok(!r2.ok && r2.reason === 'bad_auth' && /key 1/.test(r2.detail));
    const r3 = verify(status('intruder', 1), ctx);
    assert.ok(!r3.ok && r3.reason === 'unknown_node');
    const r4 = verify(Buffer.from('hello'), ctx);
    assert.ok(!r4.ok && r4.reason === 'malformed');
    assert.equal(ctx.metrics!.get('tandem_heartbeat_packets_dropped_total', { reason: 'bad_auth' }), 2);
    assert.equal(ctx.metrics!.get('tandem_heartbeat_packets_dropped_total', { reason: 'unknown_node' }), 1);
    assert.equal(ctx.metrics!.get('tandem_heartbeat_packets_dropped_total', { reason: 'malformed' }), 1);
    assert.match(ctx.metrics!.render(), /tandem_heartbeat_packets_dropped_total\{reason="bad_auth"\} 2/);
  });

  it('accepts any key defined in authkeys, not only the active one', () => {
    const r = verify(status('node1', 1, 0x100, 2), gate());
    assert.ok(r.ok && r.msg.keyNum === 2);
  });

  it('node names are matched case-insensitively', () => {
    const r = verify(status('NODE1', 1), gate());
    assert.ok(r.ok && r.msg.src === 'node1');
  });

  it('replays: an older generation, and a sequence older than the window', () => {
    const ctx = gate();
    assert.ok(verify(status('node2', 1, 0x200), ctx).ok);
    const old = verify(status('node2', 7, 0x1ff), ctx);
    assert.ok(!old.ok && old.reason === 'replay');
    for (let s = 2; s <= 400; s++) assert.ok(verify(status('node2', s, 0x200), ctx).ok);
    const stale = verify(status('node2', 3, 0x200), ctx);
    assert.ok(!stale.ok && stale.reason === 'replay');
    assert.equal(ctx.metrics!.get('tandem_heartbeat_packets_dropped_total', { reason: 'replay' }), 2);
  });

  it('a late packet inside the window that was never seen is accepted once', () => {
    const ctx = gate();
    for (const s of [1, 2, 4, 5]) assert.ok(verify(status('node2', s), ctx).ok);
    const late = verify(status('node2', 3), ctx);
    assert.ok(late.ok && !late.duplicate);
    const again = verify(status('node2', 3), ctx);
    assert.ok(again.ok && again.duplicate);
  });

  it('a restart (higher generation) starts a new window and is visible to membership', () => {
    const ctx = gate();
    for (let s = 1; s <= 50; s++) verify(status('node2', s, 0x300), ctx);
    const r = verify(status('node2', 1, 0x301), ctx);
    assert.ok(r.ok && !r.duplicate);
    assert.equal(ctx.replay.generation('node2'), 0x301);
    assert.equal(ctx.replay.check('node2', 0x301, 1), 'duplicate');
  });

  it('rejects authentic packets that lack t or src, or carry non-hex seq', () => {
    const ctx = gate();
    const k = { num: 1, method: 'sha1' as const, secret: 's3cret' };
    const noSrc = verify(encodePacket([str('t', 'status')], k), ctx);
    assert.ok(!noSrc.ok && noSrc.reason === 'malformed');
    const badSeq = verify(encodePacket([str('t', 'status'), str('src', 'node1'), str('seq', 'zz')], k), ctx);
    assert.ok(!badSeq.ok && badSeq.reason === 'malformed');
    const dupSrc = verify(encodePacket([str('t', 'status'), str('src', 'node1'), str('src', 'node2')], k), ctx);
    assert.ok(!dupSrc.ok && dupSrc.reason === 'malformed');
  });
});

describe('codec: classic (serial) framing', () => {
  const k = { num: 1, method: 'sha1' as const, secret: 's3cret' };
  it('a tampered classic message fails the gate; garbage is malformed', () => {
    const c = encodeClassic(buildFields([['t', 'status'], ['st', 'up']], { src: 'node1', srcuuid: UUID, seq: 1, hg: 1, ts: 1, ld: 'x', ttl: 3 }), k);
    assert.ok(verify(c, gate()).ok);
    const bad = Buffer.from(c.toString('latin1').replace('st=up', 'st=dn'), 'latin1');
    const r = verify(bad, gate());
    assert.ok(!r.ok && r.reason === 'bad_auth');
    for (const g of ['>>>\n<<<\n', '>>>\nt=x\n<<<\n', '>>>\n(1)b=!!\nauth=1 00\n<<<\n', '>>>\nnoequals\nauth=1 0\n<<<\n', '>>>\nt=x']) {
      assert.equal(decodeClassic(Buffer.from(g)).ok, false, g);
    }
  });
});

describe('codec: framing errors', () => {
  const good = status('node1', 1);
  const cases: [string, Buffer][] = [
    ['empty', Buffer.alloc(0)],
    ['no header', good.subarray(4)],
    ['truncated', good.subarray(0, good.length - 5)],
    ['trailing garbage', Buffer.concat([good, Buffer.from('x')])],
    ['no trailer', good.subarray(0, good.indexOf('%%%\n') + 4)],
    ['length too long', Buffer.from('###\n99:(0)t=x,%%%\n3:1 0,')],
    ['bad type', Buffer.from('###\n6:(9)t=x,%%%\n3:1 0,')],
    ['no equals', Buffer.from('###\n6:(0)tex,%%%\n3:1 0,')],
    ['empty name', Buffer.from('###\n6:(0)=xx,%%%\n3:1 0,')],
    ['non-hex digest', Buffer.from('###\n6:(0)t=x,%%%\n3:1 z,')],
  ];
  for (const [what, buf] of cases) {
    it(`${what} → malformed`, () => {
      const d = decodePacket(buf);
      assert.equal(d.ok, false);
    });
  }
  it('the minimal message decodes', () => {
    const d = decodePacket(Buffer.from('###\n6:(0)t=x,%%%\n3:1 0,'));
    assert.ok(d.ok);
    assert.deepEqual(d.packet.fields.map((f: WireField) => f.name), ['t']);
  });
});
