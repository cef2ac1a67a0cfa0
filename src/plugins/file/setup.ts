import { dirname, isAbsolute, resolve } from 'node:path';
import type { PluginDefinition } from '../../server/types.js';
import { SetupArgs } from '../../pkg/args.js';
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
    };
    for (const c of d.children) {
      if (c.name !== 'reload') throw a.error(c, `unknown property '${c.name}' (want reload)`);
      a.once(c);
      a.noBlock(c);
      opts.reloadMs = a.duration(c, a.count(c, 1, 1, 'DURATION (0 disables)')[0]!);
    }
    try {
      return new FilePlugin(opts, ctx.shared);
    } catch (e) {
      throw a.error(d, (e as Error).message);
    }
  },
};
