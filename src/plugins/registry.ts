import { existsSync } from 'node:fs';
import type { PluginDefinition } from '../server/types.js';

/**
 * Execution order, like CoreDNS's plugin.cfg: the chain runs in this order whatever the Corefile order.
 * Each name is a folder `src/plugins/<name>/` whose `setup.js` exports `definition`.
 */
export const PLUGIN_ORDER = [
  'reload', 'bind', 'ready', 'health', 'prometheus', 'errors', 'log', 'loadbalance', 'cache', 'rewrite',
  'autopath', 'hosts', 'k8s_external', 'kubernetes', 'file', 'loop', 'forward', 'whoami',
] as const;

const definitions = new Map<string, PluginDefinition>();

/** Loads every plugin that is built; a name whose folder is missing simply stays unknown. */
export async function loadPlugins(): Promise<Map<string, PluginDefinition>> {
  if (definitions.size) return definitions;
  await Promise.all(PLUGIN_ORDER.map(async (name) => {
    // Built output has setup.js; tests run the TypeScript sources through a loader that maps .js to .ts.
    const built = ['js', 'ts'].some((ext) => existsSync(new URL(`./${name}/setup.${ext}`, import.meta.url)));
    if (!built) return;
    const mod = (await import(`./${name}/setup.js`)) as { definition: PluginDefinition };
    definitions.set(name, mod.definition);
  }));
  return definitions;
}

export function pluginRank(name: string): number {
  return (PLUGIN_ORDER as readonly string[]).indexOf(name);
}
