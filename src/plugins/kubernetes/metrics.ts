import { client, metricSet } from '../../pkg/metrics.js';

/** The kubernetes plugin's own CoreDNS metrics, once per server registry so reloads do not reset them. */
export const kubernetesMetrics = metricSet((registry) => ({
  programming: new client.Histogram({
    name: 'coredns_kubernetes_dns_programming_duration_seconds',
    help: 'Histogram of the time (in seconds) it took to program a dns instance.',
    labelNames: ['service_kind'], registers: [registry],
    // CoreDNS: prometheus.ExponentialBuckets(0.001, 2, 20), 1 ms to ~17 min.
    buckets: Array.from({ length: 20 }, (_, i) => 0.001 * 2 ** i),
  }),
}));
