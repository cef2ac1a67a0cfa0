import { HEADER_SIZE, TYPE } from './constants.js';

/**
 * Structural check of a message from elsewhere (an upstream), without building names or records:
 * every name ends (no compression loop, labels and pointers inside the message, at most 255 bytes),
 * every RDATA lies inside the message, and the names and fixed fields inside RDATA lie inside their
 * RDLENGTH. Returns what is wrong, or undefined. miekg/dns refuses to unpack the same messages, so
 * CoreDNS answers SERVFAIL for them instead of relaying them.
 */
export function checkMessage(b: Buffer): string | undefined {
  if (b.length < HEADER_SIZE) return 'shorter than a header';
  let off = HEADER_SIZE;
  for (let i = b.readUInt16BE(4); i > 0; i--) {
    off = nameEnd(b, off);
    if (off < 0) return 'bad question name';
    off += 4;
    if (off > b.length) return 'question runs past the end';
  }
  const records = b.readUInt16BE(6) + b.readUInt16BE(8) + b.readUInt16BE(10);
  for (let i = 0; i < records; i++) {
    off = nameEnd(b, off);
    if (off < 0) return `record ${i + 1}: bad owner name`;
    if (off + 10 > b.length) return `record ${i + 1}: header runs past the end`;
    const type = b.readUInt16BE(off);
    const len = b.readUInt16BE(off + 8);
    const start = off + 10;
    off = start + len;
    if (off > b.length) return `record ${i + 1}: RDLENGTH ${len} runs past the end`;
    const bad = checkRdata(b, type, start, off);
    if (bad) return `record ${i + 1} (type ${type}): ${bad}`;
  }
  return undefined;
}

const MAX_POINTER_HOPS = 64;

/**
 * Offset right after the name at `off` in place (after its first pointer, if any), or -1 when the
 * name is malformed; `limit` bounds the in-place part (a name inside RDATA).
 */
function nameEnd(b: Buffer, off: number, limit = b.length): number {
  let end = -1;
  let hops = 0;
  let wireLen = 1;
  let max = limit;
  for (;;) {
    if (off >= max) return -1;
    const len = b[off]!;
    if (len === 0) return end < 0 ? off + 1 : end;
    if ((len & 0xc0) === 0xc0) {
      if (off + 2 > max || ++hops > MAX_POINTER_HOPS) return -1;
      if (end < 0) end = off + 2;
      // A pointer may lead anywhere in the message (miekg/dns only counts hops); RDATA bounds no longer apply.
      off = ((len & 0x3f) << 8) | b[off + 1]!;
      max = b.length;
      continue;
    }
    if (len & 0xc0) return -1;
    wireLen += len + 1;
    if (wireLen > 255 || off + 1 + len > max) return -1;
    off += len + 1;
  }
}

/** Names and fixed-size fields of the RDATA types whose layout the server or a client reads. */
function checkRdata(b: Buffer, type: number, start: number, end: number): string | undefined {
  const len = end - start;
  const name = (at: number): number => nameEnd(b, at, end);
  switch (type) {
    case TYPE.A: return len === 4 ? undefined : `A with RDLENGTH ${len}`;
    case TYPE.AAAA: return len === 16 ? undefined : `AAAA with RDLENGTH ${len}`;
    case TYPE.NS: case TYPE.CNAME: case TYPE.PTR: case TYPE.DNAME:
      return name(start) === end ? undefined : 'name does not fill RDATA';
    case TYPE.MX:
      return len > 2 && name(start + 2) === end ? undefined : 'bad MX RDATA';
    case TYPE.SRV:
      return len > 6 && name(start + 6) === end ? undefined : 'bad SRV RDATA';
    case TYPE.SOA: {
      const m = name(start);
      const r = m < 0 ? -1 : name(m);
      return r >= 0 && r + 20 === end ? undefined : 'bad SOA RDATA';
    }
    case TYPE.TXT: {
      let p = start;
      while (p < end) p += 1 + b[p]!;
      return p === end ? undefined : 'TXT string runs past RDATA';
    }
    default: return undefined;
  }
}
