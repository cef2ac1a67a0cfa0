import { client, metricSet } from '../pkg/metrics.js';
import { VERSION } from '../pkg/version.js';

/**
 * The core's metrics in the DNS server's registry, which outlives reloads so counters do not reset when
 * the Corefile changes. Names and labels follow CoreDNS so existing dashboards and alerts keep working.
 * The per-query ones belong to the prometheus plugin (plugins/prometheus/recorder.ts).
 */
export const dnsMetrics = metricSet((registry) => {
  const registers = [registry];
  const metrics = {
    panics: new client.Counter({
      name: 'coredns_panics_total', help: 'A metrics that counts the number of panics.', registers,
    }),
    pluginEnabled: new client.Gauge({
      name: 'coredns_plugin_enabled', help: 'A metric that indicates whether a plugin is enabled on per server and zone basis.',
      labelNames: ['server', 'zone', 'view', 'name'], registers,
    }),
    reloadFailed: new client.Counter({
      name: 'coredns_reload_failed_total', help: 'Counter of the number of failed reload attempts.', registers,
    }),
  };
  new client.Gauge({
    name: 'coredns_build_info', help: 'A metric with a constant \'1\' value labeled by version, revision, and goversion from which CoreDNS was built.',
    labelNames: ['version', 'revision', 'goversion'], registers,
  }).set({ version: VERSION, revision: 'clusterdns', goversion: process.version }, 1);
  return metrics;
});

export type DnsMetrics = ReturnType<typeof dnsMetrics>;
