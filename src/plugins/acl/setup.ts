import type { Directive } from '../../corefile/types.js';
import type { PluginDefinition, SetupContext } from '../../server/types.js';
import { SetupArgs } from '../../pkg/args.js';
import { parseCidr, type Cidr } from '../../pkg/ip.js';
import { typeByMnemonic } from '../../server/wire/constants.js';
import { Acl, AclPassThrough, type Action, type AclRule, type Policy } from './handler.js';
import { aclMetrics } from './metrics.js';

const ACTIONS = new Set(['allow', 'block', 'filter', 'drop']);
const isSection = (t: string) => t.toLowerCase() === 'type' || t.toLowerCase() === 'net';

/** `ACTION [type QTYPE...] [net SOURCE...]`, sections in any order, `*` for all. */
function parsePolicy(a: SetupArgs, c: Directive): Policy {
  const action = c.name.toLowerCase();
  if (!ACTIONS.has(action)) throw a.error(c, `unexpected token '${c.name}'; expect 'allow', 'block', 'filter' or 'drop'`);
  a.noBlock(c);
  const p: Policy = { action: action as Action };
  let types: Set<number> | null | undefined, nets: Cidr[] | null | undefined;
  const tokens = [...c.args];
  while (tokens.length) {
    const section = tokens.shift()!;
    if (!isSection(section)) throw a.error(c, `unexpected token '${section}'; expect 'type | net'`);
    const values: string[] = [];
    while (tokens.length && !isSection(tokens[0]!)) values.push(tokens.shift()!);
    if (!values.length) throw a.error(c, `no token specified in '${section.toLowerCase()}' section`);
    if (section.toLowerCase() === 'type') {
      // `*` anywhere makes the section match every type (null), as in CoreDNS.
      if (types !== null) types ??= new Set();
      for (const v of values) {
        if (v === '*') { types = null; continue; }
        const t = typeByMnemonic(v);
        if (t === undefined) throw a.error(c, `unexpected token '${v}'; expect legal QTYPE`);
        types?.add(t);
      }
    } else {
      if (nets !== null) nets ??= [];
      for (const v of values) {
        if (v === '*') { nets = null; continue; }
        // A bare address is a /32 or /128 (CoreDNS's normalize).
        const cidr = parseCidr(v.includes('/') ? v : `${v}/${v.includes(':') ? 128 : 32}`);
        if (!cidr) throw a.error(c, `illegal CIDR notation '${v}'`);
        nets?.push(cidr);
      }
    }
  }
  if (types) p.types = types;
  if (nets) p.nets = nets;
  return p;
}

function parseRule(d: Directive, ctx: SetupContext): AclRule {
  const a = new SetupArgs('acl');
  return { zones: d.args.length ? a.zones(d) : ctx.zones, policies: d.children.map((c) => parsePolicy(a, c)) };
}

export const definition: PluginDefinition = {
  name: 'acl',
  setup(d, ctx) {
    // CoreDNS hands all acl lines of a block to one handler (an allow ends the whole list): the first
    // instance takes every line, the others pass through.
    if (ctx.peers.has('acl')) return new AclPassThrough();
    return new Acl(ctx.block.filter((x) => x.name === 'acl').map((x) => parseRule(x, ctx)), aclMetrics(ctx.shared.registry), ctx.view);
  },
};
