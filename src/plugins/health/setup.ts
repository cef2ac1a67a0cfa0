import { SetupError } from '../../corefile/types.js';
import type { PluginDefinition } from '../../server/types.js';
import { listenAddress } from '../../server/http.js';
import { SetupArgs } from '../../pkg/args.js';
import { Health, healthMetrics, serveHealth } from './handler.js';

/** `health [ADDRESS] { lameduck DURATION }` */
export const definition: PluginDefinition = {
  name: 'health',
  once: true,
  setup(d, ctx) {
    const fail = (msg: string, line = d.line) => new SetupError(d.file, line, 'health', msg);
    const address = listenAddress(d, ':8080', fail);
    let lameduckMs = 0;
    const a = new SetupArgs('health');
    for (const c of d.children) {
      if (c.name !== 'lameduck') throw a.error(c, `unknown property '${c.name}'`);
      lameduckMs = a.duration(c, a.count(c, 1, 1, 'DURATION')[0]!);
    }
    ctx.shared.http.route(address, '/health', serveHealth, 'health');
    if (lameduckMs > 0) ctx.shared.setLameduck(lameduckMs);
    return new Health(address, lameduckMs, ctx.shared.http, healthMetrics(ctx.shared.registry));
  },
};
