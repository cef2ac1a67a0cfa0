import { client, metricSet } from '../pkg/metrics.js';
import { VERSION } from '../pkg/version.js';

const durationBuckets = [0.00025, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096, 8.192];
const sizeBuckets = [0, 100, 200, 300, 400, 511, 1023, 2047, 4095, 8291, 16000, 32000, 48000, 64000];

/**
 * The core's metrics in the DNS server's registry, which outlives reloads so counters do not reset when
 * the Corefile changes. Names and labels follow CoreDNS so existing dashboards and alerts keep working.
 */
export const dnsMetrics = metricSet((registry) => {
  const registers = [registry];
  const metrics = {
    requests: new client.Counter({
      name: 'coredns_dns_requests_total', help: 'Counter of DNS requests made per zone, protocol and family.',
      labelNames: ['server', 'zone', 'view', 'proto', 'family', 'type'], registers,
    }),
    responses: new client.Counter({
      name: 'coredns_dns_responses_total', help: 'Counter of response status codes.',
      labelNames: ['server', 'zone', 'view', 'rcode', 'plugin'], registers,
    }),
    duration: new client.Histogram({
      name: 'coredns_dns_request_duration_seconds', help: 'Histogram of the time (in seconds) each request took per zone.',
      labelNames: ['server', 'zone', 'view', 'type'], buckets: durationBuckets, registers,
    }),
    requestSize: new client.Histogram({
      name: 'coredns_dns_request_size_bytes', help: 'Size of the EDNS0 UDP buffer in bytes (64K for TCP) per zone and protocol.',
      labelNames: ['server', 'zone', 'view', 'proto'], buckets: sizeBuckets, registers,
    }),
    responseSize: new client.Histogram({
      name: 'coredns_dns_response_size_bytes', help: 'Size of the returned response in bytes.',
      labelNames: ['server', 'zone', 'view', 'proto'], buckets: sizeBuckets, registers,
    }),
    doRequests: new client.Counter({
      name: 'coredns_dns_do_requests_total', help: 'Counter of DNS requests with DO bit set per zone.',
      labelNames: ['server', 'zone', 'view'], registers,
    }),
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
