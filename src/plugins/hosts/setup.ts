import { isAbsolute, dirname, resolve } from 'node:path';
import { statSync } from 'node:fs';
import type { PluginDefinition } from '../../server/types.js';
import type { Directive } from '../../corefile/types.js';
import { SetupArgs } from '../../pkg/args.js';
import { Fall } from '../../pkg/fall.js';
import { logger } from '../../pkg/log.js';
import { Hosts, hostsMetrics, type HostsOptions } from './handler.js';
import { parseHostAddr } from './hostsfile.js';

const log = logger('plugin/hosts');

export function parseHostsDirective(d: Directive, corefile: string, blockZones: string[]): HostsOptions {
  const a = new SetupArgs('hosts');
  const [file, ...zones] = d.args;
  const path = file === undefined ? '/etc/hosts' : isAbsolute(file) ? file : resolve(dirname(corefile), file);
  try {
    if (statSync(path).isDirectory()) log.warn(`Hosts file "${path}" is a directory`);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw a.error(d, `unable to access hosts file '${path}': ${(e as Error).message}`);
    log.warn(`File does not exist: ${path}`);
  }
  const opts: HostsOptions = {
    path, origins: zones.length ? a.zones(d, zones) : blockZones, inline: '', ttl: 3600, reverse: true, reloadMs: 5000,
    fallthrough: Fall.never,
  };
  const inline: string[] = [];
  for (const c of d.children) {
    a.noBlock(c);
    switch (c.name) {
      case 'fallthrough':
        a.once(c);
        opts.fallthrough = a.fall(c);
        break;
      case 'no_reverse':
        a.once(c);
        a.count(c, 0);
        opts.reverse = false;
        break;
      case 'ttl':
        a.once(c);
        opts.ttl = a.ttl(c, 1, 65535);
        break;
      case 'reload':
        a.once(c);
        opts.reloadMs = a.duration(c, a.count(c, 1, 1, 'DURATION (0 disables)')[0]!);
        break;
      default:
        // CoreDNS treats any other line as an inline hosts entry and silently drops one without an address;
        // we reject it so a misspelt option does not vanish.
        if (!parseHostAddr(c.name)) throw a.error(c, `unknown property '${c.name}' (not an option nor an IP address starting an inline hosts entry)`);
        if (!c.args.length) throw a.error(c, `inline entry '${c.name}' has no host name`);
        if (a.has('fallthrough')) throw a.error(c, `inline entry '${c.name}' after fallthrough: put hosts lines before options`);
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
    return new Hosts(parseHostsDirective(d, ctx.corefile, ctx.zones), hostsMetrics(ctx.shared.registry));
  },
};
