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
    const fail = (msg: string) => new SetupError(d.file, d.line, 'bind', msg);
    const addrs = [...d.args, ...d.children.flatMap((c) => (c.name === 'except' ? [] : [c.name, ...c.args]))];
    const except = d.children.flatMap((c) => (c.name === 'except' ? c.args : []));
    if (!addrs.length) throw fail('at least one address is required');
    for (const a of [...addrs, ...except]) {
      if (!ipFamily(a)) throw fail(`not a valid IP address: '${a}' (interface names are not supported)`);
    }
    const kept = addrs.filter((a) => !except.includes(a));
    if (!kept.length) throw fail(`every address is excluded by except (${except.join(' ')})`);
    return new Bind(kept);
  },
};
