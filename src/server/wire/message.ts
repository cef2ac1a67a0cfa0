import { CLASS, FLAG, HEADER_SIZE, TYPE } from './constants.js';
import { formatIpv6, writeIpv4, writeIpv6 } from '../../pkg/ip.js';
import { nameLabels, readName, WireError } from './name.js';

export interface SoaData {
  mname: string; rname: string; serial: number; refresh: number; retry: number; expire: number; minimum: number;
}
export interface SrvData { priority: number; weight: number; port: number; target: string }
export interface MxData { preference: number; exchange: string }

/**
 * One resource record. `data` depends on the type: A/AAAA an address string; NS/CNAME/PTR/DNAME a name;
 * TXT a list of strings; SRV/MX/SOA objects; anything else the raw RDATA bytes.
 */
export interface RR {
  name: string;
  type: number;
  class?: number;
  ttl: number;
  data: string | string[] | SrvData | MxData | SoaData | Buffer;
}

export interface Question { name: string; type: number; class: number }

export interface Edns {
  udpSize: number;
  version: number;
  do: boolean;
  /** Extended RCODE bits (upper 8 of 12). */
  extRcode?: number;
  /** Raw option bytes (code/length/value sequence). */
  options?: Buffer;
}

export interface Message {
  id: number;
  qr?: boolean;
  opcode?: number;
  aa?: boolean;
  tc?: boolean;
  rd?: boolean;
  ra?: boolean;
  ad?: boolean;
  cd?: boolean;
  rcode: number;
  question: Question | null;
  answer: RR[];
  authority: RR[];
  additional: RR[];
  edns?: Edns | null;
}

export function emptyMessage(rcode = 0): Message {
  return { id: 0, rcode, question: null, answer: [], authority: [], additional: [] };
}

/* ------------------------------------------------------------------ encoding */

class Writer {
  buf: Buffer;
  off = 0;
  private names = new Map<string, number>();
  constructor(size = 512) {
    this.buf = Buffer.allocUnsafe(size);
  }
  private ensure(n: number): void {
    if (this.off + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.off + n));
    this.buf.copy(next, 0, 0, this.off);
    this.buf = next;
  }
  u8(v: number): void { this.ensure(1); this.buf[this.off++] = v; }
  u16(v: number): void { this.ensure(2); this.buf.writeUInt16BE(v & 0xffff, this.off); this.off += 2; }
  u32(v: number): void { this.ensure(4); this.buf.writeUInt32BE(v >>> 0, this.off); this.off += 4; }
  bytes(b: Buffer): void { this.ensure(b.length); b.copy(this.buf, this.off); this.off += b.length; }
  ipv4(addr: string): void {
    this.ensure(4);
    if (!writeIpv4(addr, this.buf, this.off)) throw new WireError(`bad IPv4 address ${addr}`);
    this.off += 4;
  }
  ipv6(addr: string): void {
    this.ensure(16);
    if (!writeIpv6(addr, this.buf, this.off)) throw new WireError(`bad IPv6 address ${addr}`);
    this.off += 16;
  }
  name(name: string, compress: boolean): void {
    const labels = nameLabels(name);
    // Suffix keys keep letter case (as miekg/dns's do): a pointer stands only for the very same spelling,
    // so no name takes the question's case (or any other name's). Without escapes a key is the suffix of
    // the text itself; with them, length-prefixed raw labels behind a backslash no plain key contains.
    const plain = !name.includes('\\');
    const text = plain && !name.endsWith('.') ? name + '.' : name;
    let at = 0;
    for (let i = 0; i < labels.length; i++) {
      const key = plain ? text.slice(at) : '\\' + labels.slice(i).map((l) => `${l.length}:${l.toString('latin1')}`).join('');
      at += labels[i]!.length + 1;
      const ptr = compress ? this.names.get(key) : undefined;
      if (ptr !== undefined) { this.u16(0xc000 | ptr); return; }
      if (this.off < 0x3fff && !this.names.has(key)) this.names.set(key, this.off);
      const l = labels[i]!;
      if (l.length === 0 || l.length > 63) throw new WireError(`bad label length in ${name}`);
      this.u8(l.length);
      this.bytes(l);
    }
    this.u8(0);
  }
}

