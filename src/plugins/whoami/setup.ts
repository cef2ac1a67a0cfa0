import type { PluginDefinition } from '../../server/types.js';
import { SetupArgs } from '../../pkg/args.js';
import { Whoami } from './handler.js';

export const definition: PluginDefinition = {
  name: 'whoami',
  once: true,
  setup(d) {
    const a = new SetupArgs('whoami');
    a.count(d, 0);
    a.noBlock(d);
    return new Whoami();
  },
};
