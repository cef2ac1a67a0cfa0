import { responseType } from '../../server/response-type.js';
import { HEADER_SIZE, TYPE } from '../../server/wire/constants.js';
import { skipName } from '../../server/wire/name.js';

/** How CoreDNS's response.Typify + cache key() file a response: which cache, or none. */
export type Kind = 'success' | 'denial' | 'servfail';

/**
 * Which TTL every record of a response passing the cache gets (CoreDNS cache WriteMsg): the lowest TTL
 * capped and floored per cache, the `servfail` duration, or the 5 s fail-safe floored and capped like a
 * success (delegations and other errors).
 */
export type TtlRule = Kind | 'failsafe';

export interface Inspected {
  /** The cache that keeps it; null: passed on (TTLs capped all the same) but not stored. */
  kind: Kind | null;
  ttlRule: TtlRule;
  /** Lowest TTL of all records but OPT, or -1 when there are none. */
  minTtl: number;
  /** Offsets of every TTL field but OPT's, so a hit rewrites them without decoding. */
  ttlOffsets: number[];
  /** A copy of the response without a trailing OPT (hop-by-hop; the server writes its own). */
  wire: Buffer;
}

/**
 * Walks a response once: classifies it and records where its TTLs are. Throws (RangeError, WireError)
 * on a malformed message (the caller does not cache it).
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
  let nsRecords = 0;
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
    else if (i < an + ns && type === TYPE.NS) nsRecords++;
  }
  const out = Buffer.from(optAt >= 0 && optEnd === wire.length ? wire.subarray(0, optAt) : wire);
  if (out.length < wire.length) out.writeUInt16BE(ar - 1, 10);
  const [ttlRule, kind] = classify(rcode, an, answersType, soa, nsRecords);
  // Truncated answers are never stored (CoreDNS key()), but their TTLs follow their class all the same.
  return { kind: flags & 0x0200 ? null : kind, ttlRule, minTtl, ttlOffsets, wire: out };
}

/** CoreDNS's cacheResponseType and key(): the TTL rule, and the cache that may store the response. */
function classify(rcode: number, an: number, answersType: boolean, soa: boolean, nsRecords: number): [TtlRule, Kind | null] {
  switch (responseType(rcode, an, soa, nsRecords)) {
    case 'NOERROR':
      // A CNAME chain that never reaches the type: NODATA with an SOA, else an incomplete answer not to cache (RFC 2308 §5).
      if (an > 0 && !answersType) return soa ? ['denial', 'denial'] : ['success', null];
      // Data-less NOERROR (whoami answers in the additional section) is a positive answer.
      return ['success', 'success'];
    case 'NODATA': return ['denial', 'denial'];
    case 'NXDOMAIN': return ['denial', soa ? 'denial' : null];
    case 'SERVERERROR': return ['servfail', 'servfail'];
    case 'DELEGATION': return ['failsafe', 'success'];
    default: return ['failsafe', null];
  }
}
