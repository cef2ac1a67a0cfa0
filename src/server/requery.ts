import { ReentryError, type Query, type SharedServices } from './types.js';
import { findOpt } from './respond.js';
import { HEADER_SIZE, TYPE } from './wire/constants.js';
import type { Question, RR } from './wire/message.js';
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

/**
 * The same query with its OPT record's options replaced (rewrite's edns0 rules); a query without OPT gets
 * one with `udpSize` (CoreDNS adds OPT with 4096). The asker's own query, and so the response's OPT, is
 * untouched.
 */
export function withEdnsOptions(q: Query, options: Buffer, udpSize = 4096): Query {
  const at = findOpt(q.raw);
  let raw: Buffer;
  if (at < 0) {
    const opt = Buffer.alloc(11);
    opt.writeUInt16BE(TYPE.OPT, 1);
    opt.writeUInt16BE(udpSize, 3);
    opt.writeUInt16BE(options.length, 9);
    raw = Buffer.concat([q.raw, opt, options]);
    raw.writeUInt16BE(raw.readUInt16BE(10) + 1, 10);
  } else {
    const end = at + 11 + q.raw.readUInt16BE(at + 9);
    raw = Buffer.concat([q.raw.subarray(0, at + 11), options, q.raw.subarray(end)]);
    raw.writeUInt16BE(options.length, at + 9);
  }
  const parsed = parseQuery(raw);
  if (isParseFailure(parsed)) throw new WireError(`query with new EDNS options does not parse: ${parsed.reason}`);
  return { ...q, ...parsed };
}

/** A name whose records of `type` are to be asked of the whole server: a CNAME target outside the zone. */
export interface Pending { pending: string; type: number }

export const isPending = (i: RR | Pending): i is Pending => 'pending' in i;

/**
 * Replaces each Pending by the answer section the server gives for it (CoreDNS's upstream.Lookup), in
 * order; a lookup that fails adds nothing. `tc`: an answer came back truncated, so the reply built from
 * these must say it is incomplete. A ReentryError (a CNAME loop) goes on, so the client gets SERVFAIL.
 */
export async function resolvePending(shared: Pick<SharedServices, 'resolve'>, items: (RR | Pending)[], from: Query): Promise<{ records: RR[]; tc: boolean }> {
  const records: RR[] = [];
  let tc = false;
  for (const it of items) {
    if (!isPending(it)) {
      records.push(it);
      continue;
    }
    try {
      const m = await shared.resolve({ name: it.pending, type: it.type }, from);
      records.push(...m.answer);
      tc ||= !!m.tc;
    } catch (e) {
      if (e instanceof ReentryError) throw e;
    }
  }
  return { records, tc };
}