/** Names in NS/CNAME/PTR/MX/SOA RDATA are compressed (RFC 3597 §4); SRV and DNAME targets must not be (RFC 2782, RFC 6672 §2.5). */
function writeRdata(w: Writer, rr: RR): void {
  const d = rr.data;
  switch (rr.type) {
    case TYPE.A:
      w.ipv4(d as string);
      return;
    case TYPE.AAAA:
      w.ipv6(d as string);
      return;
    case TYPE.NS: case TYPE.CNAME: case TYPE.PTR:
      w.name(d as string, true);
      return;
    case TYPE.MX:
      w.u16((d as MxData).preference);
      w.name((d as MxData).exchange, true);
      return;
    case TYPE.SRV: {
      const s = d as SrvData;
      w.u16(s.priority); w.u16(s.weight); w.u16(s.port);
      w.name(s.target, false);
      return;
    }
    case TYPE.DNAME:
      w.name(d as string, false);
      return;
    case TYPE.TXT:
      for (const s of d as string[]) {
        const b = Buffer.from(s, 'utf8');
        for (let i = 0; i < Math.max(b.length, 1); i += 255) {
          const chunk = b.subarray(i, i + 255);
          w.u8(chunk.length);
          w.bytes(chunk);
        }
      }
      return;
    case TYPE.SOA: {
      const s = d as SoaData;
      w.name(s.mname, true); w.name(s.rname, true);
      w.u32(s.serial); w.u32(s.refresh); w.u32(s.retry); w.u32(s.expire); w.u32(s.minimum);
      return;
    }
    default:
      w.bytes(d as Buffer);
  }
}

function writeRR(w: Writer, rr: RR): void {
  w.name(rr.name, true);
  w.u16(rr.type);
  w.u16(rr.class ?? CLASS.IN);
  w.u32(rr.ttl);
  const lenAt = w.off;
  w.u16(0);
  writeRdata(w, rr);
  w.buf.writeUInt16BE(w.off - lenAt - 2, lenAt);
}

function writeOpt(w: Writer, e: Edns, rcode: number): void {
  w.u8(0);
  w.u16(TYPE.OPT);
  w.u16(e.udpSize);
  const ext = e.extRcode ?? (rcode >> 4);
  w.u32(((ext & 0xff) << 24) | ((e.version & 0xff) << 16) | (e.do ? 0x8000 : 0));
  const opts = e.options ?? Buffer.alloc(0);
  w.u16(opts.length);
  w.bytes(opts);
}

export function flagsWord(m: Message): number {
  return (m.qr === false ? 0 : FLAG.QR) | ((m.opcode ?? 0) & 0xf) << 11 | (m.aa ? FLAG.AA : 0) |
    (m.tc ? FLAG.TC : 0) | (m.rd ? FLAG.RD : 0) | (m.ra ? FLAG.RA : 0) | (m.ad ? FLAG.AD : 0) |
    (m.cd ? FLAG.CD : 0) | (m.rcode & 0xf);
}

/**
 * Encodes a message. With `maxSize`, records that do not fit are left out and TC is set if any answer or
 * authority record was dropped (additional records are optional glue, RFC 2181 §9); everything that fits
 * stays, because musl before 1.2.4 never retries over TCP and would otherwise get nothing.
 */
export function encodeMessage(m: Message, maxSize = 65535): Buffer {
  const w = new Writer(512);
  w.u16(m.id);
  w.u16(0);
  w.u16(m.question ? 1 : 0);
  w.u32(0);
  w.u16(0);
  if (m.question) {
    w.name(m.question.name, true);
    w.u16(m.question.type);
    w.u16(m.question.class);
  }
  const optSize = m.edns ? 11 + (m.edns.options?.length ?? 0) : 0;
  const budget = Math.max(maxSize, HEADER_SIZE) - optSize;
  let tc = !!m.tc;
  const counts = [0, 0, 0];
  const sections = [m.answer, m.authority, m.additional];
  outer: for (let s = 0; s < 3; s++) {
    for (const rr of sections[s]!) {
      const before = w.off;
      writeRR(w, rr);
      if (w.off > budget) {
        w.off = before;
        if (s < 2) tc = true;
        break outer;
      }
      counts[s]!++;
    }
  }
  let arcount = counts[2]!;
  if (m.edns) { writeOpt(w, m.edns, m.rcode); arcount++; }
  const out = w.buf.subarray(0, w.off);
  out.writeUInt16BE(flagsWord({ ...m, tc }), 2);
  out.writeUInt16BE(counts[0]!, 6);
  out.writeUInt16BE(counts[1]!, 8);
  out.writeUInt16BE(arcount, 10);
  return Buffer.from(out);
}

/* ------------------------------------------------------------------ decoding */

