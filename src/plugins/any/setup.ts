import type { PluginDefinition } from '../../server/types.js';
import { SetupArgs } from '../../pkg/args.js';
import { Any } from './handler.js';

export const definition: PluginDefinition = {
  name: 'any',
  setup(d) {
    new SetupArgs('any').bare(d);
    return new Any();
  },
};
