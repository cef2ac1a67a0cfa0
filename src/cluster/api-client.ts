import http from 'node:http';
import https from 'node:https';
import type { ApiAccess } from './api-access.js';

/**
 * LIST and WATCH requests against the API server. Authentication, TLS and proxies come from ApiAccess
 * (KubeConfig.applyToHTTPSOptions, the path the client library's own Watch takes); the requests are ours so
 * that nothing keeps whole API objects (the library's ListWatch caches every object it saw), pages are
 * parsed one at a time, and a hung request can always be aborted (the library's Watch only hands out its
 * AbortController once response headers arrived).
 */

export class ApiError extends Error {
  constructor(message: string, readonly statusCode?: number, readonly reason?: string) {
    super(message);
  }
}

/** 410 Gone / Expired: the resource version we hold is compacted away; only a relist helps. */
export const isGone = (err: unknown): boolean => err instanceof ApiError && err.statusCode === 410;

export interface WatchEvent {
  type: string;
  object: Record<string, unknown>;
}

export interface ListPage {
  items: unknown[];
  resourceVersion: string;
  continueToken?: string;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
    const onAbort = () => { clearTimeout(t); reject(signal!.reason); };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** client-go's flowcontrol token bucket: `burst` requests at once, refilled at `qps` per second. */
export class TokenBucket {
  private tokens: number;
  private last = performance.now();
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly qps: number, private readonly burst: number) {
    this.tokens = burst;
  }

  /** Waits for a token; callers are served in arrival order. */
  take(signal?: AbortSignal): Promise<void> {
    const turn = this.queue.then(async () => {
      const now = performance.now();
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.qps);
      this.last = now;
      if (this.tokens < 1) {
        await sleep(((1 - this.tokens) / this.qps) * 1000, signal);
        this.tokens = 1;
        this.last = performance.now();
      }
      this.tokens -= 1;
    });
    this.queue = turn.catch(() => undefined);
    return turn;
  }
}

class Semaphore {
  private free: number;
  private readonly waiting: (() => void)[] = [];

  constructor(n: number) {
    this.free = n;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    }
  }
}

export interface ApiClientLimits {
  qps?: number;
  burst?: number;
  maxInflight?: number;
  /** Bound for one LIST page (headers and body). */
  listTimeoutMs?: number;
}

const MAX_ERROR_BODY = 64 * 1024;

export class ApiClient {
  private readonly bucket?: TokenBucket;
  private readonly inflight?: Semaphore;
  private readonly listTimeoutMs: number;

  constructor(private readonly access: ApiAccess, limits: ApiClientLimits = {}) {
    if (limits.qps && limits.qps > 0) this.bucket = new TokenBucket(limits.qps, Math.max(1, limits.burst ?? Math.ceil(limits.qps)));
    if (limits.maxInflight && limits.maxInflight > 0) this.inflight = new Semaphore(limits.maxInflight);
    this.listTimeoutMs = limits.listTimeoutMs ?? 60_000;
  }

  get server(): string {
    return this.access.server;
  }

  /** One page of a LIST (`limit`/`continue` in `query`). */
  async list(path: string, query: Record<string, string | undefined>, signal: AbortSignal): Promise<ListPage> {
    const run = async (): Promise<ListPage> => {
      const res = await this.request(path, query, AbortSignal.any([signal, AbortSignal.timeout(this.listTimeoutMs)]));
      const body = await readBody(res, Infinity);
      if (res.statusCode !== 200) throw statusError(`LIST ${path}`, res.statusCode, body);
      let parsed: { items?: unknown; metadata?: { resourceVersion?: unknown; continue?: unknown } };
      try {
        parsed = JSON.parse(body);
      } catch (err) {
        throw new ApiError(`LIST ${path}: response is not JSON: ${(err as Error).message}`);
      }
      const items = Array.isArray(parsed.items) ? parsed.items : [];
      const rv = parsed.metadata?.resourceVersion;
      const cont = parsed.metadata?.continue;
      return {
        items,
        resourceVersion: typeof rv === 'string' ? rv : '',
        continueToken: typeof cont === 'string' && cont ? cont : undefined,
      };
    };
    return this.inflight ? this.inflight.run(run) : run();
  }

  /**
   * Streams watch events to `onEvent` until the server ends the stream (resolves) or the connection
   * fails (rejects). `onOpen` runs once the server accepted the watch. Aborting `signal` tears the
   * socket down and rejects with the signal's reason.
   */
  async watch(path: string, query: Record<string, string | undefined>, onOpen: () => void,
    onEvent: (e: WatchEvent) => void, signal: AbortSignal): Promise<void> {
    const res = await this.request(path, { ...query, watch: 'true' }, signal);
    if (res.statusCode !== 200) throw statusError(`WATCH ${path}`, res.statusCode, await readBody(res, MAX_ERROR_BODY));
    onOpen();
    res.setEncoding('utf8');
    await new Promise<void>((resolve, reject) => {
      let buf = '';
      let failed: unknown;
      res.on('data', (chunk: string) => {
        if (failed) return;
        buf += chunk;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (!line) continue;
          let ev: WatchEvent;
          try {
            ev = JSON.parse(line);
          } catch {
            failed = new ApiError(`WATCH ${path}: undecodable event: ${line.slice(0, 200)}`);
            res.destroy();
            return;
          }
          try {
            onEvent(ev);
          } catch (err) {
            failed = err;
            res.destroy();
            return;
          }
        }
      });
      res.on('end', () => (failed ? reject(failed) : resolve()));
      res.on('close', () => {
        if (failed) reject(failed);
        else if (signal.aborted) reject(signal.reason);
        else if (!res.complete) reject(new ApiError(`WATCH ${path}: connection closed mid-stream`));
        else resolve();
      });
      res.on('error', (err) => reject(failed ?? (signal.aborted ? signal.reason : err)));
    });
  }

  private async request(path: string, query: Record<string, string | undefined>, signal: AbortSignal): Promise<http.IncomingMessage> {
    await this.bucket?.take(signal);
    const url = new URL(this.access.server.replace(/\/+$/, '') + path);
    for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, v);
    const opts: https.RequestOptions = {};
    await this.access.applyToHTTPSOptions(opts);
    const mod = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = mod.request(url, {
        method: 'GET',
        headers: { ...opts.headers, accept: 'application/json' },
        agent: opts.agent,
        auth: opts.auth,
        signal,
      }, resolve);
      req.on('error', (err) => reject(signal.aborted ? signal.reason : err));
      req.end();
    });
  }
}

/**
 * The body as text, at most `max` characters kept. Decoded chunk by chunk into one string: collecting
 * Buffers and concatenating them would hold the page twice more outside the V8 heap, per listing
 * resource, at the moment the parsed page is largest.
 */
function readBody(res: http.IncomingMessage, max: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (c: string) => {
      if (body.length < max) body += c;
    });
    res.on('end', () => resolve(body));
    res.on('error', reject);
    res.on('close', () => { if (!res.complete) reject(new ApiError('connection closed before the response was complete')); });
  });
}

/** Turns a non-200 answer (usually a metav1.Status) into an ApiError carrying its code and reason. */
function statusError(what: string, code: number | undefined, body: string): ApiError {
  let reason: string | undefined;
  let message = body.slice(0, 300);
  try {
    const st = JSON.parse(body) as { reason?: string; message?: string };
    reason = st.reason;
    if (st.message) message = st.message;
  } catch {
    // not a Status object: keep the raw text
  }
  return new ApiError(`${what}: HTTP ${code}${reason ? ' ' + reason : ''}: ${message}`, code, reason);
}
