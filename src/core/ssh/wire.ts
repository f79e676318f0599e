/** The SSH wire encoding (RFC 4251 §5): uint32 and length-prefixed strings, read strictly. */

export class WireError extends Error {}

/** The data ended before a field did. */
export class TruncatedError extends WireError {}

export class WireReader {
  private at = 0;
  constructor(private readonly buf: Uint8Array) {}

  get remaining(): number {
    return this.buf.length - this.at;
  }

  bytes(n: number, what: string): Buffer {
    if (n > this.remaining) throw new TruncatedError(`truncated ${what}: wanted ${n} bytes, ${this.remaining} left`);
    // A view, not a copy: nothing read is written to.
    const out = Buffer.from(this.buf.buffer, this.buf.byteOffset + this.at, n);
    this.at += n;
    return out;
  }

  uint32(what: string): number {
    return this.bytes(4, what).readUInt32BE(0);
  }

  string(what: string): Buffer {
    return this.bytes(this.uint32(`${what} length`), what);
  }

  text(what: string): string {
    return this.string(what).toString('utf8');
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
