import { resolve, dirname } from 'node:path';
import { SetupError } from '../../corefile/types.js';
import type { PluginDefinition } from '../../server/types.js';
import { SetupArgs } from '../../pkg/args.js';
import { searchDomains } from '../../pkg/resolv-conf.js';
import { isAutoPather, type AutoPather } from '../interfaces.js';
import { Autopath, autopathMetrics } from './handler.js';

export const definition: PluginDefinition = {
  name: 'autopath',
  once: true,
  setup(d, ctx) {
    const fail = (msg: string) => new SetupError(d.file, d.line, 'autopath', msg);
    if (d.children.length) throw fail(`unknown property '${d.children[0]!.name}'`);
    if (d.args.length < 1) throw fail('wrong argument count: need RESOLV-CONF or @kubernetes');
    const last = d.args[d.args.length - 1]!;
    const zones = d.args.length > 1 ? new SetupArgs('autopath').zones(d, d.args.slice(0, -1)) : ctx.zones;
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
