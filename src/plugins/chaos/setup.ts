import type { PluginDefinition } from '../../server/types.js';
import { SetupArgs } from '../../pkg/args.js';
import { VERSION } from '../../pkg/version.js';
import { Chaos, trim } from './handler.js';

/** CoreDNS answers `CoreDNS-<version>` and its OWNERS handles; ours is named after this server. */
export const DEFAULT_VERSION = `clusterdns-${VERSION}`;
export const DEFAULT_AUTHORS = ['clusterdns'];

export const definition: PluginDefinition = {
  name: 'chaos',
  setup(d) {
    const a = new SetupArgs('chaos');
    for (const c of d.children) throw a.error(c, `unknown property '${c.name}'`);
    const [version, ...authors] = d.args;
    if (version === undefined) return new Chaos(trim(DEFAULT_VERSION), DEFAULT_AUTHORS);
    // Like CoreDNS: a lone VERSION is trimmed, authors are de-duplicated, trimmed and sorted.
    if (!authors.length) return new Chaos(trim(version), DEFAULT_AUTHORS);
    return new Chaos(version, [...new Set(authors)].map(trim).sort());
  },
};
