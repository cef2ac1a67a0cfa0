import { dirname, isAbsolute, resolve } from 'node:path';
import type { PluginDefinition } from '../../server/types.js';
import { SetupError } from '../../corefile/types.js';
import { fqdn } from '../../pkg/zone.js';
import { tryParseDuration } from '../../pkg/duration.js';
import { FilePlugin, type FileOptions } from './handler.js';

export const definition: PluginDefinition = {
  name: 'file',
  setup(d, ctx) {
    const err = (msg: string, line = d.line) => new SetupError(d.file, line, 'file', msg);
    const [db, ...zones] = d.args;
    if (db === undefined) throw err('needs a zone file: file DBFILE [ZONES...]');
    const opts: FileOptions = {
      path: isAbsolute(db) ? db : resolve(dirname(ctx.corefile), db),
      origins: zones.length ? zones.map(fqdn) : ctx.zones,
      reloadMs: 60_000,
    };
    let seenReload = false;
    for (const c of d.children) {
      if (c.name !== 'reload') throw err(`unknown property '${c.name}' (want reload)`, c.line);
      if (seenReload) throw err("'reload' given more than once", c.line);
      seenReload = true;
      if (c.args.length !== 1 || c.children.length) throw err('reload needs one duration (0 disables)', c.line);
      const ms = tryParseDuration(c.args[0]!);
      if (ms === undefined || ms < 0) throw err(`invalid duration for reload '${c.args[0]}'`, c.line);
      opts.reloadMs = ms;
    }
    try {
      return new FilePlugin(opts, ctx.shared);
    } catch (e) {
      throw err((e as Error).message);
    }
  },
};
