import { SetupError } from '../../corefile/types.js';
import type { PluginDefinition } from '../../server/types.js';
import { fqdn } from '../../pkg/zone.js';
import { blockRecurses } from '../../server/config.js';
import { COMBINED_FORMAT, COMMON_FORMAT, parseFormat, type ResponseClass } from './format.js';
import { Log, LogRules, type Rule } from './handler.js';

const CLASSES = new Set(['all', 'success', 'denial', 'error']);

/** `log [NAMES...] [FORMAT] { class success|denial|error|all... }` */
export const definition: PluginDefinition = {
  name: 'log',
  setup(d, ctx) {
    const fail = (msg: string, line = d.line) => new SetupError(d.file, line, 'log', msg);
    let names = d.args;
    let format = COMMON_FORMAT;
    // As in CoreDNS: one argument is always a name; with more, a last argument holding `{` is the format.
    if (names.length > 1 && names[names.length - 1]!.includes('{')) {
      format = names[names.length - 1]!.replaceAll('{common}', COMMON_FORMAT).replaceAll('{combined}', COMBINED_FORMAT);
      names = names.slice(0, -1);
    }
    const classes = new Set<ResponseClass>();
    let all = false;
    for (const c of d.children) {
      if (c.name !== 'class') throw fail(`unknown property '${c.name}'`, c.line);
      if (!c.args.length) throw fail('class needs at least one of all, success, denial, error', c.line);
      for (const a of c.args) {
        if (!CLASSES.has(a)) throw fail(`invalid Class: ${a} (want all, success, denial or error)`, c.line);
        if (a === 'all') all = true;
        else classes.add(a as ResponseClass);
      }
    }
    if (all) classes.clear();
    const nodes = parseFormat(format);
    const rules: Rule[] = (names.length ? names : ['.']).map((n) => ({ zone: fqdn(n), format: nodes, classes }));
    const first = ctx.peers.get('log');
    if (first instanceof Log) {
      first.rules.push(...rules);
      return new LogRules();
    }
    return new Log(rules, blockRecurses(ctx.block));
  },
};
