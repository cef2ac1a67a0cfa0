import { resolve, dirname } from 'node:path';
import type { PluginDefinition } from '../../server/types.js';
import { SetupArgs } from '../../pkg/args.js';
import { searchDomains } from '../../pkg/resolv-conf.js';
import { isAutoPather, type AutoPather } from '../interfaces.js';
import { Autopath, autopathMetrics } from './handler.js';

export const definition: PluginDefinition = {
  name: 'autopath',
  once: true,
  setup(d, ctx) {
    const a = new SetupArgs('autopath');
    const fail = (msg: string) => a.error(d, msg);
    for (const c of d.children) throw a.error(c, `unknown property '${c.name}'`);
    const args = a.count(d, 1, Infinity, '[ZONES...] RESOLV-CONF|@kubernetes');
    const last = args[args.length - 1]!;
    const zones = args.length > 1 ? a.zones(d, args.slice(0, -1)) : ctx.zones;
    if (last.startsWith('@')) {
      const name = last.slice(1);
      if (name !== 'kubernetes') throw fail(`unknown plugin '${name}': only @kubernetes provides a search path`);
      let pather: AutoPather | undefined;
      // The plugin comes later in the execution order: it exists once the whole block is set up.
      ctx.afterBlock(() => {
        const p = ctx.peers.get(name);
        if (!isAutoPather(p)) throw fail(`@${name} needs a ${name} plugin in the same server block`);
        const problem = p.autoPathProblem();
        if (problem) throw fail(`@${name} ${problem}`);
        pather = p;
      });
      return new Autopath(zones, (q) => pather!.autoPath(q), autopathMetrics(ctx.shared.registry));
    }
    const file = resolve(dirname(ctx.corefile), last);
    const search = searchDomains(file);
    if (!search.length) throw fail(`no search domains in ${file}`);
    const path = [...search, ''];
    return new Autopath(zones, () => path, autopathMetrics(ctx.shared.registry));
  },
};
