import { SetupError } from '../../corefile/types.js';
import type { PluginDefinition } from '../../server/types.js';
import { listenAddress } from '../../server/http.js';
import { Ready } from './handler.js';

/** `ready [ADDRESS] { monitor until-ready|continuously }` */
export const definition: PluginDefinition = {
  name: 'ready',
  once: true,
  setup(d, ctx) {
    const fail = (msg: string, line = d.line) => new SetupError(d.file, line, 'ready', msg);
    const address = listenAddress(d, ':8181', fail);
    let continuously = false;
    for (const c of d.children) {
      if (c.name !== 'monitor') throw fail(`unknown property '${c.name}'`, c.line);
      if (c.args.length !== 1) throw fail(`monitor: wrong argument count: want until-ready or continuously, got ${c.args.length}`, c.line);
      if (c.args[0] !== 'until-ready' && c.args[0] !== 'continuously') throw fail(`monitor type '${c.args[0]}' not supported`, c.line);
      continuously = c.args[0] === 'continuously';
    }
    const ready = new Ready(address, continuously, ctx.shared);
    ctx.shared.http.route(address, '/ready', ready.handle, 'ready');
    return ready;
  },
};
