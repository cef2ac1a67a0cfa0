import { CLASS, TYPE } from '../../server/wire/constants.js';
import type { Message } from '../../server/wire/message.js';
import type { Next, Plugin, Query, Reply } from '../../server/types.js';

/** HINFO RDATA: two character-strings (RFC 1035 §3.3.2), the ones CoreDNS writes. */
const HINFO_RDATA = Buffer.concat(['ANY obsoleted', 'See RFC 8482'].map((s) => Buffer.concat([Buffer.from([s.length]), Buffer.from(s, 'latin1')])));

/** RFC 8482 §4.2: an ANY query gets one synthesised HINFO record instead of everything the name has. */
export class Any implements Plugin {
  readonly name = 'any';

  serve(q: Query, next: Next): Reply | Promise<Reply> {
    if (q.type !== TYPE.ANY) return next(q);
    // Not authoritative: CoreDNS's reply is a bare SetReply.
    const msg: Message = {
      id: q.id, rcode: 0, question: { name: q.name, type: q.type, class: q.class },
      answer: [{ name: q.name, type: TYPE.HINFO, class: CLASS.IN, ttl: 8482, data: HINFO_RDATA }],
      authority: [], additional: [],
    };
    return { rcode: 0, msg, plugin: this.name };
  }
}
