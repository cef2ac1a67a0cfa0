import { SetupError, type Directive } from '../../corefile/types.js';
import { cidrToReverseZones, isCidr } from '../../corefile/index.js';
import { fqdn } from '../../server/wire/name.js';
import type { PluginDefinition, SetupContext } from '../../server/types.js';
import { KubernetesPlugin } from '../kubernetes/handler.js';
import { ExternalPlugin, type ExternalOptions } from './handler.js';

const zonesOf = (args: string[]) => [...new Set(args.flatMap((a) => (isCidr(a) ? cidrToReverseZones(a) : [fqdn(a)])))];

/** Parses `k8s_external [ZONES...] { apex LABEL; ttl N; headless; fallthrough [ZONES...] }`. */
export function parseExternal(d: Directive, ctx: Pick<SetupContext, 'zones'>): ExternalOptions {
  const opts: ExternalOptions = {
    zones: d.args.length > 0 ? zonesOf(d.args) : [...ctx.zones], apex: 'dns', ttl: 5, headless: false, fallthrough: null,
  };
  for (const c of d.children) {
    const fail = (msg: string) => new SetupError(d.file, c.line, 'k8s_external', msg);
    switch (c.name) {
      case 'ttl': {
        if (c.args.length !== 1) throw fail('ttl: wrong argument count or unexpected line ending');
        const t = /^\d+$/.test(c.args[0]!) ? Number(c.args[0]) : NaN;
        if (!(t >= 0 && t <= 3600)) throw fail(`ttl must be in range [0, 3600]: ${c.args[0]}`);
        opts.ttl = t;
        break;
      }
      case 'apex':
        if (c.args.length !== 1) throw fail('apex: wrong argument count or unexpected line ending');
        opts.apex = c.args[0]!.toLowerCase().replace(/\.$/, '');
        break;
      case 'headless':
        if (c.args.length !== 0) throw fail('headless takes no arguments');
        opts.headless = true;
        break;
      case 'fallthrough':
        opts.fallthrough = zonesOf(c.args);
        break;
      default:
        throw fail(`unknown property '${c.name}'`);
    }
  }
  return opts;
}

export const definition: PluginDefinition = {
  name: 'k8s_external',
  once: true,
  setup(d, ctx) {
    const opts = parseExternal(d, ctx);
    if (!ctx.block.some((b) => b.name === 'kubernetes')) {
      throw new SetupError(d.file, d.line, 'k8s_external', 'kubernetes plugin not loaded: add a kubernetes block to this server block');
    }
    // kubernetes comes later in the plugin order; its instance exists once the whole block is set up.
    const peers = ctx.peers;
    return new ExternalPlugin(opts, () => {
      const k = peers.get('kubernetes');
      if (!(k instanceof KubernetesPlugin)) throw new Error('plugin/k8s_external: kubernetes plugin not loaded');
      return k;
    });
  },
};
