import type { Directive } from '../../corefile/types.js';
import { SetupArgs } from '../../pkg/args.js';
import { canonicalCidr, canonicalIP, parseHostPort } from '../../pkg/ip.js';
import type { PluginDefinition, SetupContext } from '../../server/types.js';
import { isTransferer } from '../interfaces.js';
import { TransferPlugin, type TransferOptions } from './handler.js';

/** Parses `transfer [ZONES...] { to ADDRESS...; source ADDRESS }` (CoreDNS's parseTransfer). */
export function parseTransfer(d: Directive, ctx: Pick<SetupContext, 'zones'>): TransferOptions {
  const a = new SetupArgs('transfer');
  const opts: TransferOptions = { zones: d.args.length > 0 ? a.zones(d) : [...ctx.zones], any: false, hosts: [], cidrs: [], notify: [] };
  for (const c of d.children) {
    a.noBlock(c);
    switch (c.name) {
      case 'to':
        for (const host of a.count(c, 1, Infinity, 'ADDRESS...')) {
          if (host === '*') {
            opts.any = true;
            continue;
          }
          // A CIDR only widens who may transfer; NOTIFY goes to single addresses.
          const cidr = host.includes('/') ? canonicalCidr(host) : undefined;
          if (cidr) {
            opts.cidrs.push(cidr);
            continue;
          }
          const hp = parseHostPort(host);
          if (!hp || hp.port < 1 || hp.port > 65535) throw a.error(c, `to: not an IP address, IP:PORT, CIDR or '*': '${host}'`);
          opts.hosts.push(canonicalIP(hp.host)!);
          opts.notify.push(hp);
        }
        break;
      case 'source': {
        a.once(c);
        const [ip] = a.count(c, 1, 1, 'ADDRESS');
        const canonical = canonicalIP(ip!);
        if (!canonical) throw a.error(c, `invalid source address '${ip}'`);
        opts.source = canonical;
        break;
      }
      default:
        throw a.error(c, `unknown property '${c.name}'`);
    }
  }
  if (!opts.any && opts.hosts.length === 0 && opts.cidrs.length === 0) throw a.error(d, "'to' is required");
  return opts;
}

export const definition: PluginDefinition = {
  name: 'transfer',
  setup(d, ctx) {
    const t = new TransferPlugin(parseTransfer(d, ctx));
    // The zone plugins come later in the execution order: they exist once the whole block is set up.
    ctx.afterBlock(() => {
      for (const p of ctx.instances) if (isTransferer(p)) t.transferers.push(p);
    });
    return t;
  },
};
