import type { Query } from './types.js';
import { findOpt } from './respond.js';
import { HEADER_SIZE } from './wire/constants.js';
import type { Question } from './wire/message.js';
import { nameToWire, WireError } from './wire/name.js';
import { isParseFailure, parseQuery } from './wire/query.js';

/**
 * The same query with another question (rewrite, autopath): header and the other sections (EDNS) kept,
 * the question re-encoded, so plugins further down (forward relays `raw`) see a consistent query.
 * Throws WireError when the new name cannot be encoded.
 */
export function withQuestion(q: Query, question: Question): Query {
  const wireName = nameToWire(question.name);
  const tail = q.raw.subarray(q.questionEnd);
  const raw = Buffer.allocUnsafe(HEADER_SIZE + wireName.length + 4 + tail.length);
  q.raw.copy(raw, 0, 0, HEADER_SIZE);
  wireName.copy(raw, HEADER_SIZE);
  let o = HEADER_SIZE + wireName.length;
  raw.writeUInt16BE(question.type, o);
  raw.writeUInt16BE(question.class, o + 2);
  o += 4;
  tail.copy(raw, o);
  const parsed = parseQuery(raw);
  if (isParseFailure(parsed)) throw new WireError(`query for ${question.name} does not parse: ${parsed.reason}`);
  return { ...q, ...parsed };
}

/**
 * Lowers the query's EDNS UDP size to `size` when it asks for more, in place (CoreDNS's bufsize changes the
 * request itself): forward relays the patched bytes and the server sizes the response by the new value.
 */
export function clampUdpSize(q: Query, size: number): void {
  if (!q.edns || q.edns.udpSize <= size) return;
  const at = findOpt(q.raw);
  if (at < 0) return;
  const raw = Buffer.from(q.raw);
  raw.writeUInt16BE(size, at + 3);
  q.raw = raw;
  q.edns = { ...q.edns, udpSize: size };
}
