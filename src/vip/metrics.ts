import { createServer, type Server } from 'node:http';
import { client, createRegistry } from '../pkg/metrics.js';

/**
 * The VIP programmer's own registry: its process serves no DNS, so no DNS metrics leak into it. The
 * cluster source it starts reports its sync state, restarts and event age here too.
 */
export class VipMetrics {
  readonly registry = createRegistry();
  readonly syncDuration = new client.Histogram({
    name: 'clusterdns_vip_sync_duration_seconds', help: 'Time of one sync (render + iptables-restore + follow-ups) per family and kind.',
    labelNames: ['family', 'sync'], buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    registers: [this.registry],
  });
  readonly rules = new client.Gauge({
    name: 'clusterdns_vip_rules', help: 'Rules in the chains the programmer owns after the last successful sync.',
    labelNames: ['family'], registers: [this.registry],
  });
  readonly lastSync = new client.Gauge({
    name: 'clusterdns_vip_last_sync_timestamp_seconds', help: 'Unix time of the last successful sync.',
    labelNames: ['family'], registers: [this.registry],
  });
  readonly errors = new client.Counter({
    name: 'clusterdns_vip_sync_errors_total', help: 'Failed syncs (the previous rules stay in place) per family and kind.',
    labelNames: ['family', 'sync'], registers: [this.registry],
  });

  /** Serves /metrics on `addr` (`host:port`, `:port` or `[v6]:port`). */
  listen(addr: string): Promise<Server> {
    const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(addr);
    if (!m) return Promise.reject(new Error(`--metrics: '${addr}' is not HOST:PORT`));
    const host = m[1] ?? (m[2] || undefined);
    const server = createServer((req, res) => {
      if (req.url !== '/metrics') {
        res.writeHead(404).end();
        return;
      }
      this.registry.metrics().then((body) => {
        res.writeHead(200, { 'content-type': this.registry.contentType }).end(body);
      }, (e: Error) => res.writeHead(500).end(e.message));
    });
    return new Promise((resolve, reject) => {
      server.once('error', (e) => reject(new Error(`--metrics ${addr}: ${e.message}`)));
      server.listen(Number(m[3]), host, () => resolve(server));
    });
  }
}
