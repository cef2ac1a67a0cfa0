/** DNS over a byte stream (RFC 1035 §4.2.2, RFC 7766 §8): each message behind its two-byte length. */

/** The message behind its length, ready to write in one call. */
export function tcpFrame(msg: Buffer): Buffer {
  const f = Buffer.allocUnsafe(msg.length + 2);
  f.writeUInt16BE(msg.length, 0);
  msg.copy(f, 2);
  return f;
}

/** Reassembles the messages of a stream from the chunks it arrives in. */
export class StreamFrames {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
  }

  /**
   * The next complete message, or undefined until one has arrived. A copy: a view would keep the whole
   * chunk it came in alive for as long as the message is held (memos, pending answers).
   */
  next(): Buffer | undefined {
    if (this.buf.length < 2) return undefined;
    const end = 2 + this.buf.readUInt16BE(0);
    if (this.buf.length < end) return undefined;
    const msg = Buffer.from(this.buf.subarray(2, end));
    this.buf = this.buf.subarray(end);
    return msg;
  }

  /** Bytes received and not yet taken: a partial message, or whole ones left while the reader paused. */
  get buffered(): number {
    return this.buf.length;
  }
}
