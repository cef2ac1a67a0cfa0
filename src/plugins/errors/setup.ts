import type { PluginDefinition } from '../../server/types.js';
import type { Directive } from '../../corefile/types.js';
import { SetupArgs } from '../../pkg/args.js';
import { Errors, type ConsolidateRule, type Level } from './handler.js';

/** CoreDNS caps the regexp length so a hostile Corefile cannot make compilation eat memory. */
const MAX_REGEXP_LEN = 10_000;
const LEVELS = new Set<string>(['warning', 'error', 'info', 'debug']);

/** `errors [stdout] { stacktrace; consolidate DURATION REGEXP [LEVEL] [show_first] }` */
export const definition: PluginDefinition = {
  name: 'errors',
  once: true,
  setup(d) {
    const a = new SetupArgs('errors');
    const [out] = a.count(d, 0, 1, '[stdout]');
    if (out !== undefined && out !== 'stdout') throw a.error(d, `invalid log file: ${out} (only 'stdout')`);
    let stacktrace = false;
    const rules: ConsolidateRule[] = [];
    for (const c of d.children) {
      switch (c.name) {
        case 'stacktrace':
          a.count(c, 0);
          stacktrace = true;
          break;
        case 'consolidate':
          rules.push(parseConsolidate(c, a));
          break;
        default:
          throw a.error(c, `unknown field '${c.name}'`);
      }
    }
    return new Errors(rules, stacktrace);
  },
};

function parseConsolidate(c: Directive, a: SetupArgs): ConsolidateRule {
  const fail = (msg: string) => a.error(c, `consolidate: ${msg}`);
  const [dur, source, ...opts] = a.count(c, 2, 4, 'DURATION REGEXP [LEVEL] [show_first]') as [string, string, ...string[]];
  const periodMs = a.duration(c, dur);
  if (periodMs <= 0) throw fail(`duration must be positive, got '${dur}'`);
  if (source.length > MAX_REGEXP_LEN) throw fail(`regex pattern too long: ${source.length} > ${MAX_REGEXP_LEN}`);
  let pattern: RegExp;
  try {
    pattern = new RegExp(source);
  } catch (e) {
    throw fail(`bad REGEXP '${source}': ${(e as Error).message}`);
  }
  let level: Level | undefined;
  let showFirst = false;
  for (const o of opts) {
    if (LEVELS.has(o)) {
      if (level) throw fail('multiple log levels specified in consolidate');
      if (showFirst) throw fail('log level must come before show_first in consolidate');
      level = o as Level;
    } else if (o === 'show_first') {
      showFirst = true;
    } else {
      throw fail(`unknown option in consolidate: ${o}`);
    }
  }
  return { periodMs, pattern, source, level: level ?? 'error', showFirst };
}
