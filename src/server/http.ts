import { createServer, type Server } from 'node:http';
import type { HttpHandler, HttpRoutes } from './types.js';
import { logger } from '../pkg/log.js';

const log = logger('http');

/** `:8080` -> all interfaces; `127.0.0.1:18181`; `[::1]:9153`. */
export function splitHostPort(address: string, defaultPort: number): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*))(?::(\d+))?$/.exec(address.trim());
  if (!m) throw new Error(`bad listen address '${address}'`);
  const host = m[1] ?? m[2] ?? '';
  const port = m[3] !== undefined ? Number(m[3]) : defaultPort;
  if (!(port >= 0 && port <= 65535)) throw new Error(`bad port in '${address}'`);
  return { host, port };
}

/**
 * The single optional ADDRESS argument of health, ready and prometheus. Like Go's net.SplitHostPort,
 * which CoreDNS uses, the port is required (`:9153`, `localhost:9153`).
 */
export function listenAddress(d: { args: string[] }, fallback: string, fail: (msg: string) => Error): string {
  if (d.args.length > 1) throw fail(`wrong argument count: want at most one ADDRESS, got '${d.args.join(' ')}'`);
  const address = d.args[0] ?? fallback;
  if (!/:\d+$/.test(address)) throw fail(`address ${address}: missing port in address`);
  try {
    splitHostPort(address, 0);
  } catch (e) {
    throw fail((e as Error).message);
  }
  return address;
}

interface Listener { server: Server; routes: Map<string, { handler: HttpHandler; owner: string }>; bound: Promise<void> }

/**
 * HTTP listeners shared by address across server blocks and reloads (CoreDNS's health/ready/prometheus
 * are process-wide). A reload re-registers routes; listeners whose routes all went away are closed.
 */
export class SharedHttp implements HttpRoutes {
  private listeners = new Map<string, Listener>();
  private staged = new Map<string, Map<string, { handler: HttpHandler; owner: string }>>();

  route(address: string, path: string, handler: HttpHandler, owner: string): void {
    let routes = this.staged.get(address);
    if (!routes) this.staged.set(address, (routes = new Map()));
    if (routes.has(path) && routes.get(path)!.owner !== owner) {
      throw new Error(`${address}${path} is already served by ${routes.get(path)!.owner}`);
    }
    routes.set(path, { handler, owner });
  }

  /** Drops routes registered since the last commit (a reload whose setup failed). */
  discard(): void {
    this.staged = new Map();
  }

  /** Makes the staged routes live: opens new listeners, swaps routes, closes unused ones. */
  async commit(): Promise<void> {
    const staged = this.staged;
    this.staged = new Map();
    for (const [addr, l] of this.listeners) {
      if (!staged.has(addr)) {
        this.listeners.delete(addr);
        await new Promise<void>((r) => l.server.close(() => r()));
      }
    }
    for (const [addr, routes] of staged) {
      const existing = this.listeners.get(addr);
      if (existing) {
        existing.routes = routes;
        continue;
      }
      const l: Listener = { routes, server: createServer(), bound: Promise.resolve() };
      l.server.on('request', (req, res) => {
        const path = (req.url ?? '/').split('?')[0]!;
        const r = l.routes.get(path);
        if (!r) {
          res.writeHead(404).end('404 page not found\n');
          return;
        }
        Promise.resolve(r.handler(req, res)).catch((e: Error) => {
          log.error(`${path}: ${e.message}`);
          if (!res.headersSent) res.writeHead(500);
          res.end();
        });
      });
      const { host, port } = splitHostPort(addr, 0);
      l.bound = new Promise((resolve, reject) => {
        l.server.once('error', reject);
        l.server.listen(port, host || undefined, () => resolve());
      });
      this.listeners.set(addr, l);
      await l.bound;
    }
  }

  /** The bound port of a listen address (tests use `:0`). */
  port(address: string): number | undefined {
    const a = this.listeners.get(address)?.server.address();
    return a && typeof a === 'object' ? a.port : undefined;
  }

  async close(): Promise<void> {
    for (const l of this.listeners.values()) {
      l.server.closeAllConnections();
      await new Promise<void>((r) => l.server.close(() => r()));
    }
    this.listeners.clear();
  }
}
