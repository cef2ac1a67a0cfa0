import { writeQueryLog } from '../../pkg/log.js';
import type { Next, Plugin, Query, Reply } from '../../server/types.js';
import { RCODE } from '../../server/wire/constants.js';
import { isSubdomain } from '../../pkg/zone.js';
import { renderFor } from '../../server/respond.js';
import { classify, formatLine, parseFormat, typify, type ResponseClass } from './format.js';

export interface Rule {
  /** Lower-case FQDN: queries at or below it are logged by this rule. */
  zone: string;
  format: ReturnType<typeof parseFormat>;
  /** Empty = all classes. */
  classes: Set<ResponseClass>;
}

/**
 * Query log to stdout. The first rule whose name matches decides (CoreDNS semantics); the line is built
 * after the rest of the chain answered, from the bytes the server will send (rcode, flags, size).
 */
export class Log implements Plugin {
  readonly name = 'log';

  constructor(readonly rules: Rule[], private readonly ra: boolean) {}

  serve(q: Query, next: Next): Reply | Promise<Reply> {
    const rule = this.rules.find((r) => isSubdomain(q.lname, r.zone));
    if (!rule) return next(q);
    let r: Reply | Promise<Reply>;
    try {
      r = next(q);
    } catch (e) {
      this.write(rule, q, { rcode: RCODE.SERVFAIL });
      throw e;
    }
    if (r instanceof Promise) {
      return r.then(
        (reply) => { this.write(rule, q, reply); return reply; },
        (e: unknown) => { this.write(rule, q, { rcode: RCODE.SERVFAIL }); throw e; },
      );
    }
    this.write(rule, q, r);
    return r;
  }

  private write(rule: Rule, q: Query, reply: Reply): void {
    const wire = renderFor(q, reply, this.ra);
    const type = typify(q, wire);
    if (rule.classes.size && !rule.classes.has(classify(type))) return;
    writeQueryLog('[INFO] ' + formatLine(rule.format, q, { wire, type }));
  }
}

/** A second `log` line in the same block adds its rules to the first, like CoreDNS: one log per query. */
export class LogRules implements Plugin {
  readonly name = 'log';
  serve(q: Query, next: Next): Reply | Promise<Reply> {
    return next(q);
  }
}
