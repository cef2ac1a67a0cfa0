import type { PluginDefinition } from '../../server/types.js';
import { SetupArgs } from '../../pkg/args.js';
import { LoadBalance } from './handler.js';

export const definition: PluginDefinition = {
  name: 'loadbalance',
  once: true,
  setup(d) {
    const a = new SetupArgs('loadbalance');
    const [policy] = a.count(d, 0, 1, '[round_robin]');
    if (policy !== undefined && policy !== 'round_robin') {
      if (policy === 'weighted' || policy === 'prefer') throw a.error(d, `policy '${policy}' is not supported yet, only round_robin`);
      throw a.error(d, `unknown policy '${policy}' (want round_robin)`);
    }
    for (const c of d.children) throw a.error(c, `takes no block, got '${c.name}'`);
    return new LoadBalance();
  },
};
