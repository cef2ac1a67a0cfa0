import { CLASS, RCODE, TYPE } from '../../server/wire/constants.js';
import type { Message, RR } from '../../server/wire/message.js';
import type { Next, Plugin, Query, Reply } from '../../server/types.js';
import { client, metricSet } from '../../pkg/metrics.js';
import { matchZone } from '../../pkg/zone.js';

export const localMetrics = metricSet((registry) => ({
  // No server label, like CoreDNS: the interesting part is which clients ask, and that is in the debug log.
  localhost: new client.Counter({
    name: 'coredns_local_localhost_requests_total', help: 'Counter of special localhost subdomain requests.',
    registers: [registry],
  }),
}));

const TTL = 604800;
const ZONES = ['localhost.', '0.in-addr.arpa.', '127.in-addr.arpa.', '255.in-addr.arpa.'];
const LOCALHOST = 'localhost.';

const soa = (owner: string): RR => ({
  name: owner, type: TYPE.SOA, class: CLASS.IN, ttl: TTL,
  data: { mname: LOCALHOST, rname: 'root.localhost.', serial: 1, refresh: 0, retry: 0, expire: 0, minimum: TTL },
});

/** A or AAAA of the loopback address, or a NODATA with an SOA named after the question. */
function loopback(q: Query, owner: string): Pick<Message, 'answer' | 'authority'> {
  if (q.type === TYPE.A) return { answer: [{ name: owner, type: TYPE.A, class: CLASS.IN, ttl: TTL, data: '127.0.0.1' }], authority: [] };
  if (q.type === TYPE.AAAA) return { answer: [{ name: owner, type: TYPE.AAAA, class: CLASS.IN, ttl: TTL, data: '::1' }], authority: [] };
  return { answer: [], authority: [soa(owner)] };
}

/**
 * CoreDNS's local: localhost and the 0/127/255.in-addr.arpa zones answered here so they never leave the
 * server, plus `*.localhost.` (RFC 6761) and, unless turned off, the legacy `localhost.<domain>` names.
 */
export class Local implements Plugin {
  readonly name = 'local';

  constructor(private readonly localhostPrefix: boolean, private readonly metrics: ReturnType<typeof localMetrics>) {}

  serve(q: Query, next: Next): Reply | Promise<Reply> {
    const name = q.lname;
    if (name.length > LOCALHOST.length && (name.endsWith('.localhost.') || (this.localhostPrefix && name.startsWith(LOCALHOST)))) {
      this.metrics.localhost.inc();
      return this.reply(q, RCODE.NOERROR, loopback(q, name));
    }
    const zone = matchZone(name, ZONES);
    if (zone === undefined) return next(q);
    let sections: Pick<Message, 'answer' | 'authority'> | undefined;
    if (name === zone) {
      if (q.type === TYPE.A || q.type === TYPE.AAAA) sections = name === LOCALHOST ? loopback(q, name) : { answer: [], authority: [soa(name)] };
      else if (q.type === TYPE.SOA) sections = { answer: [soa(name)], authority: [] };
      else if (q.type === TYPE.NS) sections = { answer: [{ name, type: TYPE.NS, class: CLASS.IN, ttl: TTL, data: LOCALHOST }], authority: [] };
      else sections = { answer: [], authority: [soa(name)] };
    } else if (name === '1.0.0.127.in-addr.arpa.') {
      sections = q.type === TYPE.PTR
        ? { answer: [{ name, type: TYPE.PTR, class: CLASS.IN, ttl: TTL, data: LOCALHOST }], authority: [] }
        : { answer: [], authority: [soa(zone)] };
    }
    return sections ? this.reply(q, RCODE.NOERROR, sections) : this.reply(q, RCODE.NXDOMAIN, { answer: [], authority: [soa(zone)] });
  }

  /** Not authoritative: CoreDNS writes a bare SetReply. */
  private reply(q: Query, rcode: number, s: Pick<Message, 'answer' | 'authority'>): Reply {
    const msg: Message = { id: q.id, rcode, question: { name: q.name, type: q.type, class: q.class }, ...s, additional: [] };
    return { rcode, msg, plugin: this.name };
  }
}
