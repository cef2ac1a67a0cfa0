import { clampUdpSize } from '../../server/requery.js';
import type { Next, Plugin, Query, Reply } from '../../server/types.js';

/** Lowers a query's EDNS0 UDP size to `size` (never raises it), like CoreDNS's bufsize. */
export class Bufsize implements Plugin {
  readonly name = 'bufsize';

  constructor(readonly size: number) {}

  serve(q: Query, next: Next): Reply | Promise<Reply> {
    clampUdpSize(q, this.size);
    return next(q);
  }
}
