import { HEADER_SIZE, TYPE } from '../../server/wire/constants.js';
import { shuffleInPlace } from '../../pkg/shuffle.js';
import { decodeMessage, encodeMessage, type RR } from '../../server/wire/message.js';

/**
 * Types whose RDATA may hold compression pointers other than the ones we parse below (RFC 3597 §4 lists them
 * as "well known"); they are extinct in practice, so a message carrying one is simply left as it is.
 */
const OPAQUE_NAME_TYPES = new Set([3, 4, 7, 8, 9, 14, 17, 18, 21, 24, 26, 30]);

interface Rec { start: number; end: number; type: number }

/** Walks a name at `off`, noting every compression pointer it meets; returns the offset after it, or -1. */
function scanName(buf: Buffer, off: number, pointers: number[]): number {
  for (let hops = 0; hops < 128; hops++) {
    if (off >= buf.length) return -1;
    const len = buf[off]!;
    if (len === 0) return off + 1;
    if ((len & 0xc0) === 0xc0) {
      if (off + 1 >= buf.length) return -1;
      pointers.push(((len & 0x3f) << 8) | buf[off + 1]!);
      return off + 2;
    }
    if (len & 0xc0) return -1;
    off += len + 1;
  }
  return -1;
}

const isAddress = (t: number) => t === TYPE.A || t === TYPE.AAAA;

/**
 * CoreDNS's round-robin order for one section: CNAMEs, then other records, then A/AAAA shuffled, then MX
 * shuffled. OPT stays last so the server's trailing-OPT fast path still applies. Returns null when the
 * order cannot change (fewer than two records to shuffle and nothing to move in front).
 */
function roundRobin<T>(items: T[], typeOf: (x: T) => number): T[] | null {
  const cname: T[] = [], rest: T[] = [], address: T[] = [], mx: T[] = [], opt: T[] = [];
  for (const x of items) {
    const t = typeOf(x);
    if (t === TYPE.CNAME) cname.push(x);
    else if (isAddress(t)) address.push(x);
    else if (t === TYPE.MX) mx.push(x);
    else if (t === TYPE.OPT) opt.push(x);
    else rest.push(x);
  }
  if (address.length < 2 && mx.length < 2) {
    const same = [...cname, ...rest, ...address, ...mx, ...opt].every((x, i) => x === items[i]);
    if (same) return null;
  }
  shuffleInPlace(address);
  shuffleInPlace(mx);
  return [...cname, ...rest, ...address, ...mx, ...opt];
}

/** True when RR objects of a decoded message would be reordered: cheap pre-check before encoding a Message. */
export function wouldReorder(sections: RR[][]): boolean {
  for (const s of sections) {
    let address = 0, mx = 0, seenOther = false, misplaced = false;
    for (const rr of s) {
      if (isAddress(rr.type)) address++;
      else if (rr.type === TYPE.MX) mx++;
      else if (rr.type === TYPE.CNAME) misplaced ||= seenOther;
      if (rr.type !== TYPE.CNAME) seenOther = true;
    }
    if (address > 1 || mx > 1 || misplaced) return true;
  }
  return false;
}

/**
 * Round-robins the records of an encoded response without decoding it: records are byte ranges, so a
 * section is rebuilt by copying ranges in the new order. That is only valid when no compression pointer
 * points into a record that moves (e.g. glue pointing into an MX exchange); then the message is decoded,
 * reordered and re-encoded instead. Returns `src` itself when nothing changes.
 */
export function shuffleWire(src: Buffer): Buffer {
  if (src.length < HEADER_SIZE || (src[3]! & 0x0f) !== 0) return src;
  const qd = src.readUInt16BE(4);
  const counts = [src.readUInt16BE(6), src.readUInt16BE(8), src.readUInt16BE(10)];
  if (counts[0]! + counts[1]! + counts[2]! < 2) return src;
  const pointers: number[] = [];
  let off = HEADER_SIZE;
  for (let i = 0; i < qd; i++) {
    off = scanName(src, off, pointers);
    if (off < 0) return src;
    off += 4;
  }
  const questionEnd = off;
  const sections: Rec[][] = [[], [], []];
  for (let s = 0; s < 3; s++) {
    for (let i = 0; i < counts[s]!; i++) {
      const start = off;
      const o = scanName(src, off, pointers);
      if (o < 0 || o + 10 > src.length) return src;
      const type = src.readUInt16BE(o);
      const rdata = o + 10;
      const end = rdata + src.readUInt16BE(o + 8);
      if (end > src.length) return src;
      if (OPAQUE_NAME_TYPES.has(type)) return src;
      switch (type) {
        case TYPE.NS: case TYPE.CNAME: case TYPE.PTR: scanName(src, rdata, pointers); break;
        case TYPE.MX: scanName(src, rdata + 2, pointers); break;
        case TYPE.SRV: scanName(src, rdata + 6, pointers); break;
        case TYPE.SOA: scanName(src, scanName(src, rdata, pointers), pointers); break;
      }
      sections[s]!.push({ start, end, type });
      off = end;
    }
  }
  const orders = sections.map((recs) => roundRobin(recs, (r) => r.type));
  if (orders.every((o) => o === null)) return src;
  // Records that change place must not be the target of any pointer.
  for (let s = 0; s < 3; s++) {
    const order = orders[s];
    if (!order) continue;
    for (let i = 0; i < order.length; i++) {
      const r = order[i]!;
      if (r === sections[s]![i]) continue;
      for (const p of pointers) if (p >= r.start && p < r.end) return reencode(src);
    }
  }
  const out = Buffer.allocUnsafe(src.length);
  let w = src.copy(out, 0, 0, questionEnd);
  for (let s = 0; s < 3; s++) {
    for (const r of orders[s] ?? sections[s]!) w += src.copy(out, w, r.start, r.end);
  }
  return w === src.length ? out : src;
}

function reencode(src: Buffer): Buffer {
  let m;
  try {
    m = decodeMessage(src);
  } catch {
    return src;
  }
  const typeOf = (rr: RR) => rr.type;
  m.answer = roundRobin(m.answer, typeOf) ?? m.answer;
  m.authority = roundRobin(m.authority, typeOf) ?? m.authority;
  m.additional = roundRobin(m.additional, typeOf) ?? m.additional;
  return encodeMessage(m);
}
