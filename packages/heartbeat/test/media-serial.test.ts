/** serial over real PTY pairs made by socat, and the classic framer on its own. */
import assert from 'node:assert/strict';
import { execa, type ResultPromise } from 'execa';
import { openSync, writeSync, closeSync } from 'node:fs';
import { processAlive } from '@tandem/core';
import { createSerialMedium, ClassicFramer, SERIAL_MAX_FRAME } from '../src/media/serial.ts';
import { buildFields, encodePacket, encodeClassic, verify, ReplayGuard, type SignKey } from '../src/codec.ts';
import type { Received } from '../src/types.ts';
import { waitFor } from '../../../test/lab/ports.ts';

const KEY: SignKey = { num: 1, method: 'sha1', secret: 'serial-secret' };
const KEYS = { active: 1, keys: new Map([[1, { method: 'sha1' as const, secret: 'serial-secret' }]]) };
const UUID = Buffer.alloc(16, 7);

function status(src: string, seq: number): Buffer {
  return encodePacket(buildFields([['t', 'status'], ['st', 'active']], { src, srcuuid: UUID, seq, hg: 1, ts: 1, ld: '0.1 0.1 0.1 1/1 1', ttl: 3 }), KEY);
}

const until = (pred: () => boolean, ms: number): Promise<boolean> => waitFor('a condition', pred, ms, 20, { retryErrors: false }).then(() => true, () => pred());

async function ptyPair(): Promise<{ proc: ResultPromise; a: string; b: string }> {
  const proc = execa('socat', ['-d', '-d', 'pty,raw,echo=0', 'pty,raw,echo=0'], { reject: false, buffer: false, stdin: 'ignore', stdout: 'ignore', stderr: 'pipe' });
  const ptys: string[] = [];
  proc.stderr!.on('data', (d: Buffer) => { for (const m of d.toString().matchAll(/PTY is (\S+)/g)) ptys.push(m[1]!); });
  assert.ok(await until(() => ptys.length === 2, 10_000), 'socat made a PTY pair');
  // socat logs "starting data transfer loop" once both sides are open.
  await new Promise((r) => setTimeout(r, 200));
  return { proc, a: ptys[0]!, b: ptys[1]! };
}

describe('media: serial over a socat PTY pair', function () {
  this.timeout(30_000);
  let pair: Awaited<ReturnType<typeof ptyPair>>;
  before(async () => { pair = await ptyPair(); });
  after(async () => {
    const pid = pair?.proc.pid;
    if (pid && processAlive(pid)) process.kill(pid, 'SIGTERM');
    await Promise.race([pair?.proc, new Promise((r) => setTimeout(r, 3000))]);
  });

  it('carries netstring packets as classic frames that pass the gate, both ways, in order', async () => {
    const a = createSerialMedium({ device: pair.a, baud: 115200 }, { key: KEY });
    const b = createSerialMedium({ device: pair.b, baud: 115200 }, { key: KEY });
    const atA: Received[] = [];
    const atB: Received[] = [];
    await a.start((r) => atA.push(r));
    await b.start((r) => atB.push(r));
    try {
      assert.equal(a.link, pair.a);
      for (let i = 1; i <= 40; i++) a.send(status('node1', i));
      // msgfmt netstring: no inner auth, the medium signs the classic form with its key.
      const bare = encodePacket(buildFields([['t', 'status'], ['st', 'up']], { src: 'node2', srcuuid: UUID, seq: 1, hg: 1, ts: 1, ttl: 3 }), KEY, { innerAuth: false });
      b.send(bare);
      assert.ok(await until(() => atB.length === 40 && atA.length === 1, 15_000), `B got ${atB.length}, A got ${atA.length}`);
      const gate = { keys: KEYS, knownNodes: new Set(['node1', 'node2']), replay: new ReplayGuard() };
      atB.forEach((r, i) => {
        assert.equal(r.packet.subarray(0, 4).toString(), '>>>\n');
        const v = verify(r.packet, gate);
        assert.ok(v.ok && !v.duplicate && v.msg.seq === i + 1, `packet ${i + 1}`);
        assert.equal(r.from, pair.b);
      });
      const v = verify(atA[0]!.packet, gate);
      assert.ok(v.ok && v.msg.src === 'node2' && v.msg.fields.get('st') === 'up');
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('resynchronises after line noise and sets the tty raw at the configured baud', async () => {
    const b = createSerialMedium({ device: pair.b, baud: 19200 });
    const atB: Received[] = [];
    await b.start((r) => atB.push(r));
    try {
      const st = await execa('stty', ['-F', pair.b, '-a'], { reject: false });
      assert.match(st.stdout, /speed 19200 baud/);
      assert.match(st.stdout, /-icanon/);
      assert.match(st.stdout, /-echo\b/);
      const fd = openSync(pair.a, 'w');
      try {
        const good = encodeClassic(buildFields([['t', 'status']], { src: 'node1', srcuuid: UUID, seq: 9, hg: 1, ts: 1, ttl: 3 }), KEY);
        writeSync(fd, Buffer.concat([Buffer.from('\x00\xffnoise>>>\npartial'), good, Buffer.from('junk'), good]));
      } finally {
        closeSync(fd);
      }
      assert.ok(await until(() => atB.length === 2, 10_000), `got ${atB.length}`);
      for (const r of atB) assert.ok(r.packet.toString('latin1').startsWith('>>>\nt=status\n'));
    } finally {
      await b.close();
    }
  });

  it('a missing device fails start with E_MEDIA_BIND', async () => {
    const m = createSerialMedium({ device: '/dev/does-not-exist-h5', baud: 19200 });
    await assert.rejects(m.start(() => undefined), (e: Error & { code?: string }) => e.code === 'E_MEDIA_BIND');
  });
});

describe('media: the classic framer', () => {
  const f1 = Buffer.from('>>>\nt=a\nauth=1 0\n<<<\n');
  const f2 = Buffer.from('>>>\nt=b\nauth=1 0\n<<<\n');
  it('splits frames fed one byte at a time', () => {
    const fr = new ClassicFramer();
    const out: string[] = [];
    for (const byte of Buffer.concat([f1, f2])) out.push(...fr.push(Buffer.from([byte])).map((b) => b.toString()));
    assert.deepEqual(out, [f1.toString(), f2.toString()]);
  });
  it('drops garbage, cut frames and oversize frames', () => {
    const fr = new ClassicFramer();
    const out = fr.push(Buffer.concat([Buffer.from('xx>>>\nt=cut'), f1, Buffer.from('>>>\n'), Buffer.alloc(SERIAL_MAX_FRAME + 10, 0x41), f2]));
    assert.deepEqual(out.map((b) => b.toString()), [f1.toString(), f2.toString()]);
    assert.ok(fr.dropped > SERIAL_MAX_FRAME);
  });
});
