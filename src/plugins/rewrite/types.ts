import type { Query } from '../../server/types.js';
import type { RR } from '../../server/wire/message.js';

/** One EDNS0 option of the query (RFC 6891 §6.1.2). */
export interface EdnsOption { code: number; data: Buffer }

/**
 * The question as the rules see it; `name` is lower-case FQDN (CoreDNS's state.Name()). `options` are the
 * query's EDNS0 options once an edns0 rule touched them (the query `next` sees then carries them).
 */
export interface Question { name: string; type: number; class: number; options?: EdnsOption[] }

/** Rewrites one record of the response (applied in reverse rule order, like CoreDNS). Returns a copy or `rr`. */
export type RecordRule = (rr: RR) => RR;
/** `rcode` rules: a response with rcode `from` gets `to`. */
export interface RcodeRule { rcode: { from: number; to: number } }
/** `cname` rules: the new target for a CNAME target, or undefined; the new target is resolved again. */
export interface CnameRule { cname: (target: string) => string | undefined }
export type ResponseRule = RecordRule | RcodeRule | CnameRule;

export interface Rule {
  mode: 'stop' | 'continue';
  /** Rewrites `q` in place when it matches; returns the response rules to apply, or null for no match. */
  apply(q: Question, query: Query): ResponseRule[] | null;
}
