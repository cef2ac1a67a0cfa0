import { logger } from '../../pkg/log.js';
import type { HttpHandler, Next, Plugin, Query, Reply, SharedServices } from '../../server/types.js';

const log = logger('plugin/ready');

/**
 * Readiness: 200 "OK" once every plugin with a ready() reports ready, else 503 with their names
 * (sorted, comma-separated, as CoreDNS prints them); 503 "Shutting down" from SIGTERM on, so
 * endpoints drain during lameduck.
 */
export class Ready implements Plugin {
  readonly name = 'ready';
  /** until-ready: a plugin that was ready once is not asked again (CoreDNS drops it from its list). */
  private readonly seenReady = new Set<string>();

  constructor(readonly address: string, private readonly continuously: boolean, private readonly shared: SharedServices) {}

  serve(q: Query, next: Next): Reply | Promise<Reply> {
    return next(q);
  }

  notReady(): string[] {
    const waiting = new Set<string>();
    const readyNow = new Set<string>();
    for (const { name, ready } of this.shared.readiness()) {
      if (!this.continuously && this.seenReady.has(name)) continue;
      if (ready) readyNow.add(name);
      else waiting.add(name);
    }
    // Several instances share a name (one per block): the name is ready only when all of them are.
    if (!this.continuously) for (const n of readyNow) if (!waiting.has(n)) this.seenReady.add(n);
    return [...waiting].sort();
  }

  readonly handle: HttpHandler = (_req, res) => {
    const headers = { 'Content-Type': 'text/plain; charset=utf-8' };
    if (this.shared.shuttingDown()) {
      res.writeHead(503, headers).end('Shutting down');
      return;
    }
    const waiting = this.notReady();
    if (!waiting.length) {
      res.writeHead(200, headers).end('OK');
      return;
    }
    const list = waiting.join(',');
    log.info(`Plugins not ready: "${list}"`);
    res.writeHead(503, headers).end(list);
  };
}
