import { SetupError, type Directive } from '../../corefile/types.js';
import { SetupArgs } from '../../pkg/args.js';
import { Fall } from '../../pkg/fall.js';
import type { PluginDefinition, SetupContext } from '../../server/types.js';
import { isExternaler, type Externaler } from '../interfaces.js';
import { ExternalPlugin, type ExternalOptions } from './handler.js';

/** Parses `k8s_external [ZONES...] { apex LABEL; ttl N; headless; fallthrough [ZONES...] }`. */
export function parseExternal(d: Directive, ctx: Pick<SetupContext, 'zones'>): ExternalOptions {
  const a = new SetupArgs('k8s_external');
  const opts: ExternalOptions = {
    zones: d.args.length > 0 ? a.zones(d) : [...ctx.zones], apex: 'dns', ttl: 5, headless: false, fallthrough: Fall.never,
  };
  for (const c of d.children) {
    switch (c.name) {
      case 'ttl':
        opts.ttl = a.ttl(c, 0, 3600);
        break;
      case 'apex':
        opts.apex = a.count(c, 1, 1, 'LABEL')[0]!.toLowerCase().replace(/\.$/, '');
        break;
      case 'headless':
        a.count(c, 0);
        opts.headless = true;
        break;
      case 'fallthrough':
        opts.fallthrough = a.fall(c);
        break;
      default:
        throw a.error(c, `unknown property '${c.name}'`);
    }
  }
  return opts;
}

export const definition: PluginDefinition = {
  name: 'k8s_external',
  once: true,
  setup(d, ctx) {
    const opts = parseExternal(d, ctx);
    let backend: Externaler | undefined;
    // kubernetes comes later in the plugin order: its instance exists once the whole block is set up.
    ctx.afterBlock(() => {
      const k = ctx.peers.get('kubernetes');
      if (!isExternaler(k)) throw new SetupError(d.file, d.line, 'k8s_external', 'kubernetes plugin not loaded: add a kubernetes block to this server block');
      backend = k;
    });
    return new ExternalPlugin(opts, () => backend!, ctx.shared);
  },
};
