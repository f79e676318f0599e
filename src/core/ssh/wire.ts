/** The SSH wire encoding (RFC 4251 §5): uint32 and length-prefixed strings, read strictly. */

export class WireError extends Error {}

/** The data ended before a field did. */
export class TruncatedError extends WireError {}

export class WireReader {
  private at = 0;
  private readonly buf: Buffer;
  constructor(buf: Uint8Array) {
    this.buf = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.length);
  }

  get remaining(): number {
    return this.buf.length - this.at;
  }

  /** Make sure `n` more bytes are there (the message is built only when they are not). */
  private need(n: number, what: string, suffix = ''): void {
    if (n > this.buf.length - this.at) throw new TruncatedError(`truncated ${what}${suffix}: wanted ${n} bytes, ${this.remaining} left`);
  }

  bytes(n: number, what: string): Buffer {
    this.need(n, what);
    // A view, not a copy: nothing read is written to.
    const out = this.buf.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }

  uint32(what: string, suffix = ''): number {
    this.need(4, what, suffix);
    const v = this.buf.readUInt32BE(this.at);
    this.at += 4;
    return v;
  }

  string(what: string): Buffer {
    return this.bytes(this.uint32(what, ' length'), what);
  }

  /** Pass over a string field without reading it. */
  skip(what: string): void {
    const n = this.uint32(what, ' length');
    this.need(n, what);
    this.at += n;
  }

  /** A string field as one character per byte (type names: no view allocated). */
  latin1(what: string): string {
    const n = this.uint32(what, ' length');
    this.need(n, what);
    this.at += n;
    return this.buf.toString('latin1', this.at - n, this.at);
  }

  /** The next `n` bytes as one character per byte. */
  latin1Bytes(n: number, what: string): string {
    this.need(n, what);
    this.at += n;
    return this.buf.toString('latin1', this.at - n, this.at);
  }

  text(what: string): string {
    const n = this.uint32(what, ' length');
    this.need(n, what);
    this.at += n;
    return this.buf.toString('utf8', this.at - n, this.at);
  }

  end(what: string): void {
    if (this.remaining !== 0) throw new WireError(`${this.remaining} trailing bytes after ${what}`);
  }
}

export function wireString(data: Uint8Array | string): Buffer {
  const body = typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length, 0);
  return Buffer.concat([len, body]);
}

export function wireUint32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n, 0);
  return b;
}
