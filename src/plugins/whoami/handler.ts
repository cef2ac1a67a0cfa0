import { TYPE } from '../../server/wire/constants.js';
import type { Message, RR } from '../../server/wire/message.js';
import type { Plugin, Query, Reply } from '../../server/types.js';

/** Answers any query with the asker's address (A/AAAA) and port (SRV) in the additional section, like CoreDNS. */
export class Whoami implements Plugin {
  readonly name = 'whoami';

  serve(q: Query): Reply {
    const ip = q.remoteAddress.replace(/^::ffff:(?=\d+\.)/, '');
    const v6 = ip.includes(':');
    const proto = q.proto === 'tcp' ? '_tcp.' : '_udp.';
    const additional: RR[] = [
      { name: q.name, type: v6 ? TYPE.AAAA : TYPE.A, ttl: 0, data: ip },
      { name: proto + q.name.replace(/^\.$/, ''), type: TYPE.SRV, ttl: 0, data: { priority: 0, weight: 0, port: q.remotePort, target: '.' } },
    ];
    const msg: Message = {
      id: q.id, aa: true, rcode: 0, question: { name: q.name, type: q.type, class: q.class },
      answer: [], authority: [], additional,
    };
    return { rcode: 0, msg, plugin: this.name };
  }
}
