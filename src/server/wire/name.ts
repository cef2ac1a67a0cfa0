/**
 * Domain names in presentation form: absolute, with a trailing dot ("www.example.com.", root "."),
 * special bytes escaped the way dig prints them (`\.`, `\\`, `\DDD`).
 */
export class WireError extends Error {
  override name = 'WireError';
}

const MAX_NAME = 255;
const MAX_POINTER_HOPS = 64;

function escapeLabel(buf: Buffer, start: number, len: number): string {
  // Hot path: almost every label is plain printable text and can be sliced out as is.
  let plain = true;
  for (let i = start; i < start + len; i++) {
    const c = buf[i]!;
    if (c <= 0x20 || c >= 0x7f || c === 0x2e || c === 0x5c) { plain = false; break; }
  }
  if (plain) return buf.toString('latin1', start, start + len);
  let s = '';
  for (let i = start; i < start + len; i++) {
    const c = buf[i]!;
    if (c === 0x2e || c === 0x5c) s += '\\' + String.fromCharCode(c);
    else if (c > 0x20 && c < 0x7f) s += String.fromCharCode(c);
    else s += '\\' + String(c).padStart(3, '0');
  }
  return s;
}

/** Reads a possibly compressed name at `off`; returns the name and the offset after it in place. */
export function readName(buf: Buffer, off: number): [string, number] {
  let name = '';
  let wireLen = 1;
  let end = -1;
  let hops = 0;
  for (;;) {
    if (off >= buf.length) throw new WireError('name runs past the end of the message');
    const len = buf[off]!;
    if (len === 0) {
      if (end < 0) end = off + 1;
      return [name === '' ? '.' : name, end];
    }
    const kind = len & 0xc0;
    if (kind === 0xc0) {
      if (off + 1 >= buf.length) throw new WireError('compression pointer runs past the end');
      if (++hops > MAX_POINTER_HOPS) throw new WireError('compression pointer loop');
      if (end < 0) end = off + 2;
      off = ((len & 0x3f) << 8) | buf[off + 1]!;
      continue;
    }
    if (kind !== 0) throw new WireError(`bad label type 0x${kind.toString(16)}`);
    wireLen += len + 1;
    if (wireLen > MAX_NAME) throw new WireError('name longer than 255 bytes');
    if (off + 1 + len > buf.length) throw new WireError('label runs past the end of the message');
    name += escapeLabel(buf, off + 1, len) + '.';
    off += len + 1;
  }
}

/**
 * Offset just after the (possibly compressed) name at `off`, without building it: for walking records
 * of messages this server encoded or already checked. Throws WireError when the name runs past the end.
 */
export function skipName(buf: Buffer, off: number): number {
  for (;;) {
    const len = buf[off];
    if (len === undefined) throw new WireError('name runs past the end of the message');
    if (len === 0) return off + 1;
    if ((len & 0xc0) === 0xc0) return off + 2;
    off += len + 1;
  }
}

/** Splits a presentation name into raw labels (escapes resolved). Root gives []. */
export function nameLabels(name: string): Buffer[] {
  if (name === '.' || name === '') return [];
  if (!name.includes('\\')) {
    const parts = name.endsWith('.') ? name.slice(0, -1).split('.') : name.split('.');
    return parts.map((p) => Buffer.from(p, 'latin1'));
  }
  const labels: Buffer[] = [];
  let cur: number[] = [];
  for (let i = 0; i < name.length; i++) {
    const ch = name[i]!;
    if (ch === '\\') {
      const digits = name.slice(i + 1, i + 4);
      if (/^\d{3}$/.test(digits)) {
        cur.push(Number(digits) & 0xff);
        i += 3;
      } else {
        cur.push(name.charCodeAt(++i) & 0xff);
      }
    } else if (ch === '.') {
      labels.push(Buffer.from(cur));
      cur = [];
    } else {
      cur.push(name.charCodeAt(i) & 0xff);
    }
  }
  if (cur.length) labels.push(Buffer.from(cur));
  return labels;
}

/** Uncompressed wire form of a name. */
export function nameToWire(name: string): Buffer {
  const labels = nameLabels(name);
  const out = Buffer.allocUnsafe(labels.reduce((n, l) => n + l.length + 1, 1));
  let off = 0;
  for (const l of labels) {
    if (l.length === 0 || l.length > 63) throw new WireError(`bad label length ${l.length} in ${name}`);
    out[off++] = l.length;
    l.copy(out, off);
    off += l.length;
  }
  out[off] = 0;
  if (out.length > MAX_NAME) throw new WireError(`name longer than 255 bytes: ${name}`);
  return out;
}

/** Number of labels of a presentation name ("a.b." -> 2, "." -> 0). */
export function countLabels(name: string): number {
  return nameLabels(name).length;
}
