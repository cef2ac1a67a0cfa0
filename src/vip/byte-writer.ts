/**
 * Restore input built straight into bytes. At 10k services the iptables input is ~300k rules and ~30 MB:
 * held as one string per rule until a final join, those strings survived young-generation collections and
 * rendering spent half its time in the GC. Here pieces are appended to a short rope that is written out
 * (one native call) every few kilobytes, so nothing per rule outlives the call.
 */
export interface LineSink {
  /** Appends text without ending the line. */
  put(s: string): LineSink;
  /** Appends text and a newline: one line done. */
  end(s: string): void;
  /** Appends text that ends a line and may start the next (`s` holds the newline): one line done. */
  line(s: string): LineSink;
  /** Lines ended so far. */
  readonly lines: number;
}

/** Rope length written out at once: short enough to stay in the young generation, long enough to amortise the call. */
const FLUSH_CHARS = 4096;
/** Output is kept in pieces (16 KB doubling up to 1 MB): growing one buffer would copy it again at every doubling. */
const FIRST_CHUNK = 16 * 1024;
const MAX_CHUNK = 1 << 20;

/**
 * Every piece must be ASCII: rules are built from names the converter validated as DNS labels, canonical
 * addresses and numbers. Written as latin1, the cheapest encoding, which is byte-identical for ASCII.
 */
export class ByteWriter implements LineSink {
  private readonly full: Buffer[] = [];
  private buf: Buffer | null = null;
  private len = 0;
  private pending = '';
  lines = 0;

  put(s: string): this {
    this.pending += s;
    return this;
  }

  end(s: string): void {
    this.pending += s;
    this.pending += '\n';
    this.lines++;
    if (this.pending.length >= FLUSH_CHARS) this.flush();
  }

  line(s: string): this {
    this.pending += s;
    this.lines++;
    if (this.pending.length >= FLUSH_CHARS) this.flush();
    return this;
  }

  /** Appends text holding `lines` complete lines. */
  raw(text: string, lines: number): void {
    this.pending += text;
    this.lines += lines;
    if (this.pending.length >= FLUSH_CHARS) this.flush();
  }

  /** Everything written, as views on the writer's pieces. */
  chunks(): Buffer[] {
    this.flush();
    return this.buf && this.len > 0 ? [...this.full, this.buf.subarray(0, this.len)] : [...this.full];
  }

  private flush(): void {
    const n = this.pending.length;
    if (n === 0) return;
    if (!this.buf || this.len + n > this.buf.length) {
      if (this.buf) this.full.push(this.buf.subarray(0, this.len));
      this.buf = Buffer.allocUnsafe(Math.max(n, Math.min(MAX_CHUNK, FIRST_CHUNK * 2 ** this.full.length)));
      this.len = 0;
    }
    this.len += this.buf.write(this.pending, this.len, 'latin1');
    this.pending = '';
  }
}

/** Counts lines without keeping them: the chains a partial sync leaves alone still count as rules. */
export class LineCounter implements LineSink {
  lines = 0;

  put(): this {
    return this;
  }

  end(): void {
    this.lines++;
  }

  line(): this {
    this.lines++;
    return this;
  }
}

/**
 * Collects a few lines as one flat string: a service port's top-level rules, kept for the next partial
 * sync and appended whole (a rope would be walked piece by piece at every sync).
 */
export class StringSink implements LineSink {
  private readonly parts: string[] = [];
  lines = 0;

  get text(): string {
    return this.parts.join('');
  }

  put(s: string): this {
    this.parts.push(s);
    return this;
  }

  end(s: string): void {
    this.parts.push(s, '\n');
    this.lines++;
  }

  line(s: string): this {
    this.parts.push(s);
    this.lines++;
    return this;
  }
}
