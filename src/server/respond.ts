import { DEFAULT_UDP_SIZE, FLAG, HEADER_SIZE, RCODE, SERVER_UDP_SIZE, TYPE } from './wire/constants.js';
import { decodeMessage, encodeMessage, type Message } from './wire/message.js';
import { skipName } from './wire/name.js';
import type { ParsedQuery } from './wire/query.js';
import type { Reply } from './types.js';

/** Largest response the asker accepts: 512 without EDNS, its EDNS size (capped at ours) with it; TCP 64k. */
export function responseLimit(q: ParsedQuery, proto: 'udp' | 'tcp'): number {
  if (proto === 'tcp') return 65535;
  if (!q.edns) return DEFAULT_UDP_SIZE;
  return Math.min(Math.max(q.edns.udpSize, DEFAULT_UDP_SIZE), SERVER_UDP_SIZE);
}

/** Canonical encodings of returned Messages (ID 0, no OPT), memoised per object: see Reply. */
const encoded = new WeakMap<Message, Buffer>();

/** The canonical encoding of a returned Message (for plugins that post-process wire bytes: cache, loadbalance). */
export function canonicalWire(msg: Message): Buffer {
  let w = encoded.get(msg);
  if (!w) {
    const e = encodeMessage({ ...msg, edns: null });
    // Its own memory, not a slice of Node's shared 8 KB pool: a memoised encoding would keep the whole
    // slab alive, and the short-lived buffers of other queries in it, long after they are gone.
    w = Buffer.allocUnsafeSlow(e.length);
    e.copy(w);
    encoded.set(msg, w);
  }
  return w;
}

/** Offset of the OPT record in a message (a response, or a query's raw bytes), or -1 (walks only when ARCOUNT > 0). */
export function findOpt(buf: Buffer): number {
  const ar = buf.readUInt16BE(10);
  if (ar === 0) return -1;
  let off = HEADER_SIZE;
  const qd = buf.readUInt16BE(4);
  for (let i = 0; i < qd; i++) off = skipName(buf, off) + 4;
  const total = buf.readUInt16BE(6) + buf.readUInt16BE(8) + ar;
  for (let i = 0; i < total; i++) {
    const o = skipName(buf, off);
    if (i >= total - ar && buf.readUInt16BE(o) === TYPE.OPT) return off;
    off = o + 10 + buf.readUInt16BE(o + 8);
  }
  return -1;
}

/** What of an encoded response goes to the asker: the bytes before `end`, with these section counts. */
interface Layout { end: number; an: number; ns: number; ar: number; tc: boolean }

/**
 * Cuts an encoded response to `budget` bytes at a record boundary, the way encodeMessage's maxSize does
 * (records in order until one does not fit; TC only when an answer or authority record is left out),
 * so a big answer is truncated for a UDP asker without decoding it. A trailing OPT is left out (the
 * server writes its own); `opt` false skips looking for one (our own encodings carry none). `end` is -1
 * when an OPT sits anywhere but last (the slow path handles that).
 */
function layout(src: Buffer, qEnd: number, budget: number, opt: boolean): Layout {
  const counts = [src.readUInt16BE(6), src.readUInt16BE(8), src.readUInt16BE(10)];
  const kept = [0, 0, 0];
  let off = qEnd;
  let cut = -1;
  let tc = false;
  walk: for (let s = 0; s < 3; s++) {
    for (let i = 0; i < counts[s]!; i++) {
      const start = off;
      const o = skipName(src, off);
      off = o + 10 + src.readUInt16BE(o + 8);
      if (opt && s === 2 && src.readUInt16BE(o) === TYPE.OPT) {
        if (off !== src.length) return { end: -1, an: 0, ns: 0, ar: 0, tc: false };
        if (cut < 0) cut = start;
        break walk;
      }
      if (cut >= 0) continue;
      if (off > budget) {
        cut = start;
        tc = s < 2;
        if (!opt) break walk;
      } else {
        kept[s]!++;
      }
    }
  }
  return { end: cut < 0 ? off : cut, an: kept[0]!, ns: kept[1]!, ar: kept[2]!, tc };
}

function optRecord(q: ParsedQuery, rcode: number): Buffer {
  const b = Buffer.alloc(11);
  b.writeUInt16BE(TYPE.OPT, 1);
  b.writeUInt16BE(SERVER_UDP_SIZE, 3);
  b[5] = rcode >> 4;
  if (q.edns!.do) b[7] = 0x80;
  return b;
}

/**
 * Turns a chain's reply into the bytes for this asker. Fast path (pre-encoded answers): copy (cut at a
 * record boundary when too big), patch the header and the question bytes (echoing the asker's letter
 * case), append our OPT. Anything unusual (another question, an OPT that is not last) is decoded and
 * re-encoded with truncation.
 */
