import { existsSync } from 'node:fs';
import type { PluginDefinition, PluginDefinitions } from '../server/types.js';

/**
 * Execution order, like CoreDNS's plugin.cfg: the chain runs in this order whatever the Corefile order.
 * Each name is a folder `src/plugins/<name>/` whose `setup.js` exports `definition`.
 */
export const PLUGIN_ORDER = [
  'tls', 'timeouts', 'reload', 'bufsize', 'bind', 'ready', 'health', 'prometheus', 'errors', 'log', 'dnstap', 'local', 'acl', 'any', 'chaos',
  'loadbalance', 'cache', 'rewrite', 'header', 'autopath', 'minimal', 'template', 'transfer', 'hosts', 'k8s_external', 'kubernetes', 'file', 'loop', 'forward',
  'whoami', 'view',
] as const;

let definitions: PluginDefinitions | undefined;

/**
 * Every plugin that is built, iterated in execution order; a name whose folder is missing simply stays
 * unknown. The entry point hands the result to the server.
 */
export async function loadPlugins(): Promise<PluginDefinitions> {
  if (definitions) return definitions;
  const loaded = await Promise.all(PLUGIN_ORDER.map(async (name) => {
    // Built output has setup.js; tests run the TypeScript sources through a loader that maps .js to .ts.
    const built = ['js', 'ts'].some((ext) => existsSync(new URL(`./${name}/setup.${ext}`, import.meta.url)));
    if (!built) return undefined;
    return ((await import(`./${name}/setup.js`)) as { definition: PluginDefinition }).definition;
  }));
  definitions = new Map(loaded.filter((d) => d !== undefined).map((d) => [d.name, d]));
  return definitions;
}
