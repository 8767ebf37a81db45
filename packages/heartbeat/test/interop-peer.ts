/**
 * A minimal tandem node for the interop test, run inside a network namespace: it speaks heartbeat
 * 3.0.6's wire protocol through tandem's codec and media (status every keepalive, init → up →
 * active, signed with the active key), passes everything it hears through the authentication gate,
 * and prints one JSON line per verdict. It answers the two things a real node waits for: `reqnodes`
 * (with `repnodes`; until then the real node does not go active) and flow-control acks (`NS_ackmsg`
 * for every tenth sequence number). It is not the daemon: membership is not involved.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createMedium } from '../src/media/index.ts';
import { buildFields, encodePacket, verify, ReplayGuard, type SignKey } from '../src/codec.ts';
import type { MediumConfig } from '../src/hacf.ts';

interface Args { node: string; nodes: string[]; media: MediumConfig[]; key: SignKey; keepaliveMs: number; deadtimeMs: number; durationMs: number }

const args = JSON.parse(process.argv[2]!) as Args;
const gate = {
  keys: { active: args.key.num, keys: new Map([[args.key.num, { method: args.key.method, secret: args.key.secret }]]) },
  knownNodes: new Set(args.nodes),
  replay: new ReplayGuard(),
};
const uuid = randomBytes(16);
const hg = Math.floor(Date.now() / 1000);
let seq = 0;
const out = (o: object): void => void process.stdout.write(JSON.stringify(o) + '\n');

const media = args.media.map((cfg) => ({ cfg, m: createMedium(cfg, { onError: (e) => out({ error: e.message }) }) }));
for (const { cfg, m } of media) {
  await m.start((r) => {
    const v = verify(r.packet, gate);
    if (v.ok) {
      out({ ok: true, dup: v.duplicate, on: cfg.type, src: v.msg.src, t: v.msg.type, st: v.msg.fields.get('st'), seq: v.msg.seq, from: r.from });
      if (!v.duplicate && v.msg.src !== args.node) answer(v.msg.type, v.msg.src, v.msg.seq, v.msg.wire.find((f) => f.name === 'srcuuid')?.value, v.msg.fields.get('dest'));
    } else out({ ok: false, on: cfg.type, reason: v.reason, detail: v.detail, from: r.from });
  });
}

function loadavg(): string {
  try { return readFileSync('/proc/loadavg', 'utf8').trim(); } catch { return '0.00 0.00 0.00 1/1 1'; }
}

function broadcast(packet: Buffer): void {
  for (const { m } of media) m.send(packet);
}

function answer(type: string, from: string, theirSeq: number | undefined, theirUuid: Buffer | undefined, dest: string | undefined): void {
  if (dest !== undefined && dest !== args.node) return;
  const ctl = { src: args.node, srcuuid: uuid, hg, ts: Date.now() / 1000, ttl: args.nodes.length + 1, destuuid: theirUuid };
  if (type === 'reqnodes') {
    seq++;
    broadcast(encodePacket(buildFields([['t', 'repnodes'], ['nodelist', args.nodes.join(' ') + ' '], ['delnodelist', ' ']], { ...ctl, seq, ld: loadavg() }), args.key));
  }
  if (theirSeq !== undefined && theirSeq % 10 === 0) {
    broadcast(encodePacket(buildFields([['t', 'NS_ackmsg'], ['dest', from], ['ackseq', theirSeq.toString(16)]], ctl), args.key));
  }
}

function send(): void {
  seq++;
  const st = seq === 1 ? 'init' : seq <= 3 ? 'up' : 'active';
  const ld = loadavg();
  const fields = buildFields([['t', 'status'], ['st', st], ['dt', args.deadtimeMs.toString(16)], ['protocol', '1']], {
    src: args.node, srcuuid: uuid, seq, hg, ts: Date.now() / 1000, ld, ttl: args.nodes.length + 1,
  });
  broadcast(encodePacket(fields, args.key, { innerAuth: true }));
}

send();
const timer = setInterval(send, args.keepaliveMs);
const stop = async (): Promise<void> => {
  clearInterval(timer);
  for (const { m } of media) await m.close();
  out({ done: true, sent: seq });
  process.exit(0);
};
setTimeout(() => void stop(), args.durationMs);
process.once('SIGTERM', () => void stop());
out({ ready: args.node });
