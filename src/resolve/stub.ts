/**
 * The search-path rules of the two stub resolvers pods use. Pure: which names are asked in which order,
 * and when a result ends the search. Sources: glibc resolv/res_query.c (__res_context_search) and musl
 * src/network/lookup_name.c (name_from_dns_search); behaviour verified in a namespace (shared/reference).
 */
import type { ResolvConf } from './resolv-conf.js';

export type Stub = 'glibc' | 'musl';

/** Names to try, in order. `name` as typed by the user (a trailing dot makes it absolute). */
export function searchOrder(name: string, conf: ResolvConf, stub: Stub, addressLookup: boolean): string[] {
  const absolute = name.endsWith('.') ? name : name + '.';
  if (name.endsWith('.')) return [absolute];
  const dots = (name.match(/\./g) ?? []).length;
  const suffixed = conf.search.map((d) => `${name}.${d.replace(/\.$/, '')}.`);
  if (stub === 'musl') {
    // musl's res_search is res_query: only getaddrinfo walks the search list, and only below ndots.
    if (!addressLookup || dots >= conf.ndots) return [absolute];
    return [...suffixed, absolute];
  }
  // glibc: at or above ndots the name is tried as is first, then with every suffix.
  return dots >= conf.ndots ? [absolute, ...suffixed] : [...suffixed, absolute];
}

export type Outcome = 'answer' | 'nxdomain' | 'nodata' | 'servfail' | 'other';

/** What a candidate's replies (one per query type) mean for the search: stop with this result, or go on. */
export function decide(stub: Stub, outcomes: Outcome[]): { stop: boolean; found: boolean } {
  if (stub === 'musl') {
    // name_from_dns: SERVFAIL/odd rcodes end everything; NXDOMAIN on ANY of the pair means "no such name".
    if (outcomes.some((o) => o === 'servfail' || o === 'other')) return { stop: true, found: false };
    if (outcomes.includes('nxdomain')) return { stop: false, found: false };
    const found = outcomes.includes('answer');
    return { stop: true, found };
  }
  // glibc: any data wins; NXDOMAIN, NODATA and SERVFAIL keep the search going; REFUSED & co. end it.
  if (outcomes.includes('answer')) return { stop: true, found: true };
  return { stop: outcomes.includes('other'), found: false };
}
