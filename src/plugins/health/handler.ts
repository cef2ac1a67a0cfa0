import { request } from 'node:http';
import { performance } from 'node:perf_hooks';
import { logger } from '../../pkg/log.js';
import { client, metricSet } from '../../pkg/metrics.js';
import { splitHostPort } from '../../server/http.js';
import type { HttpHandler, HttpRoutes, Next, Plugin, Query, Reply } from '../../server/types.js';

const log = logger('plugin/health');

export const healthMetrics = metricSet((registry) => ({
  duration: new client.Histogram({
    name: 'coredns_health_request_duration_seconds', help: 'Histogram of the time (in seconds) each request took.',
    // CoreDNS's SlimTimeBuckets.
    buckets: [0.00025, 0.0025, 0.025, 0.25, 2.5], registers: [registry],
  }),
  failures: new client.Counter({
    name: 'coredns_health_request_failures_total', help: 'The number of times the health check failed.', registers: [registry],
  }),
}));

/** Liveness: 200 "OK" while the process runs, also during lameduck (only /ready fails then). */
export const serveHealth: HttpHandler = (_req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' }).end('OK');
};

/** One self-probe per listen address, whichever block's health started it. */
const probing = new Set<string>();

/**
 * `health` answers no queries; it owns `/health` and, like CoreDNS, probes it once a second: the
 * round-trip time through the event loop is an overload signal (coredns_health_request_duration_seconds).
 */
export class Health implements Plugin {
  readonly name = 'health';
  private timer: NodeJS.Timeout | undefined;

  constructor(readonly address: string, readonly lameduckMs: number, private readonly http: HttpRoutes,
    private readonly metrics: ReturnType<typeof healthMetrics>) {}

  serve(q: Query, next: Next): Reply | Promise<Reply> {
    return next(q);
  }

  start(): void {
    if (probing.has(this.address)) return;
    probing.add(this.address);
    this.timer = setInterval(() => this.probe(), 1000);
    this.timer.unref();
  }

  private probe(): void {
    const { host, port: configured } = splitHostPort(this.address, 8080);
    // Tests listen on port 0: ask the shared listeners for the bound port.
    const bound = (this.http as { port?: (a: string) => number | undefined }).port?.(this.address) ?? configured;
    const hostname = host === '' || host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
    const url = `http://${hostname.includes(':') ? `[${hostname}]` : hostname}:${bound}/health`;
    const start = performance.now();
    const req = request(url, { timeout: 3000 }, (res) => {
      res.resume();
      res.on('end', () => {
        const secs = (performance.now() - start) / 1000;
        this.metrics.duration.observe(secs);
        if (secs > 1) log.warn(`Local health request to "${url}" took more than 1s: ${secs}s`);
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout after 3s')));
    req.on('error', (e) => {
      if (!this.timer) return;
      this.metrics.duration.observe((performance.now() - start) / 1000);
      this.metrics.failures.inc();
      log.warn(`Local health request to "${url}" failed: ${e.message}`);
    });
    req.end();
  }

  close(): void {
    if (!this.timer) return;
    clearInterval(this.timer);
    this.timer = undefined;
    probing.delete(this.address);
  }
}
