import type { PluginDefinition } from '../../server/types.js';
import { SetupArgs } from '../../pkg/args.js';
import { COMBINED_FORMAT, COMMON_FORMAT, parseFormat, type ResponseClass } from './format.js';
import { Log, LogRules, logMetrics, type Rule } from './handler.js';

const CLASSES = new Set(['all', 'success', 'denial', 'error']);

/** `log [NAMES...] [FORMAT] { class success|denial|error|all... }` */
export const definition: PluginDefinition = {
  name: 'log',
  setup(d, ctx) {
    const a = new SetupArgs('log');
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
      if (c.name !== 'class') throw a.error(c, `unknown property '${c.name}'`);
      for (const cls of a.count(c, 1, Infinity, 'one or more of all, success, denial, error')) {
        if (!CLASSES.has(cls)) throw a.error(c, `invalid Class: ${cls} (want all, success, denial or error)`);
        if (cls === 'all') all = true;
        else classes.add(cls as ResponseClass);
      }
    }
    if (all) classes.clear();
    const nodes = parseFormat(format);
    const rules: Rule[] = a.zones(d, names.length ? names : ['.']).map((zone) => ({ zone, format: nodes, classes }));
    const first = ctx.peers.get('log');
    if (first instanceof Log) {
      first.rules.push(...rules);
      return new LogRules();
    }
    return new Log(rules, logMetrics(ctx.shared.registry));
  },
};
