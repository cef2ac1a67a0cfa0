import type { PluginDefinition } from '../../server/types.js';
import { SetupArgs } from '../../pkg/args.js';
import { Whoami } from './handler.js';

export const definition: PluginDefinition = {
  name: 'whoami',
  once: true,
  setup(d) {
    new SetupArgs('whoami').bare(d);
    return new Whoami();
  },
};
