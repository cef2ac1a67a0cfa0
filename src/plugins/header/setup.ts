import type { PluginDefinition } from '../../server/types.js';
import type { FlagRules } from '../../server/config.js';
import { SetupArgs } from '../../pkg/args.js';
import { FLAG } from '../../server/wire/constants.js';
import { Header } from './handler.js';

/** The flags CoreDNS's header plugin supports. */
const FLAGS: Record<string, number> = { aa: FLAG.AA, ra: FLAG.RA, rd: FLAG.RD };

export const definition: PluginDefinition = {
  name: 'header',
  setup(d) {
    const a = new SetupArgs('header');
    a.count(d, 0);
    const rules: Record<'query' | 'response', FlagRules | undefined> = { query: undefined, response: undefined };
    for (const c of d.children) {
      const selector = c.name.toLowerCase();
      if (selector !== 'query' && selector !== 'response') throw a.error(c, `invalid selector '${c.name}': want query or response`);
      a.noBlock(c);
      const [action, ...flags] = c.args;
      const act = action?.toLowerCase();
      if (act !== 'set' && act !== 'clear') throw a.error(c, `unknown flag action '${action ?? ''}': want set or clear`);
      if (!flags.length) throw a.error(c, `${selector} ${act}: at least one flag (aa, ra, rd)`);
      // Rules apply in order, so the last one naming a flag decides it.
      const r = rules[selector] ??= { set: 0, clear: 0 };
      for (const f of flags) {
        const bit = FLAGS[f.toLowerCase()];
        if (bit === undefined) throw a.error(c, `unknown or unsupported flag '${f}' (want aa, ra or rd)`);
        if (act === 'set') { r.set |= bit; r.clear &= ~bit; } else { r.clear |= bit; r.set &= ~bit; }
      }
    }
    if (!rules.query && !rules.response) throw a.error(d, 'want a block of rules: header { query|response set|clear FLAGS... }');
    return new Header(rules.query, rules.response);
  },
};
