import { writeQueryLog } from '../../pkg/log.js';
import { client, metricSet } from '../../pkg/metrics.js';
import type { Plugin, Query, Reply } from '../../server/types.js';
import { isSubdomain } from '../../pkg/zone.js';
import { classify, formatLine, parseFormat, typify, type ResponseClass } from './format.js';

/** Ours (CoreDNS blocks on a stalled stdout instead): lines lost because stdout's reader fell behind. */
export const logMetrics = metricSet((registry) => ({
  dropped: new client.Counter({
    name: 'coredns_log_dropped_lines_total',
    help: 'Query log lines dropped because standard output was more than 1 MiB behind.',
    registers: [registry],
  }),
}));

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

  constructor(readonly rules: Rule[], private readonly metrics: ReturnType<typeof logMetrics>) {}

  sent(q: Query, wire: Buffer, _reply: Reply): void {
    const rule = this.rules.find((r) => isSubdomain(q.lname, r.zone));
    if (!rule) return;
    const type = typify(q, wire);
    if (rule.classes.size && !rule.classes.has(classify(type))) return;
    if (!writeQueryLog('[INFO] ' + formatLine(rule.format, q, { wire, type }))) this.metrics.dropped.inc();
  }
}

/** A second `log` line in the same block adds its rules to the first, like CoreDNS: one log per query. */
export class LogRules implements Plugin {
  readonly name = 'log';
}
