import { SetupError } from '../../corefile/types.js';
import type { PluginDefinition } from '../../server/types.js';
import { checkAddress } from '../prometheus/setup.js';
import { Ready } from './handler.js';

/** `ready [ADDRESS] { monitor until-ready|continuously }` */
export const definition: PluginDefinition = {
  name: 'ready',
  once: true,
  setup(d, ctx) {
    const fail = (msg: string, line = d.line) => new SetupError(d.file, line, 'ready', msg);
    if (d.args.length > 1) throw fail(`wrong argument count: want at most one ADDRESS, got '${d.args.join(' ')}'`);
    const address = d.args[0] ?? ':8181';
    checkAddress(address, (m) => fail(m));
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
