import { dirname, isAbsolute, resolve } from 'node:path';
import type { PluginDefinition } from '../../server/types.js';
import { SetupArgs } from '../../pkg/args.js';
import { Fall } from '../../pkg/fall.js';
import { FilePlugin, type FileOptions } from './handler.js';

export const definition: PluginDefinition = {
  name: 'file',
  setup(d, ctx) {
    const a = new SetupArgs('file');
    const [db, ...zones] = d.args;
    if (db === undefined) throw a.error(d, 'needs a zone file: file DBFILE [ZONES...]');
    const opts: FileOptions = {
      path: isAbsolute(db) ? db : resolve(dirname(ctx.corefile), db),
      origins: zones.length ? a.zones(d, zones) : ctx.zones,
      reloadMs: 60_000,
      fallthrough: Fall.never,
    };
    for (const c of d.children) {
      a.noBlock(c);
      switch (c.name) {
        case 'reload':
          a.once(c);
          opts.reloadMs = a.duration(c, a.count(c, 1, 1, 'DURATION (0 disables)')[0]!);
          break;
        case 'fallthrough':
          opts.fallthrough = a.fall(c);
          break;
        case 'upstream':
          // CoreDNS still takes it (and its addresses) but ignores them: CNAME targets always resolve through the server.
          break;
        default:
          throw a.error(c, `unknown property '${c.name}' (want reload, fallthrough or upstream)`);
      }
    }
    try {
      return new FilePlugin(opts, ctx.shared);
    } catch (e) {
      throw a.error(d, (e as Error).message);
    }
  },
};
