import { SetupError } from '../../corefile/types.js';
import { ipFamily } from '../../pkg/ip.js';
import type { Plugin, PluginDefinition } from '../../server/types.js';

/** `bind ADDRESS...`: listen on these addresses instead of all interfaces. The server reads `addresses`. */
export class Bind implements Plugin {
  readonly name = 'bind';
  constructor(readonly addresses: string[]) {}
  serve: Plugin['serve'] = (q, next) => next(q);
}

export const definition: PluginDefinition = {
  name: 'bind',
  setup(d) {
    const addrs = [...d.args, ...d.children.flatMap((c) => (c.name === 'except' ? [] : [c.name, ...c.args]))];
    if (!addrs.length) throw new SetupError(d.file, d.line, 'bind', 'at least one address is required');
    for (const a of addrs) {
      if (!ipFamily(a)) throw new SetupError(d.file, d.line, 'bind', `not a valid IP address: '${a}' (interface names are not supported)`);
    }
    return new Bind(addrs);
  },
};
