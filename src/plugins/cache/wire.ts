import { HEADER_SIZE, RCODE, TYPE } from '../../server/wire/constants.js';

/** How CoreDNS's response.Typify + cache key() file a response: which cache, or none. */
export type Kind = 'success' | 'denial' | 'servfail';

export interface Inspected {
  kind: Kind | null;
  /** Lowest TTL of all records but OPT, or -1 when there are none. */
  minTtl: number;
  /** Offsets of every TTL field but OPT's, so a hit rewrites them without decoding. */
  ttlOffsets: number[];
  /** The response without a trailing OPT (hop-by-hop; the server writes its own). */
  wire: Buffer;
}

/** Skips a (possibly compressed) name without building it: a hit path must not allocate strings. */
function skipName(b: Buffer, off: number): number {
  for (;;) {
    const len = b[off];
    if (len === undefined) throw new RangeError('name runs past the end');
    if (len === 0) return off + 1;
    if ((len & 0xc0) === 0xc0) return off + 2;
    off += len + 1;
  }
}

/**
 * Walks a response once: classifies it and records where its TTLs are. Throws RangeError on a malformed
 * message (the caller does not cache it).
 */
export function inspect(wire: Buffer, qtype: number): Inspected {
  const flags = wire.readUInt16BE(2);
  const rcode = flags & 0xf;
  const an = wire.readUInt16BE(6), ns = wire.readUInt16BE(8), ar = wire.readUInt16BE(10);
  let off = HEADER_SIZE;
  for (let i = wire.readUInt16BE(4); i > 0; i--) off = skipName(wire, off) + 4;
  const ttlOffsets: number[] = [];
  let minTtl = -1;
  let answersType = false;
  let soa = false;
  let optAt = -1;
  let optEnd = -1;
  for (let i = 0; i < an + ns + ar; i++) {
    const start = off;
    const o = skipName(wire, off);
    if (o + 10 > wire.length) throw new RangeError('record runs past the end');
    const type = wire.readUInt16BE(o);
    off = o + 10 + wire.readUInt16BE(o + 8);
    if (off > wire.length) throw new RangeError('RDATA runs past the end');
    if (type === TYPE.OPT) {
      optAt = start;
      optEnd = off;
      continue;
    }
    const ttl = wire.readUInt32BE(o + 4);
    if (minTtl < 0 || ttl < minTtl) minTtl = ttl;
    ttlOffsets.push(o + 4);
    if (i < an) answersType ||= type === qtype || qtype === TYPE.ANY || qtype === TYPE.CNAME;
    else if (i < an + ns && type === TYPE.SOA) soa = true;
  }
  let out: Buffer;
  if (optAt >= 0 && optEnd === wire.length) {
    out = Buffer.from(wire.subarray(0, optAt));
    out.writeUInt16BE(ar - 1, 10);
  } else {
    out = Buffer.from(wire);
  }
  return { kind: classify(rcode, !!(flags & 0x0200), an, answersType, soa), minTtl, ttlOffsets, wire: out };
}

function classify(rcode: number, tc: boolean, an: number, answersType: boolean, soa: boolean): Kind | null {
  if (tc) return null;
  if (an > 0 && rcode === RCODE.NOERROR) {
    if (answersType) return 'success';
    // A CNAME chain that never reaches the type: NODATA with an SOA, else an incomplete answer not to cache (RFC 2308 §5).
    return soa ? 'denial' : null;
  }
  if (an > 0) return null;
  if (soa && rcode === RCODE.NOERROR) return 'denial';
  if (rcode === RCODE.NXDOMAIN) return soa ? 'denial' : null;
  if (rcode === RCODE.SERVFAIL || rcode === RCODE.NOTIMP) return 'servfail';
  // Delegations and data-less NOERROR (whoami answers in the additional section) are positive answers.
  return rcode === RCODE.NOERROR ? 'success' : null;
}
