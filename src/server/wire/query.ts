import { FLAG, HEADER_SIZE, TYPE } from './constants.js';
import type { Edns } from './message.js';
import { readName, WireError } from './name.js';

/** The parts of an incoming query the server and plugins look at; `raw` is the datagram itself. */
export interface ParsedQuery {
  id: number;
  opcode: number;
  rd: boolean;
  cd: boolean;
  /** The question name as sent (letter case kept), absolute with trailing dot. */
  name: string;
  /** Lower-case `name`, for matching. */
  lname: string;
  type: number;
  class: number;
  edns: Edns | null;
  raw: Buffer;
  /** Offset just after the question section. */
  questionEnd: number;
}

/** Why a query could not be parsed, and what to answer. `drop` means answer nothing at all. */
export type ParseFailure = { drop: true; reason: string } | { drop: false; rcode: number; reason: string; id: number; opcode: number; rd: boolean };

function skipRecord(buf: Buffer, off: number): number {
  const [, o] = readName(buf, off);
  if (o + 10 > buf.length) throw new WireError('record runs past the end');
  const end = o + 10 + buf.readUInt16BE(o + 8);
  if (end > buf.length) throw new WireError('RDATA runs past the end');
  return end;
}

/**
 * Parses a query strictly: responses (QR=1) and runts are dropped (no reflection, nothing to answer to);
 * other malformed input becomes FORMERR/NOTIMP with the header echoed.
 */
export function parseQuery(buf: Buffer): ParsedQuery | ParseFailure {
  if (buf.length < HEADER_SIZE) return { drop: true, reason: 'shorter than a DNS header' };
  const id = buf.readUInt16BE(0);
  const flags = buf.readUInt16BE(2);
  if (flags & FLAG.QR) return { drop: true, reason: 'QR bit set (a response, not a query)' };
  const opcode = (flags >> 11) & 0xf;
  const rd = !!(flags & FLAG.RD);
  const fail = (rcode: number, reason: string): ParseFailure => ({ drop: false, rcode, reason, id, opcode, rd });
  if (opcode !== 0) return fail(4, `opcode ${opcode} not implemented`);
  const qd = buf.readUInt16BE(4);
  if (qd !== 1) return fail(1, `QDCOUNT is ${qd}, want 1`);
  let name: string, off: number;
  try {
    [name, off] = readName(buf, HEADER_SIZE);
  } catch (e) {
    return fail(1, `bad question name: ${(e as Error).message}`);
  }
  if (off + 4 > buf.length) return fail(1, 'question runs past the end');
  const type = buf.readUInt16BE(off);
  const klass = buf.readUInt16BE(off + 2);
  const questionEnd = off + 4;
  let edns: Edns | null = null;
  const an = buf.readUInt16BE(6), ns = buf.readUInt16BE(8), ar = buf.readUInt16BE(10);
  if (an + ns + ar > 0) {
    try {
      let p = questionEnd;
      for (let i = 0; i < an + ns; i++) p = skipRecord(buf, p);
      for (let i = 0; i < ar; i++) {
        const [, o] = readName(buf, p);
        const next = skipRecord(buf, p);
        if (buf.readUInt16BE(o) === TYPE.OPT) {
          if (edns) return fail(1, 'more than one OPT record');
          const ttl = buf.readUInt32BE(o + 4);
          edns = {
            udpSize: buf.readUInt16BE(o + 2), version: (ttl >>> 16) & 0xff, do: !!(ttl & 0x8000),
            options: buf.subarray(o + 10, next),
          };
        }
        p = next;
      }
    } catch (e) {
      return fail(1, `bad additional section: ${(e as Error).message}`);
    }
  }
  return {
    id, opcode, rd, cd: !!(flags & FLAG.CD), name, lname: name.toLowerCase(), type, class: klass, edns, raw: buf,
    questionEnd,
  };
}

export function isParseFailure(q: ParsedQuery | ParseFailure): q is ParseFailure {
  return 'drop' in q;
}
