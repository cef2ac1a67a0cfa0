import { SetupArgs } from '../../pkg/args.js';
import type { Peer } from '../../server/listeners.js';
import type { Plugin, PluginDefinition, Query } from '../../server/types.js';
import { compileExpression, ExprError, type Program } from './expression.js';

/**
 * A server-block filter: the block serves a query only when every `expr` is true for it (anything but the
 * boolean true, an evaluation error included, is false). It has no place in the chain.
 */
export class View implements Plugin {
  readonly name = 'view';
  readonly filter: (q: Query, peer: Peer) => boolean;

  constructor(programs: Program[]) {
    this.filter = (q, peer) => {
      for (let i = 0; i < programs.length; i++) {
        try {
          if (programs[i]!(q, peer) !== true) return false;
        } catch {
          return false;
        }
      }
      return true;
    };
  }
}

export const definition: PluginDefinition = {
  name: 'view',
  once: true,
  filter: true,
  setup(d) {
    const a = new SetupArgs('view');
    // NAME labels the block's metrics: the server reads it from the directive (SetupContext.view).
    a.count(d, 1, 1, 'NAME');
    const programs = d.children.map((c) => {
      if (c.name !== 'expr') throw a.error(c, `unknown property '${c.name}'`);
      a.noBlock(c);
      // CoreDNS joins the line's tokens with single spaces: `incidr(client_ip(), '10.0.0.0/24')` is two tokens.
      const text = a.count(c, 1, Infinity, 'EXPRESSION').join(' ');
      try {
        return compileExpression(text);
      } catch (e) {
        if (e instanceof ExprError) throw a.error(c, `${e.message} in '${text}'`);
        throw e;
      }
    });
    return new View(programs);
  },
};
