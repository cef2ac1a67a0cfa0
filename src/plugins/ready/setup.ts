import { SetupError } from '../../corefile/types.js';
import type { PluginDefinition } from '../../server/types.js';
import { listenAddress } from '../../server/http.js';
import { SetupArgs } from '../../pkg/args.js';
import { Ready } from './handler.js';

/** `ready [ADDRESS] { monitor until-ready|continuously }` */
export const definition: PluginDefinition = {
  name: 'ready',
  once: true,
  setup(d, ctx) {
    const fail = (msg: string, line = d.line) => new SetupError(d.file, line, 'ready', msg);
    const address = listenAddress(d, ':8181', fail);
    let continuously = false;
    const a = new SetupArgs('ready');
    for (const c of d.children) {
      if (c.name !== 'monitor') throw a.error(c, `unknown property '${c.name}'`);
      const [mode] = a.count(c, 1, 1, 'until-ready or continuously');
      if (mode !== 'until-ready' && mode !== 'continuously') throw a.error(c, `monitor type '${mode}' not supported`);
      continuously = mode === 'continuously';
    }
    const ready = new Ready(address, continuously, ctx.shared);
    ctx.shared.http.route(address, '/ready', ready.handle, 'ready');
    return ready;
  },
};
