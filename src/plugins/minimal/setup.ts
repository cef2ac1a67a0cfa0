import type { PluginDefinition } from '../../server/types.js';
import { SetupArgs } from '../../pkg/args.js';
import { Minimal } from './handler.js';

export const definition: PluginDefinition = {
  name: 'minimal',
  setup(d) {
    new SetupArgs('minimal').bare(d);
    return new Minimal();
  },
};
