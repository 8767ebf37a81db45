import { CheckFailed } from './util.ts';

/** An HTTP response as the checks judge it. */
export interface RawResponse {
  status: number;
  statusText: string;
  location: string | undefined;
  body: string;
}

const MAX_BODY = 1 << 20;
const STATUS_LINE = /^HTTP\/(\d\.\d) (\d{3})(?: (.*))?$/;
const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');

/**
 * Minimal HTTP/1.x response parser: status line, headers (only Content-Length, Transfer-Encoding
 * and Location matter), body by length, chunked encoding or end of stream.
 */
export class ResponseParser {
  readonly #isHead: boolean;
  #chunks: Buffer[] = [];
  #size = 0;
  #headerEnd = -1;
  #status = 0;
  #statusText = '';
  #location: string | undefined;
  #length = -1;
  #chunked = false;
  #bodyStart = 0;
  #reusable = false;

  constructor(isHead: boolean) {
    this.#isHead = isHead;
  }

  /** Feeds bytes; true when the response is complete. */
  push(chunk: Buffer): boolean {
    this.#chunks.push(chunk);
    this.#size += chunk.length;
    if (this.#size > MAX_BODY) throw new CheckFailed(`response larger than ${MAX_BODY} bytes`);
    if (this.#headerEnd < 0) {
      const all = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks);
      this.#chunks = [all];
      const end = all.indexOf(HEAD_END);
      if (end < 0) return false;
      this.#headerEnd = end;
      this.#bodyStart = end + 4;
      this.#parseHead(all.toString('latin1', 0, end));
      if (this.#isHead || this.#status === 204 || this.#status === 304 || (this.#status >= 100 && this.#status < 200)) return true;
    }
    if (this.#length >= 0) return this.#size - this.#bodyStart >= this.#length;
    if (this.#chunked) return this.#chunkedComplete();
    return false;
  }

  #parseHead(head: string): void {
    let eol = head.indexOf('\r\n');
    if (eol < 0) eol = head.length;
    const first = head.slice(0, eol);
    const m = STATUS_LINE.exec(first);
    if (!m) throw new CheckFailed(`not an HTTP response: ${JSON.stringify(first.slice(0, 60))}`);
    this.#status = Number(m[2]);
    this.#statusText = m[3] ?? '';
    this.#reusable = m[1] === '1.1';
    // Header lines are scanned in place; only Content-Length, Transfer-Encoding, Location and
    // Connection matter, so a line is only cut out when its first letter is c, t or l.
    for (let pos = eol + 2; pos < head.length; ) {
      let e = head.indexOf('\r\n', pos);
      if (e < 0) e = head.length;
      const f = head.charCodeAt(pos) | 0x20;
      if (f === 0x63 || f === 0x74 || f === 0x6c) {
        const c = head.indexOf(':', pos);
        if (c > pos && c < e) {
          const name = head.slice(pos, c).trim().toLowerCase();
          if (name === 'content-length') this.#length = Number(head.slice(c + 1, e).trim());
          else if (name === 'transfer-encoding') this.#chunked = /chunked/i.test(head.slice(c + 1, e));
          else if (name === 'location') this.#location = head.slice(c + 1, e).trim();
          else if (name === 'connection' && /close/i.test(head.slice(c + 1, e))) this.#reusable = false;
        }
      }
      pos = e + 2;
    }
    if (this.#chunked) this.#length = -1;
    if (this.#length < 0 && !this.#chunked && !this.#isHead) this.#reusable = false;
  }

  #all(): Buffer {
    if (this.#chunks.length > 1) this.#chunks = [Buffer.concat(this.#chunks)];
    return this.#chunks[0] ?? Buffer.alloc(0);
  }

  #chunkedComplete(): boolean {
    return this.#decodeChunked(false) !== undefined;
  }

  #decodeChunked(atEof: boolean): Buffer | undefined {
    const all = this.#all();
    const parts: Buffer[] = [];
    let pos = this.#bodyStart;
    for (;;) {
      const eol = all.indexOf('\r\n', pos);
      if (eol < 0) break;
      const size = parseInt(all.toString('latin1', pos, eol).split(';')[0]!, 16);
      if (!Number.isFinite(size)) throw new CheckFailed('bad chunked encoding');
      if (size === 0) return Buffer.concat(parts);
      if (eol + 2 + size > all.length) break;
      parts.push(all.subarray(eol + 2, eol + 2 + size));
      pos = eol + 2 + size + 2;
    }
    return atEof ? Buffer.concat(parts) : undefined;
  }

  result(): RawResponse {
    const all = this.#all();
    let body = '';
    if (!this.#isHead) {
      if (this.#chunked) body = (this.#decodeChunked(true) ?? Buffer.alloc(0)).toString('utf8');
      else body = all.toString('utf8', this.#bodyStart, this.#length >= 0 ? this.#bodyStart + this.#length : all.length);
    }
    return { status: this.#status, statusText: this.#statusText, location: this.#location, body };
  }

  /** After a complete response: may the connection carry the next request? */
  get reusable(): boolean {
    if (!this.#reusable) return false;
    if (this.#isHead || this.#chunked) return true;
    return this.#size === this.#bodyStart + this.#length;
  }

  /** True once any byte of a response has arrived. */
  get started(): boolean {
    return this.#size > 0;
  }

  finishAtEof(): RawResponse {
    if (this.#headerEnd < 0) throw new CheckFailed(this.#size === 0 ? 'connection closed without a response' : 'connection closed inside the response headers');
    return this.result();
  }
}
