import { isAbsolute, dirname, resolve } from 'node:path';
import { statSync } from 'node:fs';
import type { PluginDefinition } from '../../server/types.js';
import { SetupError, type Directive } from '../../corefile/types.js';
import { fqdn } from '../../server/wire/name.js';
import { logger } from '../../server/log.js';
import { tryParseDuration } from '../../corefile/duration.js';
import { Hosts, type HostsOptions } from './handler.js';
import { parseHostAddr } from './hostsfile.js';

const log = logger('plugin/hosts');

export function parseHostsDirective(d: Directive, corefile: string, blockZones: string[]): HostsOptions {
  const err = (line: number, msg: string) => new SetupError(d.file, line, 'hosts', msg);
  const [file, ...zones] = d.args;
  const path = file === undefined ? '/etc/hosts' : isAbsolute(file) ? file : resolve(dirname(corefile), file);
  try {
    if (statSync(path).isDirectory()) log.warn(`Hosts file "${path}" is a directory`);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw err(d.line, `unable to access hosts file '${path}': ${(e as Error).message}`);
    log.warn(`File does not exist: ${path}`);
  }
  const opts: HostsOptions = {
    path, origins: zones.length ? zones.map(fqdn) : blockZones, inline: '', ttl: 3600, reverse: true, reloadMs: 5000,
    fallthrough: null,
  };
  const inline: string[] = [];
  const seen = new Set<string>();
  for (const c of d.children) {
    const once = () => {
      if (seen.has(c.name)) throw err(c.line, `'${c.name}' given more than once`);
      seen.add(c.name);
    };
    if (c.children.length) throw err(c.line, `'${c.name}' takes no block`);
    switch (c.name) {
      case 'fallthrough':
        once();
        opts.fallthrough = c.args.map(fqdn);
        break;
      case 'no_reverse':
        once();
        if (c.args.length) throw err(c.line, `no_reverse takes no arguments, got '${c.args.join(' ')}'`);
        opts.reverse = false;
        break;
      case 'ttl': {
        once();
        if (c.args.length !== 1) throw err(c.line, 'ttl needs a time in second');
        const ttl = /^\d+$/.test(c.args[0]!) ? Number(c.args[0]) : NaN;
        if (Number.isNaN(ttl)) throw err(c.line, `ttl needs a number of second, got '${c.args[0]}'`);
        if (ttl <= 0 || ttl > 65535) throw err(c.line, `ttl provided is invalid: ${ttl} (want 1..65535)`);
        opts.ttl = ttl;
        break;
      }
      case 'reload': {
        once();
        if (c.args.length !== 1) throw err(c.line, 'reload needs a duration (zero seconds to disable)');
        const ms = tryParseDuration(c.args[0]!);
        if (ms === undefined) throw err(c.line, `invalid duration for reload '${c.args[0]}'`);
        if (ms < 0) throw err(c.line, `invalid negative duration for reload '${c.args[0]}'`);
        opts.reloadMs = ms;
        break;
      }
      default:
        // CoreDNS treats any other line as an inline hosts entry and silently drops one without an address;
        // we reject it so a misspelt option does not vanish.
        if (!parseHostAddr(c.name)) throw err(c.line, `unknown property '${c.name}' (not an option nor an IP address starting an inline hosts entry)`);
        if (!c.args.length) throw err(c.line, `inline entry '${c.name}' has no host name`);
        if (opts.fallthrough) throw err(c.line, `inline entry '${c.name}' after fallthrough: put hosts lines before options`);
        inline.push([c.name, ...c.args].join(' '));
    }
  }
  opts.inline = inline.join('\n');
  return opts;
}

export const definition: PluginDefinition = {
  name: 'hosts',
  once: true,
  setup(d, ctx) {
    return new Hosts(parseHostsDirective(d, ctx.corefile, ctx.zones));
  },
};
