import { client, metricSet } from '../../pkg/metrics.js';

/** CoreDNS's acl counters, once per server registry so reloads do not reset them. `view` is the block's view name. */
export const aclMetrics = metricSet((registry) => {
  const counter = (what: string, labelNames: string[]) => new client.Counter({
    name: `coredns_acl_${what}_requests_total`, help: `Counter of DNS requests being ${what}.`, labelNames, registers: [registry],
  });
  return {
    blocked: counter('blocked', ['server', 'zone', 'view']),
    filtered: counter('filtered', ['server', 'zone', 'view']),
    allowed: counter('allowed', ['server', 'view']),
    dropped: counter('dropped', ['server', 'zone', 'view']),
  };
});

export type AclMetrics = ReturnType<typeof aclMetrics>;
