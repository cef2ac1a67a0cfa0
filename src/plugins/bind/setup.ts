import { existsSync } from 'node:fs';
import os from 'node:os';
import { SetupArgs } from '../../pkg/args.js';
import { ipFamily } from '../../pkg/ip.js';
import type { Plugin, PluginDefinition } from '../../server/types.js';

/** `bind ADDRESS|IFACE...`: listen on these addresses instead of all interfaces. The server reads `addresses`. */
export class Bind implements Plugin {
  readonly name = 'bind';
  constructor(readonly addresses: string[]) {}
  serve: Plugin['serve'] = (q, next) => next(q);
}

export type Interfaces = NodeJS.Dict<os.NetworkInterfaceInfo[]>;

/** fe80::/10: an address that means something only together with its interface. */
const linkLocal6 = (a: string) => /^fe[89ab]/i.test(a);

/**
 * Each argument as addresses: an IP stays itself; an interface name stands for all its addresses at this
 * moment (IPv4 and IPv6; IPv6 link-local ones with `%IFACE`, so a socket can bind them), as CoreDNS's
 * listIP does. An interface that exists but has no address gives none; anything else is an error.
 */
export function listAddresses(args: readonly string[], ifaces: Interfaces, exists: (name: string) => boolean): string[] | string {
  const out: string[] = [];
  for (const a of args) {
    const addrs = ifaces[a];
    if (addrs || (!ipFamily(a) && exists(a))) {
      for (const i of addrs ?? []) out.push(i.family === 'IPv6' && linkLocal6(i.address) && !i.address.includes('%') ? `${i.address}%${a}` : i.address);
    } else if (ipFamily(a)) out.push(a);
    else return a;
  }
  return out;
}

/** A network interface without addresses is absent from os.networkInterfaces() but present here (Linux). */
const interfaceExists = (name: string) => !name.includes('/') && name !== '.' && name !== '..' && existsSync(`/sys/class/net/${name}`);

export const definition: PluginDefinition = {
  name: 'bind',
  setup(d) {
    const a = new SetupArgs('bind');
    if (!d.args.length) throw a.error(d, 'at least one address or interface name is expected');
    const except: string[] = [];
    for (const c of d.children) {
      if (c.name !== 'except') throw a.error(c, `invalid option '${c.name}' (want except ADDRESS|IFACE...)`);
      a.noBlock(c);
      if (!c.args.length) throw a.error(c, 'at least one address or interface must be given to except subdirective');
      except.push(...c.args);
    }
    // Read at every (re)load: an interface's addresses are those it has when the Corefile is loaded (CoreDNS).
    const ifaces = os.networkInterfaces();
    const resolve = (args: readonly string[], at: typeof d) => {
      const r = listAddresses(args, ifaces, interfaceExists);
      if (typeof r === 'string') throw a.error(at, `not a valid IP address or interface name: '${r}'`);
      return r;
    };
    const excluded = new Set(d.children.flatMap((c) => resolve(c.args, c)));
    const kept = [...new Set(resolve(d.args, d))].filter((x) => !excluded.has(x));
    if (!kept.length) throw a.error(d, `no address left to listen on (${d.args.join(' ')}${except.length ? ` except ${except.join(' ')}` : ''})`);
    return new Bind(kept);
  },
};
