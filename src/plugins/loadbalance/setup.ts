import type { PluginDefinition } from '../../server/types.js';
import { SetupError } from '../../corefile/types.js';
import { LoadBalance } from './handler.js';

export const definition: PluginDefinition = {
  name: 'loadbalance',
  once: true,
  setup(d) {
    const err = (msg: string, line = d.line) => new SetupError(d.file, line, 'loadbalance', msg);
    const [policy, ...rest] = d.args;
    if (policy !== undefined && policy !== 'round_robin') {
      if (policy === 'weighted' || policy === 'prefer') throw err(`policy '${policy}' is not supported yet, only round_robin`);
      throw err(`unknown policy '${policy}' (want round_robin)`);
    }
    if (rest.length) throw err(`unexpected argument '${rest[0]}' after round_robin`);
    if (d.children.length) throw err(`takes no block, got '${d.children[0]!.name}'`, d.children[0]!.line);
    return new LoadBalance();
  },
};
