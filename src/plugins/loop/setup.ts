import { SetupError } from '../../corefile/types.js';
import type { PluginDefinition } from '../../server/types.js';
import { Loop } from './loop.js';

export const definition: PluginDefinition = {
  name: 'loop',
  once: true,
  setup(d, ctx) {
    if (d.args.length) throw new SetupError(d.file, d.line, 'loop', `takes no arguments, got '${d.args.join(' ')}'`);
    if (d.children.length) throw new SetupError(d.file, d.children[0]!.line, 'loop', `takes no block, got '${d.children[0]!.name}'`);
    // Only the block's first zone is probed, as in CoreDNS.
    return new Loop(ctx.zones[0] ?? '.', ctx.shared, ctx.servers[0]);
  },
};
