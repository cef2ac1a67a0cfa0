import { writeQueryLog } from '../../pkg/log.js';
import type { Plugin, Query, Reply } from '../../server/types.js';
import { isSubdomain } from '../../pkg/zone.js';
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
 * from the bytes the server sent (rcode, flags, size), which the server shows every observer.
 */
export class Log implements Plugin {
  readonly name = 'log';

  constructor(readonly rules: Rule[]) {}

  sent(q: Query, wire: Buffer, _reply: Reply): void {
    const rule = this.rules.find((r) => isSubdomain(q.lname, r.zone));
    if (!rule) return;
    const type = typify(q, wire);
    if (rule.classes.size && !rule.classes.has(classify(type))) return;
    writeQueryLog('[INFO] ' + formatLine(rule.format, q, { wire, type }));
  }
}

/** A second `log` line in the same block adds its rules to the first, like CoreDNS: one log per query. */
export class LogRules implements Plugin {
  readonly name = 'log';
}
