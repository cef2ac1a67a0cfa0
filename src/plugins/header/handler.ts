import { applyFlagRules, type FlagRules } from '../../server/config.js';
import { FLAG } from '../../server/wire/constants.js';
import type { Next, Plugin, Query, Reply } from '../../server/types.js';

/**
 * Sets and clears header flags. Query rules change the query in place, as CoreDNS's header changes the
 * request: later plugins, the upstream and the echoed RD see them. Response rules are applied by the server
 * to the bytes it sends (`responseFlags`), after it set RD, CD and RA itself.
 */
export class Header implements Plugin {
  readonly name = 'header';

  constructor(readonly queryFlags: FlagRules | undefined, readonly responseFlags: FlagRules | undefined) {}

  serve(q: Query, next: Next): Reply | Promise<Reply> {
    const rules = this.queryFlags;
    if (rules) {
      const raw = Buffer.from(q.raw);
      applyFlagRules(raw, rules);
      q.raw = raw;
      q.rd = !!(raw.readUInt16BE(2) & FLAG.RD);
    }
    return next(q);
  }
}
