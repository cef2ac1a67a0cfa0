import { client, type Registry } from '../pkg/metrics.js';

/**
 * The agent's own metrics, registered into the registry the DNS server's `prometheus` plugin serves, so
 * one scrape of the local cache shows cache, forward and rule state together. The error counter keeps
 * node-cache's name and `errortype` values so its dashboards and alerts work unchanged.
 */
export class NodecacheMetrics {
  readonly setupErrors: client.Counter<'errortype'>;
  readonly rules: client.Gauge<'mode'>;
  readonly repaired: client.Counter<'mode'>;
  readonly lastError: client.Gauge;

  constructor(registry: Registry) {
    this.setupErrors = new client.Counter({
      name: 'coredns_nodecache_setup_errors_total', help: 'The number of errors during periodic network setup for node-cache',
      labelNames: ['errortype'], registers: [registry],
    });
    this.rules = new client.Gauge({
      name: 'clusterdns_nodecache_rules', help: 'Rules of the agent found in the kernel after the last check (0 when they could not be read).',
      labelNames: ['mode'], registers: [registry],
    });
    this.repaired = new client.Counter({
      name: 'clusterdns_nodecache_rules_added_total', help: 'Rules the agent had to add because they were missing (start-up, or removed by someone else).',
      labelNames: ['mode'], registers: [registry],
    });
    this.lastError = new client.Gauge({
      name: 'clusterdns_nodecache_last_setup_error_timestamp_seconds', help: 'Unix time of the last failed interface or rule setup, 0 if none since start.',
      registers: [registry],
    });
    this.lastError.set(0);
    for (const t of ['interface_add', 'interface_check', 'iptables', 'iptables_lock', 'nftables']) this.setupErrors.inc({ errortype: t }, 0);
  }
}
