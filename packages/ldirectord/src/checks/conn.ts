import net from 'node:net';
import tls from 'node:tls';
import { CheckFailed } from './util.ts';

/**
 * A TCP (or TLS) conversation for the line and packet protocols of the negotiate checks (ftp,
 * smtp, pop, imap, nntp, simpletcp, sip, ldap, dns over tcp, mysql, pgsql). Reads wait for a
 * complete line or a given number of bytes; the signal (deadline or abort) destroys the socket, so
 * a pending read rejects and no socket outlives its check.
 */
export interface ConnectOptions {
  host: string;
  port: number;
  signal: AbortSignal;
  /** Speak TLS from the first byte (pops, imaps, ldaps); certificates are not verified, as in ldirectord. */
  tls?: boolean | undefined;
  servername?: string | undefined;
}

type Waiter = () => boolean;

export class Conversation {
  readonly socket: net.Socket;
  #buf: Buffer = Buffer.alloc(0);
  #ended = false;
  #error: Error | undefined;
  #waiter: Waiter | undefined;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
      this.#poke();
    });
    socket.on('end', () => {
      this.#ended = true;
      this.#poke();
    });
    socket.on('error', (err) => {
      this.#error = err;
      this.#poke();
    });
    socket.on('close', () => {
      this.#ended = true;
      this.#poke();
    });
  }

  static open(opts: ConnectOptions): Promise<Conversation> {
    return new Promise((resolve, reject) => {
      if (opts.signal.aborted) {
        reject(opts.signal.reason);
        return;
      }
      const socket: net.Socket = opts.tls
        ? tls.connect({
            host: opts.host,
            port: opts.port,
            rejectUnauthorized: false,
            ...(opts.servername && net.isIP(opts.servername) === 0 ? { servername: opts.servername } : {}),
          })
        : net.connect({ host: opts.host, port: opts.port });
      const onAbort = (): void => {
        socket.destroy();
        reject(opts.signal.reason);
      };
      opts.signal.addEventListener('abort', onAbort, { once: true });
      socket.once('close', () => opts.signal.removeEventListener('abort', onAbort));
      const connected = (): void => {
        socket.off('error', reject);
        const conv = new Conversation(socket);
        opts.signal.addEventListener('abort', () => conv.#failWith(opts.signal.reason as Error), { once: true });
        resolve(conv);
      };
      socket.once('error', reject);
      socket.once(opts.tls ? 'secureConnect' : 'connect', connected);
    });
  }

  #failWith(err: Error): void {
    this.#error ??= err;
    this.socket.destroy();
    this.#poke();
  }

  #poke(): void {
    if (this.#waiter && this.#waiter()) this.#waiter = undefined;
  }

  #wait<T>(take: () => T | undefined, eofOk = false): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const attempt: Waiter = () => {
        const got = take();
        if (got !== undefined) {
          resolve(got);
          return true;
        }
        if (this.#error) {
          reject(this.#error);
          return true;
        }
        if (this.#ended) {
          if (eofOk) {
            const rest = this.#buf;
            this.#buf = Buffer.alloc(0);
            resolve(rest as T);
          } else reject(new CheckFailed('connection closed by server'));
          return true;
        }
        return false;
      };
      if (!attempt()) this.#waiter = attempt;
    });
  }

  /** The next line without its CR LF (or LF). */
  readLine(): Promise<string> {
    return this.#wait(() => {
      const i = this.#buf.indexOf(10);
      if (i < 0) return undefined;
      const line = this.#buf.subarray(0, i > 0 && this.#buf[i - 1] === 13 ? i - 1 : i).toString('latin1');
      this.#buf = this.#buf.subarray(i + 1);
      return line;
    });
  }

  /** Exactly n bytes. */
  readBytes(n: number): Promise<Buffer> {
    return this.#wait(() => {
      if (this.#buf.length < n) return undefined;
      const out = this.#buf.subarray(0, n);
      this.#buf = this.#buf.subarray(n);
      return out;
    });
  }

  /** Whatever arrives until the server closes the connection. */
  readToEnd(): Promise<Buffer> {
    return this.#wait<Buffer>(() => undefined, true);
  }

  /** Up to max bytes, as soon as any arrive (resolves empty at end of stream). */
  readSome(max: number): Promise<Buffer> {
    return this.#wait<Buffer>(() => {
      if (this.#buf.length === 0) return undefined;
      const out = this.#buf.subarray(0, max);
      this.#buf = this.#buf.subarray(out.length);
      return out;
    }, true);
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Shut down the sending side (simpletcp does this after its request, as ldirectord). */
  endWrite(): void {
    this.socket.end();
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Opens a conversation, runs body, and always destroys the socket. */
export async function converse<T>(opts: ConnectOptions, body: (c: Conversation) => Promise<T>): Promise<T> {
  const c = await Conversation.open(opts);
  try {
    return await body(c);
  } finally {
    c.close();
  }
}

/**
 * A multi-line reply of the SMTP/FTP/NNTP family: `250-first`, `250 last`. Returns the code and
 * the text of every line.
 */
export async function readCodeReply(c: Conversation): Promise<{ code: number; text: string }> {
  const lines: string[] = [];
  for (let i = 0; i < 1000; i++) {
    const line = await c.readLine();
    lines.push(line);
    const m = /^(\d{3})([ -]?)/.exec(line);
    if (m && m[2] !== '-') return { code: Number(m[1]), text: lines.join('\n') };
  }
  throw new CheckFailed('reply too long');
}

export function expectCode(reply: { code: number; text: string }, ok: (code: number) => boolean, what: string): void {
  if (!ok(reply.code)) throw new CheckFailed(`${what}: ${reply.text.split('\n').pop()}`);
}
