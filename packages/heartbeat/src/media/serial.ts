/**
 * serial: heartbeat's serial plugin on a tty (a real port or one side of a PTY pair). The line is
 * set raw, 8 bits, CLOCAL, CREAD, hardware flow control and the configured baud (`stty`, as
 * heartbeat's ttysetup does with termios). Messages travel in heartbeat's classic text form,
 * ">>>\n" ... "auth=N digest\n" "<<<\n": packets handed to send() in netstring form are re-framed
 * (the inner auth field is the classic signature; without it `key` signs). Bytes before ">>>" are
 * skipped, so a reader that starts mid-message resynchronises on the next one.
 *
 * Not done: forwarding other nodes' messages around a serial ring of more than two nodes.
 */
import { openSync, closeSync, write, constants as fsc } from 'node:fs';
import { ReadStream } from 'node:tty';
import { runCommand, describeResult, TandemError } from '@tandem/core';
import type { Medium, Received } from '../types.ts';
import { netstringToClassic, type SignKey } from '../codec.ts';
import type { MediumOptions } from './udp.ts';

export interface SerialSpec { device: string; baud: number }

export interface SerialOptions extends MediumOptions {
  /** Signs the classic form when a packet has no inner auth field (msgfmt netstring). */
  key?: SignKey;
  /** Extra stty settings, e.g. ['-crtscts'] for a cable without RTS/CTS. */
  stty?: string[];
}

/** Frames waiting for the line before new ones are dropped (a keepalive is useless when late). */
export const SERIAL_MAX_QUEUE = 64;
/** heartbeat's MAXMSG: a frame longer than this is garbage. */
export const SERIAL_MAX_FRAME = 40_000;
const HEAD = Buffer.from('>>>\n');
const TAIL = Buffer.from('<<<\n');

/**
 * Splits a byte stream into classic frames. Pure: feed chunks, get complete frames; garbage
 * before a header and frames over SERIAL_MAX_FRAME are dropped.
 */
export class ClassicFramer {
  #buf: Buffer = Buffer.alloc(0);
  dropped = 0;

  push(chunk: Buffer): Buffer[] {
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, chunk]) : Buffer.from(chunk);
    const out: Buffer[] = [];
    for (;;) {
      const h = this.#buf.indexOf(HEAD);
      if (h < 0) {
        // Keep a possible partial header at the end.
        const keep = Math.min(this.#buf.length, HEAD.length - 1);
        if (this.#buf.length > keep) this.dropped += this.#buf.length - keep;
        this.#buf = this.#buf.subarray(this.#buf.length - keep);
        return out;
      }
      if (h > 0) {
        this.dropped += h;
        this.#buf = this.#buf.subarray(h);
      }
      const t = this.#buf.indexOf(TAIL, HEAD.length);
      // A new header before the tail means the earlier frame was cut: start again there.
      const again = this.#buf.indexOf(HEAD, HEAD.length);
      if (again >= 0 && (t < 0 || again < t)) {
        this.dropped += again;
        this.#buf = this.#buf.subarray(again);
        continue;
      }
      if (t < 0) {
        if (this.#buf.length > SERIAL_MAX_FRAME) {
          this.dropped += this.#buf.length;
          this.#buf = Buffer.alloc(0);
        }
        return out;
      }
      const end = t + TAIL.length;
      if (end <= SERIAL_MAX_FRAME) out.push(Buffer.from(this.#buf.subarray(0, end)));
      else this.dropped += end;
      this.#buf = this.#buf.subarray(end);
    }
  }
}

export function createSerialMedium(spec: SerialSpec, opts: SerialOptions = {}): Medium {
  let fd: number | undefined;
  let reader: ReadStream | undefined;
  // One write at a time, in order: concurrent fs.write calls may complete out of order.
  const queue: Buffer[] = [];
  let offset = 0;
  const pump = (): void => {
    const frame = queue[0];
    if (frame === undefined || fd === undefined) return;
    write(fd, frame, offset, frame.length - offset, null, (err, n) => {
      if (err && (err as NodeJS.ErrnoException).code === 'EAGAIN') {
        setTimeout(pump, 5).unref();
        return;
      }
      if (err) {
        opts.onError?.(err);
        queue.shift();
        offset = 0;
      } else if (offset + n < frame.length) {
        offset += n;
      } else {
        queue.shift();
        offset = 0;
      }
      pump();
    });
  };
  return {
    type: 'serial',
    link: spec.device,
    async start(onPacket: (r: Received) => void): Promise<void> {
      const args = ['-F', spec.device, String(spec.baud), 'raw', '-echo', 'cs8', '-parenb', 'clocal', 'cread', 'crtscts', ...(opts.stty ?? [])];
      const r = await runCommand('stty', args, { timeoutMs: 5000 });
      if (r.exitCode !== 0) {
        throw new TandemError('E_MEDIA_BIND', `serial ${spec.device}: stty failed: ${describeResult(r)}`, { hint: 'is it a tty, and readable and writable by this user?' });
      }
      try {
        fd = openSync(spec.device, fsc.O_RDWR | fsc.O_NOCTTY | fsc.O_NONBLOCK);
      } catch (cause) {
        throw new TandemError('E_MEDIA_BIND', `serial ${spec.device}: cannot open: ${(cause as Error).message}`, { cause });
      }
      const framer = new ClassicFramer();
      reader = new ReadStream(fd);
      reader.on('data', (chunk: Buffer | string) => {
        for (const packet of framer.push(typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk)) {
          onPacket({ packet, link: spec.device, from: spec.device });
        }
      });
      reader.on('error', (e) => opts.onError?.(e));
    },
    send(packet: Buffer): void {
      if (fd === undefined) return;
      const frame = packet[0] === 0x3e ? packet : netstringToClassic(packet, opts.key);
      if (!frame) {
        opts.onError?.(new Error(`serial ${spec.device}: packet cannot be framed (not a message, or no inner auth and no key)`));
        return;
      }
      if (queue.length >= SERIAL_MAX_QUEUE) {
        opts.onError?.(new Error(`serial ${spec.device}: ${queue.length} frames waiting, line too slow; frame dropped`));
        return;
      }
      queue.push(frame);
      if (queue.length === 1) pump();
    },
    async close(): Promise<void> {
      const r = reader, f = fd;
      reader = undefined;
      fd = undefined;
      queue.length = 0;
      if (r) {
        await new Promise<void>((resolve) => {
          r.once('close', () => resolve());
          r.destroy();
          setTimeout(resolve, 500).unref();
        });
      } else if (f !== undefined) {
        try { closeSync(f); } catch { /* closed */ }
      }
    },
  };
}