function readRdata(buf: Buffer, type: number, off: number, len: number): RR['data'] {
  const end = off + len;
  switch (type) {
    case TYPE.A:
      if (len !== 4) throw new WireError('A record with RDLENGTH ' + len);
      return `${buf[off]}.${buf[off + 1]}.${buf[off + 2]}.${buf[off + 3]}`;
    case TYPE.AAAA:
      if (len !== 16) throw new WireError('AAAA record with RDLENGTH ' + len);
      return formatIpv6(buf, off);
    case TYPE.NS: case TYPE.CNAME: case TYPE.PTR: case TYPE.DNAME:
      return readName(buf, off)[0];
    case TYPE.MX:
      return { preference: buf.readUInt16BE(off), exchange: readName(buf, off + 2)[0] };
    case TYPE.SRV:
      return {
        priority: buf.readUInt16BE(off), weight: buf.readUInt16BE(off + 2), port: buf.readUInt16BE(off + 4),
        target: readName(buf, off + 6)[0],
      };
    case TYPE.TXT: {
      const out: string[] = [];
      for (let p = off; p < end;) {
        const l = buf[p]!;
        if (p + 1 + l > end) throw new WireError('TXT string runs past RDATA');
        out.push(buf.toString('utf8', p + 1, p + 1 + l));
        p += 1 + l;
      }
      return out;
    }
    case TYPE.SOA: {
      const [mname, o1] = readName(buf, off);
      const [rname, o2] = readName(buf, o1);
      if (o2 + 20 > end) throw new WireError('short SOA RDATA');
      return {
        mname, rname, serial: buf.readUInt32BE(o2), refresh: buf.readUInt32BE(o2 + 4),
        retry: buf.readUInt32BE(o2 + 8), expire: buf.readUInt32BE(o2 + 12), minimum: buf.readUInt32BE(o2 + 16),
      };
    }
    default:
      return Buffer.from(buf.subarray(off, end));
  }
}

/** Full decode of a message (upstream answers, tests); throws WireError on malformed input. */
export function decodeMessage(buf: Buffer): Message {
  if (buf.length < HEADER_SIZE) throw new WireError('message shorter than a header');
  const flags = buf.readUInt16BE(2);
  const counts = [buf.readUInt16BE(4), buf.readUInt16BE(6), buf.readUInt16BE(8), buf.readUInt16BE(10)];
  if (counts[0]! > 1) throw new WireError(`QDCOUNT ${counts[0]}`);
  const m: Message = {
    id: buf.readUInt16BE(0), qr: !!(flags & FLAG.QR), opcode: (flags >> 11) & 0xf, aa: !!(flags & FLAG.AA),
    tc: !!(flags & FLAG.TC), rd: !!(flags & FLAG.RD), ra: !!(flags & FLAG.RA), ad: !!(flags & FLAG.AD),
    cd: !!(flags & FLAG.CD), rcode: flags & 0xf, question: null, answer: [], authority: [], additional: [],
  };
  let off = HEADER_SIZE;
  if (counts[0] === 1) {
    const [name, o] = readName(buf, off);
    if (o + 4 > buf.length) throw new WireError('question runs past the end');
    m.question = { name, type: buf.readUInt16BE(o), class: buf.readUInt16BE(o + 2) };
    off = o + 4;
  }
  const sections = [m.answer, m.authority, m.additional];
  for (let s = 0; s < 3; s++) {
    for (let i = 0; i < counts[s + 1]!; i++) {
      const [name, o] = readName(buf, off);
      if (o + 10 > buf.length) throw new WireError('record header runs past the end');
      const type = buf.readUInt16BE(o);
      const klass = buf.readUInt16BE(o + 2);
      const ttl = buf.readUInt32BE(o + 4);
      const len = buf.readUInt16BE(o + 8);
      if (o + 10 + len > buf.length) throw new WireError('RDATA runs past the end');
      if (type === TYPE.OPT) {
        if (s !== 2 || m.edns) throw new WireError('misplaced or repeated OPT record');
        m.edns = {
          udpSize: klass, extRcode: ttl >>> 24, version: (ttl >>> 16) & 0xff, do: !!(ttl & 0x8000),
          options: Buffer.from(buf.subarray(o + 10, o + 10 + len)),
        };
        m.rcode |= (ttl >>> 24) << 4;
      } else {
        sections[s]!.push({ name, type, class: klass, ttl, data: readRdata(buf, type, o + 10, len) });
      }
      off = o + 10 + len;
    }
  }
  return m;
}
