import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Registry } from '../../pkg/metrics.js';
import type { Plugin, Query, Reply } from '../../server/types.js';
import { metricType } from './qtype.js';
import { rcodeName } from '../../server/wire/constants.js';
import type { ViewSeries } from './recorder.js';

/** Records CoreDNS's per-query metrics for its block from what the server sent; `/metrics` serves the server's registry. */
export class Prometheus implements Plugin {
  readonly name = 'prometheus';

  constructor(readonly address: string, private readonly recorder: ViewSeries) {}

  sent(q: Query, wire: Buffer, reply: Reply): void {
    const s = this.recorder.seriesFor(q.server, q.zone);
    const type = metricType(q.type);
    const tcp = q.proto === 'tcp';
    if (q.edns?.do) s.dnssecOk();
    s.request(type, tcp, q.family);
    s.duration(type, (performance.now() - q.start) / 1000);
    s.sizes(tcp, q.raw.length, wire.length);
    s.response(reply.plugin ?? '', rcodeName(reply.rcode));
  }
}

export function metricsHandler(registry: Registry): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  return async (_req, res) => {
    const body = await registry.metrics();
    res.writeHead(200, { 'Content-Type': registry.contentType }).end(body);
  };
}
