import { resolve, dirname } from 'node:path';
import { SetupError } from '../../corefile/types.js';
import type { PluginDefinition } from '../../server/types.js';
import { SetupArgs } from '../../pkg/args.js';
import { hostSearchDomains } from '../kubernetes/autopath.js';
import { Autopath, autopathMetrics, type SearchSource } from './handler.js';

export const definition: PluginDefinition = {
  name: 'autopath',
  once: true,
  setup(d, ctx) {
    const fail = (msg: string) => new SetupError(d.file, d.line, 'autopath', msg);
    if (d.children.length) throw fail(`unknown property '${d.children[0]!.name}'`);
    if (d.args.length < 1) throw fail('wrong argument count: need RESOLV-CONF or @kubernetes');
    const last = d.args[d.args.length - 1]!;
    const zones = d.args.length > 1 ? new SetupArgs('autopath').zones(d, d.args.slice(0, -1)) : ctx.zones;
    let source: SearchSource;
    if (last.startsWith('@')) {
      const plugin = last.slice(1);
      if (plugin !== 'kubernetes') throw fail(`unknown plugin '${plugin}': only @kubernetes provides a search path`);
      if (!ctx.block.some((x) => x.name === 'kubernetes')) throw fail('@kubernetes needs a kubernetes plugin in the same server block');
      const kube = ctx.block.find((x) => x.name === 'kubernetes')!;
      const pods = kube.children.find((c) => c.name === 'pods')?.args[0];
      if (pods !== 'verified') throw fail('@kubernetes needs "pods verified" in the kubernetes block (the client pod is found by its IP)');
      source = { kind: 'kubernetes', peers: ctx.peers, hostSearch: hostSearchDomains() };
    } else {
      const file = resolve(dirname(ctx.corefile), last);
      const search = hostSearchDomains(file);
      if (!search.length) throw fail(`no search domains in ${file}`);
      source = { kind: 'static', search: [...search, ''] };
    }
    return new Autopath(zones, source, autopathMetrics(ctx.shared.registry));
  },
};
