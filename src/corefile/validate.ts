/** Checks a parsed Corefile the way CoreDNS does at startup, before any plugin parses its own block. */
import { parseServerKey } from './address.js';
import { CorefileError, SetupError, type Corefile, type ServerAddress } from './types.js';

export interface DirectiveRegistry {
  known(name: string): boolean;
  /** Plugins whose setup refuses a second instance in one server block (kubernetes, cache, errors, …). */
  once(name: string): boolean;
  /** Plugins that filter which queries their block takes (`view`): such a block may share its zones. */
  filters?(name: string): boolean;
}

/**
 * Throws the first problem in CoreDNS's order: unknown directives (parse), bad keys (server-block inspection),
 * once-only plugins used twice (plugin setup, reported as `SetupError`), then a zone+port served twice.
 */
export function validateCorefile(cf: Corefile, registry: DirectiveRegistry, dnsPort = 53): void {
  for (const block of cf.blocks) {
    for (const d of block.directives) {
      if (!registry.known(d.name)) throw new CorefileError(d.file, d.line, `Unknown directive '${d.name}'`);
    }
  }

  const addresses: ServerAddress[][] = cf.blocks.map((block) =>
    block.keys.map((key) => {
      try {
        return parseServerKey(key, dnsPort);
      } catch (e) {
        throw new CorefileError(block.file, block.line, (e as Error).message);
      }
    }),
  );

  for (const block of cf.blocks) {
    const seen = new Set<string>();
    for (const d of block.directives) {
      if (seen.has(d.name) && registry.once(d.name)) {
        throw new SetupError(d.file, d.line, d.name, 'this plugin can only be used once per Server Block');
      }
      seen.add(d.name);
    }
  }

  const served = new Set<string>();
  cf.blocks.forEach((block, i) => {
    // CoreDNS registers only unfiltered blocks: a filtered one shares its zone with any other block.
    if (block.directives.some((d) => registry.filters?.(d.name))) return;
    for (const address of addresses[i]) {
      for (const zone of address.zones) {
        const id = `${address.scheme}://${zone}:${address.port}`;
        if (served.has(id)) throw new CorefileError(block.file, block.line, `cannot serve ${id} - it is already defined`);
        served.add(id);
      }
    }
  });
}
