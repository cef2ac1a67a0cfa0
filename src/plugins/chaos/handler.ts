import { hostname } from 'node:os';
import { CLASS, TYPE } from '../../server/wire/constants.js';
import type { Message, RR } from '../../server/wire/message.js';
import type { Next, Plugin, Query, Reply } from '../../server/types.js';
import { shuffled } from '../../pkg/shuffle.js';

/** A TXT character-string holds at most 255 bytes (CoreDNS's trim). */
export function trim(s: string): string {
  return s.length < 256 ? s : s.slice(0, 255);
}

/** Answers CH-class TXT questions for the server's version, authors and host name, like CoreDNS's chaos. */
export class Chaos implements Plugin {
  readonly name = 'chaos';

  constructor(readonly version: string, readonly authors: string[]) {}

  serve(q: Query, next: Next): Reply | Promise<Reply> {
    if (q.class !== CLASS.CH || q.type !== TYPE.TXT) return next(q);
    let texts: string[];
    switch (q.lname) {
      case 'authors.bind.':
        texts = shuffled(this.authors);
        break;
      case 'version.bind.': case 'version.server.':
        texts = [this.version];
        break;
      case 'hostname.bind.': case 'id.server.':
        texts = [trim(hostname() || 'localhost')];
        break;
      default:
        return next(q);
    }
    const answer: RR[] = texts.map((t) => ({ name: q.name, type: TYPE.TXT, class: CLASS.CH, ttl: 0, data: [t] }));
    const msg: Message = { id: q.id, rcode: 0, question: { name: q.name, type: q.type, class: q.class }, answer, authority: [], additional: [] };
    return { rcode: 0, msg, plugin: this.name };
  }
}
