import { logger } from '../../pkg/log.js';
import type { Next, Plugin, Query, Reply } from '../../server/types.js';
import { RCODE, typeName } from '../../server/wire/constants.js';
import { formatDuration } from '../../pkg/duration.js';

const log = logger('plugin/errors');

export type Level = 'error' | 'warning' | 'info' | 'debug';

export interface ConsolidateRule {
  periodMs: number;
  pattern: RegExp;
  /** The regexp as written: CoreDNS prints it in the summary line. */
  source: string;
  level: Level;
  showFirst: boolean;
}

/** CoreDNS prints debug lines only with its `debug` plugin, which we do not have: they are dropped. */
function emitter(level: Level): (msg: string) => void {
  switch (level) {
    case 'error': return (m) => log.error(m);
    case 'warning': return (m) => log.warn(m);
    case 'info': return (m) => log.info(m);
    case 'debug': return () => {};
  }
}

class Consolidation {
  count = 0;
  timer: NodeJS.Timeout | undefined;
  readonly emit: (msg: string) => void;
  constructor(readonly rule: ConsolidateRule) {
    this.emit = emitter(rule.level);
  }

  /** Counts one error; true when the caller must still log it (the first one with show_first). */
  add(): boolean {
    if (++this.count === 1) {
      this.timer = setTimeout(() => this.report(), this.rule.periodMs);
      this.timer.unref();
      return this.rule.showFirst;
    }
    return false;
  }

  report(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const n = this.count;
    this.count = 0;
    if (n === 0 || (n === 1 && this.rule.showFirst)) return;
    this.emit(`${n} errors like '${this.rule.source}' occurred in last ${formatDuration(this.rule.periodMs)}`);
  }
}

/**
 * Turns a plugin that throws or rejects into SERVFAIL and logs `2 name. TYPE: message`, like CoreDNS
 * logs the error a plugin returns. Without this plugin the server still answers SERVFAIL, but counts
 * the error as a panic.
 */
export class Errors implements Plugin {
  readonly name = 'errors';
  private readonly consolidations: Consolidation[];
  /** One error thrown through several levels of re-entry (ReentryError) is logged once, at the deepest. */
  private readonly logged = new WeakSet<Error>();

  constructor(rules: ConsolidateRule[], private readonly stacktrace: boolean) {
    this.consolidations = rules.map((r) => new Consolidation(r));
  }

  serve(q: Query, next: Next): Reply | Promise<Reply> {
    let r: Reply | Promise<Reply>;
    try {
      r = next(q);
    } catch (e) {
      return this.failed(q, e);
    }
    if (r instanceof Promise) return r.catch((e: unknown) => this.failed(q, e));
    return r;
  }

  private failed(q: Query, e: unknown): Reply {
    const err = e instanceof Error ? e : new Error(String(e));
    if (this.logged.has(err)) return { rcode: RCODE.SERVFAIL };
    this.logged.add(err);
    let emit: (msg: string) => void = (m) => log.error(m);
    for (const c of this.consolidations) {
      if (!c.rule.pattern.test(err.message)) continue;
      if (!c.add()) return { rcode: RCODE.SERVFAIL };
      emit = c.emit;
      break;
    }
    const detail = this.stacktrace && err.stack ? err.stack : err.message;
    emit(`${RCODE.SERVFAIL} ${q.lname} ${typeName(q.type)}: ${detail}`);
    return { rcode: RCODE.SERVFAIL };
  }

  /** Pending consolidated counts are printed at shutdown/reload, as CoreDNS does. */
  close(): void {
    for (const c of this.consolidations) c.report();
  }
}
