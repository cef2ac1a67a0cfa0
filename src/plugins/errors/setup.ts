import { SetupError } from '../../corefile/types.js';
import type { PluginDefinition } from '../../server/types.js';
import { parseDuration } from '../../pkg/duration.js';
import { Errors, type ConsolidateRule, type Level } from './handler.js';

/** CoreDNS caps the regexp length so a hostile Corefile cannot make compilation eat memory. */
const MAX_REGEXP_LEN = 10_000;
const LEVELS = new Set<string>(['warning', 'error', 'info', 'debug']);

/** `errors [stdout] { stacktrace; consolidate DURATION REGEXP [LEVEL] [show_first] }` */
export const definition: PluginDefinition = {
  name: 'errors',
  once: true,
  setup(d) {
    const fail = (msg: string, line = d.line) => new SetupError(d.file, line, 'errors', msg);
    if (d.args.length > 1) throw fail(`wrong argument count: want at most one, got '${d.args.join(' ')}'`);
    if (d.args.length === 1 && d.args[0] !== 'stdout') throw fail(`invalid log file: ${d.args[0]} (only 'stdout')`);
    let stacktrace = false;
    const rules: ConsolidateRule[] = [];
    for (const c of d.children) {
      const cfail = (msg: string) => fail(`${c.name}: ${msg}`, c.line);
      switch (c.name) {
        case 'stacktrace':
          if (c.args.length) throw cfail(`takes no arguments, got '${c.args.join(' ')}'`);
          stacktrace = true;
          break;
        case 'consolidate':
          rules.push(parseConsolidate(c.args, cfail));
          break;
        default:
          throw fail(`unknown field '${c.name}'`, c.line);
      }
    }
    return new Errors(rules, stacktrace);
  },
};

function parseConsolidate(args: string[], fail: (msg: string) => Error): ConsolidateRule {
  if (args.length < 2 || args.length > 4) throw fail(`wrong argument count: want DURATION REGEXP [LEVEL] [show_first], got ${args.length}`);
  const [dur, source, ...opts] = args as [string, string, ...string[]];
  let periodMs: number;
  try {
    periodMs = parseDuration(dur);
  } catch (e) {
    throw fail((e as Error).message);
  }
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
