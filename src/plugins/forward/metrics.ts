import { client, metricSet } from '../../pkg/metrics.js';

/** CoreDNS's forward/proxy metrics (names after 1.11), once per server registry so reloads do not reset them. */
export const forwardMetrics = metricSet((registry) => ({
  requestDuration: new client.Histogram({
    name: 'coredns_proxy_request_duration_seconds', help: 'Histogram of the time each request took.',
    labelNames: ['proxy_name', 'to', 'rcode'],
    buckets: [0.00025, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096, 8.192],
    registers: [registry],
  }),
  healthcheckFailures: new client.Counter({
    name: 'coredns_proxy_healthcheck_failures_total', help: 'Counter of the number of failed healthchecks.',
    labelNames: ['proxy_name', 'to'], registers: [registry],
  }),
  healthcheckBroken: new client.Counter({
    name: 'coredns_forward_healthcheck_broken_total', help: 'Counter of the number of complete failures of the healthchecks.',
    registers: [registry],
  }),
  maxConcurrentRejects: new client.Counter({
    name: 'coredns_forward_max_concurrent_rejects_total',
    help: 'Counter of the number of queries rejected because the concurrent queries were at maximum.',
    registers: [registry],
  }),
}));

export type ForwardMetrics = ReturnType<typeof forwardMetrics>;
