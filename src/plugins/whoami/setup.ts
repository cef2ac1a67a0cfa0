import type { PluginDefinition } from '../../server/types.js';
import { SetupError } from '../../corefile/types.js';
import { Whoami } from './handler.js';

export const definition: PluginDefinition = {
  name: 'whoami',
  once: true,
  setup(d) {
    if (d.args.length || d.children.length) throw new SetupError(d.file, d.line, 'whoami', 'takes no arguments');
    return new Whoami();
  },
};