export function renderReply(q: ParsedQuery, reply: Reply, limit: number, ra: boolean): Buffer {
  if (!reply.msg && !reply.wire) return errorResponse(q, reply.rcode, ra, reply.ede, reply.edeText);
  const src = reply.wire ?? canonicalWire(reply.msg!);
  let out: Buffer | undefined;
  if (src.readUInt16BE(4) === 1 && reply.ede === undefined && sameQuestionBytes(src, q)) {
    // Our own encodings and cache entries carry no OPT; an upstream's (forward) may, as the last record.
    const opt = reply.wire !== undefined && src.readUInt16BE(10) > 0;
    const extra = q.edns ? 11 : 0;
    const l = !opt && src.length + extra <= limit ? undefined : layout(src, q.questionEnd, limit - extra, opt);
    if (!l || l.end >= 0) {
      const end = l ? l.end : src.length;
      out = Buffer.allocUnsafe(end + extra);
      src.copy(out, 0, 0, end);
      q.raw.copy(out, HEADER_SIZE, HEADER_SIZE, q.questionEnd);
      let ar = src.readUInt16BE(10);
      if (l) {
        if (l.tc) out[2]! |= FLAG.TC >> 8;
        out.writeUInt16BE(l.an, 6);
        out.writeUInt16BE(l.ns, 8);
        ar = l.ar;
      }
      if (q.edns) {
        optRecord(q, reply.msg ? reply.msg.rcode : src.readUInt16BE(2) & 0xf).copy(out, end);
        ar++;
      }
      out.writeUInt16BE(ar, 10);
    }
  }
  if (!out) {
    const m = reply.msg ?? decodeMessage(src);
    out = encodeMessage({
      ...m,
      question: { name: q.name, type: q.type, class: q.class },
      edns: q.edns ? { udpSize: SERVER_UDP_SIZE, version: 0, do: q.edns.do, options: edeOption(reply.ede, reply.edeText) } : null,
    }, limit);
  }
  out.writeUInt16BE(q.id, 0);
  let flags = out.readUInt16BE(2) | FLAG.QR;
  flags = q.rd ? flags | FLAG.RD : flags & ~FLAG.RD;
  flags = q.cd ? flags | FLAG.CD : flags & ~FLAG.CD;
  flags = ra ? flags | FLAG.RA : flags & ~FLAG.RA;
  out.writeUInt16BE(flags, 2);
  return out;
}

const fold = (c: number) => (c >= 0x41 && c <= 0x5a ? c | 0x20 : c);

/** The reply carries the query's question byte for byte, but for letter case: it can be swapped in place. */
function sameQuestionBytes(src: Buffer, q: ParsedQuery): boolean {
  const end = q.questionEnd;
  if (src.length < end) return false;
  const raw = q.raw;
  for (let i = HEADER_SIZE; i < end - 4; i++) if (src[i] !== raw[i] && fold(src[i]!) !== fold(raw[i]!)) return false;
  for (let i = end - 4; i < end; i++) if (src[i] !== raw[i]) return false;
  return true;
}

/**
 * An empty response with `rcode`, echoing the question (and OPT when the query had EDNS, with the Extended
 * DNS Error `ede` if given: RFC 8914 options travel in OPT, which a query without EDNS must not get back).
 */
export function errorResponse(q: ParsedQuery, rcode: number, ra: boolean, ede?: number, edeText?: string): Buffer {
  const m: Message = {
    id: q.id, rd: q.rd, cd: q.cd, ra, rcode, question: { name: q.name, type: q.type, class: q.class },
    answer: [], authority: [], additional: [],
    edns: q.edns ? { udpSize: SERVER_UDP_SIZE, version: 0, do: q.edns.do, options: edeOption(ede, edeText) } : null,
  };
  return encodeMessage(m);
}

/** EDNS option 15 (RFC 8914 §2): an info code and its optional UTF-8 extra text; none without a code. */
function edeOption(code: number | undefined, text = ''): Buffer | undefined {
  if (code === undefined) return undefined;
  const extra = Buffer.from(text, 'utf8');
  const b = Buffer.alloc(6 + extra.length);
  b.writeUInt16BE(15, 0);
  b.writeUInt16BE(2 + extra.length, 2);
  b.writeUInt16BE(code, 4);
  extra.copy(b, 6);
  return b;
}

/** FORMERR/NOTIMP for a query whose question could not be used: header echoed, no question. */
export function headerOnlyResponse(id: number, opcode: number, rd: boolean, rcode: number): Buffer {
  const b = Buffer.alloc(HEADER_SIZE);
  b.writeUInt16BE(id, 0);
  b.writeUInt16BE(FLAG.QR | (opcode & 0xf) << 11 | (rd ? FLAG.RD : 0) | (rcode & 0xf), 2);
  return b;
}

export { RCODE };
