import type { PluginDefinition } from '../../server/types.js';
import { SetupError, type Directive } from '../../corefile/types.js';
import { Rewrite, RewritePassThrough } from './handler.js';
import { parseRule } from './rules.js';
import type { Rule } from './types.js';

/** A rule's words: on the line, or (CoreDNS's nested form, when the line has < 2) every token of the block. */
function ruleArgs(d: Directive): string[] {
  if (d.args.length >= 2) {
    if (d.children.length) throw new SetupError(d.file, d.children[0]!.line, 'rewrite', `unexpected block after a complete rule: '${d.children[0]!.name}'`);
    return d.args;
  }
  const flat = (c: Directive): string[] => [c.name, ...c.args, ...c.children.flatMap(flat)];
  return [...d.args, ...d.children.flatMap(flat)];
}

export function parseRewriteDirective(d: Directive): Rule {
  try {
    return parseRule(ruleArgs(d));
  } catch (e) {
    if (e instanceof SetupError) throw e;
    throw new SetupError(d.file, d.line, 'rewrite', (e as Error).message);
  }
}

export const definition: PluginDefinition = {
  name: 'rewrite',
  setup(d, ctx) {
    // CoreDNS hands all rewrite lines of a block to one handler, so `stop` ends the whole list: the first
    // instance takes every line, the others pass through.
    if (ctx.peers.has('rewrite')) return new RewritePassThrough();
    return new Rewrite(ctx.block.filter((x) => x.name === 'rewrite').map(parseRewriteDirective), ctx.shared);
  },
};
