import t from 'tap';
import client from 'prom-client';
import { createRegistry } from '../src/pkg/metrics.js';
import { recorderFor } from '../src/plugins/prometheus/recorder.js';

/* The per-query cells print exactly what prom-client's own Counter and Histogram print for the same updates. */

const FAMILIES = ['coredns_dns_requests_total', 'coredns_dns_responses_total', 'coredns_dns_request_duration_seconds',
  'coredns_dns_request_size_bytes', 'coredns_dns_response_size_bytes', 'coredns_dns_do_requests_total'];

t.test('cells print what prom-client prints', async (t) => {
  const registry = createRegistry();
  const recorder = recorderFor(registry);
  const ref = new client.Registry();
  const durationBuckets = [0.00025, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096, 8.192];
  const sizeBuckets = [0, 100, 200, 300, 400, 511, 1023, 2047, 4095, 8291, 16000, 32000, 48000, 64000];
  const help = async (name: string) => (await registry.getSingleMetricAsString(name)).split('\n')[0]!.replace(/^# HELP \S+ /, '');
  const r = {
    requests: new client.Counter({ name: FAMILIES[0]!, help: await help(FAMILIES[0]!), labelNames: ['server', 'zone', 'view', 'proto', 'family', 'type'], registers: [ref] }),
    responses: new client.Counter({ name: FAMILIES[1]!, help: await help(FAMILIES[1]!), labelNames: ['server', 'zone', 'view', 'rcode', 'plugin'], registers: [ref] }),
    duration: new client.Histogram({ name: FAMILIES[2]!, help: await help(FAMILIES[2]!), labelNames: ['server', 'zone', 'view', 'type'], buckets: durationBuckets, registers: [ref] }),
    requestSize: new client.Histogram({ name: FAMILIES[3]!, help: await help(FAMILIES[3]!), labelNames: ['server', 'zone', 'view', 'proto'], buckets: sizeBuckets, registers: [ref] }),
    responseSize: new client.Histogram({ name: FAMILIES[4]!, help: await help(FAMILIES[4]!), labelNames: ['server', 'zone', 'view', 'proto'], buckets: sizeBuckets, registers: [ref] }),
    doRequests: new client.Counter({ name: FAMILIES[5]!, help: await help(FAMILIES[5]!), labelNames: ['server', 'zone', 'view'], registers: [ref] }),
  };
  const queries: [string, string, string, boolean, 1 | 2, boolean, number, number, number, string, string][] = [
    ['dns://:53', 'cluster.local.', 'A', false, 1, false, 0.0003, 40, 90, 'kubernetes', 'NOERROR'],
    ['dns://:53', 'cluster.local.', 'AAAA', true, 2, true, 0.002, 45, 700, 'kubernetes', 'NXDOMAIN'],
    ['dns://:53', '.', 'A', false, 1, false, 9.5, 33, 600_000, 'forward', 'SERVFAIL'],
    ['dns://:53', 'cluster.local.', 'A', false, 1, false, 0.00025, 0, 100, 'kubernetes', 'NOERROR'],
    ['dns://:1053', '.', 'other', true, 1, true, 0.1, 512, 4096, '', 'REFUSED'],
  ];
  for (const [server, zone, type, tcp, family, dnssec, seconds, qsize, rsize, plugin, rcode] of queries) {
    const s = recorder.view('').seriesFor(server, zone);
    const proto = tcp ? 'tcp' : 'udp';
    if (dnssec) {
      s.dnssecOk();
      r.doRequests.inc({ server, zone, view: '' });
    }
    s.request(type, tcp, family);
    r.requests.inc({ server, zone, view: '', proto, family: String(family), type });
    s.duration(type, seconds);
    r.duration.observe({ server, zone, view: '', type }, seconds);
    s.sizes(tcp, qsize, rsize);
    r.requestSize.observe({ server, zone, view: '', proto }, qsize);
    r.responseSize.observe({ server, zone, view: '', proto }, rsize);
    s.response(plugin, rcode);
    r.responses.inc({ server, zone, view: '', rcode, plugin });
  }
  for (const name of FAMILIES) t.equal(await registry.getSingleMetricAsString(name), await ref.getSingleMetricAsString(name), name);
  t.match(await registry.metrics(), /^coredns_dns_request_duration_seconds_bucket\{le="\+Inf",server="dns:\/\/:53",zone="\.",view="",type="A"\} 1$/m);
  registry.resetMetrics();
  t.match(await registry.getSingleMetricAsString(FAMILIES[0]!), /coredns_dns_requests_total\{[^}]*\} 0$/m, 'reset zeroes the cells');
});
