import type { PluginDefinition } from '../../server/types.js';
import { SetupArgs } from '../../pkg/args.js';
import { Local, localMetrics } from './handler.js';

export const definition: PluginDefinition = {
  name: 'local',
  setup(d, ctx) {
    const a = new SetupArgs('local');
    a.count(d, 0);
    let prefix = true;
    for (const c of d.children) {
      if (c.name !== 'localhost_prefix') throw a.error(c, `unknown property '${c.name}'`);
      const [v] = a.count(c, 1, 1, 'on|off');
      if (v !== 'on' && v !== 'off') throw a.error(c, `localhost_prefix expects 'on' or 'off', got '${v}'`);
      prefix = v === 'on';
    }
    return new Local(prefix, localMetrics(ctx.shared.registry));
  },
};
