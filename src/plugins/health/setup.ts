import { SetupError } from '../../corefile/types.js';
import type { PluginDefinition } from '../../server/types.js';
import { listenAddress } from '../../server/http.js';
import { parseDuration } from '../../pkg/duration.js';
import { Health, healthMetrics, serveHealth } from './handler.js';

/** `health [ADDRESS] { lameduck DURATION }` */
export const definition: PluginDefinition = {
  name: 'health',
  once: true,
  setup(d, ctx) {
    const fail = (msg: string, line = d.line) => new SetupError(d.file, line, 'health', msg);
    const address = listenAddress(d, ':8080', fail);
    let lameduckMs = 0;
    for (const c of d.children) {
      if (c.name !== 'lameduck') throw fail(`unknown property '${c.name}'`, c.line);
      if (c.args.length !== 1) throw fail(`lameduck: wrong argument count: want one DURATION, got ${c.args.length}`, c.line);
      try {
        lameduckMs = parseDuration(c.args[0]!);
      } catch (e) {
        throw fail(`unable to parse lameduck duration value: '${c.args[0]}' : ${(e as Error).message}`, c.line);
      }
      if (lameduckMs < 0) throw fail(`lameduck duration must not be negative, got '${c.args[0]}'`, c.line);
    }
    ctx.shared.http.route(address, '/health', serveHealth, 'health');
    if (lameduckMs > 0) ctx.shared.setLameduck(lameduckMs);
    return new Health(address, lameduckMs, ctx.shared.http, healthMetrics(ctx.shared.registry));
  },
};
