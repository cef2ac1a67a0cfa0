import { client, metricSet } from '../../pkg/metrics.js';
import { withQuestion } from '../../server/requery.js';
import type { Next, Plugin, Query, Reply } from '../../server/types.js';
import { RCODE, TYPE } from '../../server/wire/constants.js';
import { decodeMessage, type Message } from '../../server/wire/message.js';
import { isSubdomain } from '../../pkg/zone.js';

export const autopathMetrics = metricSet((registry) => ({
  success: new client.Counter({
    name: 'coredns_autopath_success_total', help: 'Counter of requests that did autopath.',
    labelNames: ['server'], registers: [registry],
  }),
}));

/** The asking client's search path ('' last for the name as is), or undefined to pass the query on. */
export type SearchPath = (q: Query) => string[] | undefined;

/** CoreDNS ClientWrite: these rcodes mean the chain wrote nothing usable for the client. */
const written = (r: Reply) => (r.msg !== undefined || r.wire !== undefined) &&
  ![RCODE.SERVFAIL, RCODE.REFUSED, RCODE.FORMERR, RCODE.NOTIMP].includes(r.rcode as 2);

/**
 * Server-side search path: a pod with ndots:5 asks `redis.<ns>.svc.cluster.local` first; when that is
 * the first element of its search path we walk the rest of the path here and answer the first name
 * that exists, with a CNAME from the asked name, saving the pod the round trips.
 */
export class Autopath implements Plugin {
  readonly name = 'autopath';

  constructor(private readonly zones: string[], private readonly searchPath: SearchPath,
    private readonly metrics: ReturnType<typeof autopathMetrics>) {}

  async serve(q: Query, next: Next): Promise<Reply> {
    if (!this.zones.some((z) => isSubdomain(q.lname, z))) return next(q);
    const search = this.searchPath(q);
    if (!search?.length) return next(q);
    const first = search[0]!;
    if (!q.lname.endsWith('.' + first) || q.lname === first) return next(q);
    const base = q.name.slice(0, q.name.length - first.length - 1);
    let firstReply: Reply | undefined;
    for (const [i, domain] of search.entries()) {
      const name = domain === '' ? base + '.' : `${base}.${domain === '.' ? '' : domain}`;
      let sub: Query;
      try {
        sub = i === 0 ? q : withQuestion(q, { name, type: q.type, class: q.class });
      } catch {
        continue; // base + a long host domain can exceed 255 bytes: that name simply does not exist
      }
      const r = await next(sub);
      if (i === 0) firstReply = r;
      if (!written(r)) continue;
      const m = r.msg ?? decodeMessage(r.wire!);
      if (m.rcode === RCODE.NXDOMAIN) continue;
      this.metrics.success.inc({ server: q.server });
      return i === 0 ? r : { rcode: m.rcode, msg: withCname(m, q), plugin: r.plugin };
    }
    return firstReply!;
  }
}

/** The answer for the found name, re-owned by the asked one: a CNAME asked -> found goes first (CoreDNS cnamer). */
function withCname(m: Message, q: Query): Message {
  const first = m.answer.find((rr) => rr.name.toLowerCase() !== q.lname);
  const answer = first
    ? [{ name: q.name, type: TYPE.CNAME, ttl: first.ttl, data: first.name }, ...m.answer]
    : m.answer;
  return { ...m, question: { name: q.name, type: q.type, class: q.class }, answer, edns: null };
}
