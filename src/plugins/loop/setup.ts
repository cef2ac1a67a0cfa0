import { SetupArgs } from '../../pkg/args.js';
import type { PluginDefinition } from '../../server/types.js';
import { Loop } from './loop.js';

export const definition: PluginDefinition = {
  name: 'loop',
  once: true,
  setup(d, ctx) {
    const a = new SetupArgs('loop');
    a.count(d, 0);
    for (const c of d.children) throw a.error(c, `takes no block, got '${c.name}'`);
    // Only the block's first zone is probed, as in CoreDNS.
    return new Loop(ctx.zones[0] ?? '.', ctx.shared, ctx.servers[0]);
  },
};
