import client, { type Registry } from 'prom-client';

export { client, type Registry };

/**
 * A registry as each binary serves it on /metrics: its own metrics plus Node's process and GC metrics.
 * The owner (the DNS server, the VIP programmer) creates one and hands it to what it starts; nothing
 * registers into a process-wide default, so two binaries' metrics never mix.
 */
export function createRegistry(): Registry {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry });
  return registry;
}

/**
 * The metrics a component defines, once per registry: the same registry always gets the same metric
 * objects back. A plugin set up again by a Corefile reload (or a second cluster source) therefore keeps
 * counting where the previous instance stopped, and prom-client never sees a name registered twice.
 */
export function metricSet<T>(define: (registry: Registry) => T): (registry: Registry) => T {
  const sets = new WeakMap<Registry, T>();
  return (registry) => {
    let set = sets.get(registry);
    if (!set) sets.set(registry, (set = define(registry)));
    return set;
  };
}
