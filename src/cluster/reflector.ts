import type { Logger } from '../pkg/log.js';
import { client, metricSet, type Registry } from '../pkg/metrics.js';
import { ApiError, isGone, type ApiClient, type WatchEvent } from './api-client.js';
import { ConvertError } from './convert.js';
import type { ClusterStore } from './store.js';

export type ResourceName = 'services' | 'endpointslices' | 'namespaces' | 'pods';

export interface ResourceStatus {
  resource: ResourceName;
  /** The first LIST completed (stays true through later outages). */
  synced: boolean;
  state: 'listing' | 'watching' | 'backoff' | 'stopped';
  restarts: number;
  /** ms since the last watch event, bookmark or LIST; null before the first. */
  lastEventAgeMs: number | null;
  lastError?: string;
}

/* ------------------------------------------------------------------------------------------ metrics */

/** The source's health metrics, in the registry of whoever started it; one set per registry. */
const reflectorMetrics = metricSet((registry) => {
  /** Reflectors running against this registry, read when the event age is scraped. */
  const live = new Set<Reflector<unknown>>();
  return {
    live,
    syncState: new client.Gauge({
      name: 'clusterdns_kubernetes_sync_state',
      help: 'Per resource: 0 = first LIST not done yet, 1 = synced and watching, 2 = synced but the API is failing (serving last good data).',
      labelNames: ['resource'], registers: [registry],
    }),
    restarts: new client.Counter({
      name: 'clusterdns_kubernetes_restarts_total',
      help: 'List/watch restarts per resource and reason (error, gone = 410 relist, watchdog = silent watch).',
      labelNames: ['resource', 'reason'], registers: [registry],
    }),
    lastEventAge: new client.Gauge({
      name: 'clusterdns_kubernetes_last_event_age_seconds',
      help: 'Seconds since the last watch event, bookmark or LIST per resource.',
      labelNames: ['resource'], registers: [registry],
      collect() {
        this.reset();
        for (const r of live) {
          const age = r.lastEventAgeMs();
          if (age !== null) this.set({ resource: r.resource }, age / 1000);
        }
      },
    }),
  };
});

type ReflectorMetrics = ReturnType<typeof reflectorMetrics>;

/* ------------------------------------------------------------------------------------------ resources */

export interface ObjectRef {
  namespace: string;
  name: string;
}

/** How one resource maps onto the store. `convert` returns null for objects DNS never sees. */
export interface ResourceKind<T> {
  resource: ResourceName;
  path: string;
  labelSelector?: string;
  convert(obj: unknown): T | null;
  ref(o: T): ObjectRef;
  current(store: ClusterStore, ref: ObjectRef): T | undefined;
  upsert(store: ClusterStore, o: T): void;
  remove(store: ClusterStore, ref: ObjectRef): void;
  replace(store: ClusterStore, items: T[]): void;
  /** Called after a watch event was applied. */
  applied?(store: ClusterStore, obj: Record<string, unknown>): void;
}

export function metadataOf(obj: unknown): { namespace: string; name: string; labels: Record<string, unknown>; annotations: Record<string, unknown> } {
  const md = (obj as { metadata?: Record<string, unknown> } | null)?.metadata ?? {};
  return {
    namespace: typeof md.namespace === 'string' ? md.namespace : '',
    name: typeof md.name === 'string' ? md.name : '',
    labels: (md.labels ?? {}) as Record<string, unknown>,
    annotations: (md.annotations ?? {}) as Record<string, unknown>,
  };
}

/* ------------------------------------------------------------------------------------------ reflector */

/** Timings the Corefile cannot set; tests shorten them. */
export interface ReflectorOptions {
  /** A watch silent for longer than this is restarted (default 5 min). */
  watchdogMs: number;
  /** Restart delay after an error: doubles from initialMs up to maxMs, with jitter (default 800 ms … 30 s). */
  backoff: { initialMs: number; maxMs: number };
  /** Items per LIST page (default 250). */
  pageSize: number;
}

export const REFLECTOR_DEFAULTS: Readonly<ReflectorOptions> = Object.freeze({
  watchdogMs: 300_000,
  backoff: { initialMs: 800, maxMs: 30_000 },
  // Half client-go's pager size: three resources list at once, and each page is held as text and as
  // parsed JSON until converted; 500 raised the RSS peak of a 10k-service sync by ~13 MB for no speed.
  pageSize: 250,
});

/** A watch accepted and not failed within this long counts as healthy again. */
const WATCH_SETTLE_MS = 1000;

class WatchdogAbort extends Error {}
class StopAbort extends Error {}

/**
 * One resource's list+watch loop (client-go's Reflector): LIST in pages, replace that kind in the store,
 * WATCH from the list's resourceVersion, re-watch when the server closes the stream, relist on 410,
 * back off on anything else. One loop per resource, so a restart can never run twice at once.
 */
export class Reflector<T> {
  readonly resource: ResourceName;
  private rv = '';
  private syncedFlag = false;
  private state: ResourceStatus['state'] = 'listing';
  /** Logged health: changes are logged once, retries are not. */
  private health: 'starting' | 'ok' | 'failing' = 'starting';
  private failures = 0;
  private restarts = 0;
  private lastEvent: number | null = null;
  private lastError?: string;
  private readonly stopCtl = new AbortController();
  private watchCtl?: AbortController;
  /** Set while a watch is accepted; one that stays open a moment counts as recovered (an idle cluster sends no events). */
  private watchOpenedAt: number | null = null;
  private watchdog?: NodeJS.Timeout;
  private loop?: Promise<void>;
  /** Keys of objects that failed to convert: logged once each, until they convert again. */
  private readonly bad = new Set<string>();
  private resolveSynced!: () => void;
  readonly firstSync = new Promise<void>((r) => (this.resolveSynced = r));

  private readonly metrics: ReflectorMetrics;

  constructor(private readonly kind: ResourceKind<T>, private readonly api: ApiClient,
    private readonly store: ClusterStore, private readonly opts: ReflectorOptions,
    private readonly ctx: { log: Logger; registry: Registry }, private readonly onSynced: () => void) {
    this.resource = kind.resource;
    this.metrics = reflectorMetrics(ctx.registry);
  }

  get synced(): boolean {
    return this.syncedFlag;
  }

  lastEventAgeMs(): number | null {
    return this.lastEvent === null ? null : Date.now() - this.lastEvent;
  }

  status(): ResourceStatus {
    return {
      resource: this.resource, synced: this.syncedFlag, state: this.state, restarts: this.restarts,
      lastEventAgeMs: this.lastEventAgeMs(), ...(this.lastError ? { lastError: this.lastError } : {}),
    };
  }

  start(): void {
    this.metrics.live.add(this as Reflector<unknown>);
    this.publish();
    const period = Math.max(50, Math.min(1000, this.opts.watchdogMs / 4));
    this.watchdog = setInterval(() => this.checkWatchdog(), period);
    this.watchdog.unref();
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopCtl.abort(new StopAbort('stopped'));
    clearInterval(this.watchdog);
    await this.loop;
    this.state = 'stopped';
    this.metrics.live.delete(this as Reflector<unknown>);
  }

  private get stopped(): boolean {
    return this.stopCtl.signal.aborted;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        if (!this.rv) await this.list();
        await this.watch();
      } catch (err) {
        if (this.stopped) break;
        await this.recover(err);
      }
    }
  }

  /** Decides how to go on after a failed list or watch; never touches the store. */
  private async recover(err: unknown): Promise<void> {
    if (err instanceof WatchdogAbort) {
      this.count('watchdog');
      this.setHealth('failing', `watch silent for more than ${this.opts.watchdogMs} ms, restarting it`);
      return;
    }
    if (isGone(err)) {
      this.rv = '';
      this.count('gone');
      // A relist is the cure; only a server answering 410 again and again gets a backoff.
      if (++this.failures <= 2) return;
    } else {
      this.failures++;
      this.count('error');
    }
    this.lastError = describe(err);
    this.setHealth('failing', `${this.lastError}; retrying with backoff (serving the last good data)`);
    this.state = 'backoff';
    const step = Math.min(this.opts.backoff.maxMs, this.opts.backoff.initialMs * 2 ** Math.min(this.failures - 1, 30));
    // Equal jitter: spreads the replicas' retries without ever exceeding the cap.
    await sleepUnlessStopped(step / 2 + Math.random() * (step / 2), this.stopCtl.signal);
  }

  private async list(): Promise<void> {
    this.state = 'listing';
    const items: T[] = [];
    let cont: string | undefined;
    let rv = '';
    do {
      const page = await this.api.list(this.kind.path, {
        labelSelector: this.kind.labelSelector, limit: String(this.opts.pageSize), continue: cont,
      }, this.stopCtl.signal);
      for (const raw of page.items) {
        const o = this.convert(raw, true);
        if (o) items.push(o);
      }
      cont = page.continueToken;
      rv = page.resourceVersion;
    } while (cont);
    this.kind.replace(this.store, items);
    this.rv = rv;
    this.lastEvent = Date.now();
    this.failures = 0;
    if (!this.syncedFlag) {
      this.syncedFlag = true;
      this.resolveSynced();
      this.onSynced();
    }
    this.setHealth('ok', `listed ${items.length} ${this.resource}`);
  }

  private async watch(): Promise<void> {
    this.watchCtl = new AbortController();
    const signal = AbortSignal.any([this.stopCtl.signal, this.watchCtl.signal]);
    const opened = Date.now();
    let events = 0;
    this.state = 'watching';
    this.lastEvent = Date.now();
    const timeoutSeconds = Math.max(1, Math.floor((this.opts.watchdogMs / 1000) * (0.5 + Math.random() * 0.4)));
    try {
      await this.api.watch(this.kind.path, {
        resourceVersion: this.rv, allowWatchBookmarks: 'true', timeoutSeconds: String(timeoutSeconds),
        labelSelector: this.kind.labelSelector,
      }, () => {
        this.lastEvent = Date.now();
        this.watchOpenedAt = Date.now();
      }, (ev) => {
        events++;
        this.handle(ev);
        if (ev.type !== 'ERROR') this.setHealth('ok', 'watch re-established');
      }, signal);
    } finally {
      this.watchCtl = undefined;
      this.watchOpenedAt = null;
    }
    // The server ended the watch (its timeout): go on from our resourceVersion. One that keeps closing
    // at once without delivering anything is treated as failing, or we would spin.
    if (events === 0 && Date.now() - opened < 500) throw new ApiError('watch closed by the server right after it opened');
    this.failures = 0;
  }

  private handle(ev: WatchEvent): void {
    this.lastEvent = Date.now();
    const obj = ev.object ?? {};
    if (ev.type === 'ERROR') {
      const st = obj as { code?: number; reason?: string; message?: string };
      throw new ApiError(`watch error event: ${st.code ?? '?'} ${st.reason ?? ''} ${st.message ?? ''}`.trim(), st.code, st.reason);
    }
    const rv = (obj.metadata as { resourceVersion?: unknown } | undefined)?.resourceVersion;
    if (ev.type === 'ADDED' || ev.type === 'MODIFIED') {
      const o = this.convert(obj, false);
      if (o) this.kind.upsert(this.store, o);
      else if (o === null) this.removeRaw(obj);
      this.kind.applied?.(this.store, obj);
    } else if (ev.type === 'DELETED') {
      this.removeRaw(obj);
      this.kind.applied?.(this.store, obj);
    } else if (ev.type !== 'BOOKMARK') {
      return;
    }
    if (typeof rv === 'string' && rv) this.rv = rv;
  }

  private removeRaw(obj: unknown): void {
    const md = metadataOf(obj);
    this.kind.remove(this.store, { namespace: md.namespace, name: md.name });
  }

  /**
   * null: the object is out of scope (or a pod DNS ignores), so it must not be in the store.
   * undefined: it is broken; the store keeps what it had (bad input never loses the last good data).
   * In a LIST, a broken object's previous good version is carried over into the new listing.
   */
  private convert(raw: unknown, listing: boolean): T | null | undefined {
    const md = metadataOf(raw);
    const key = md.namespace ? `${md.namespace}/${md.name}` : md.name;
    try {
      const o = this.kind.convert(raw);
      this.bad.delete(key);
      return o;
    } catch (err) {
      if (!(err instanceof ConvertError)) throw err;
      if (!this.bad.has(key)) {
        this.bad.add(key);
        this.ctx.log.warn(`ignoring invalid ${this.resource} object (keeping its last good version): ${err.message}`);
      }
      return listing ? this.kind.current(this.store, md) : undefined;
    }
  }

  private checkWatchdog(): void {
    if (this.state !== 'watching' || !this.watchCtl || this.lastEvent === null) return;
    if (Date.now() - this.lastEvent > this.opts.watchdogMs) this.watchCtl.abort(new WatchdogAbort('watchdog'));
    else if (this.watchOpenedAt !== null && Date.now() - this.watchOpenedAt >= WATCH_SETTLE_MS) this.setHealth('ok', 'watch re-established');
  }

  private count(reason: 'error' | 'gone' | 'watchdog'): void {
    this.restarts++;
    this.metrics.restarts.inc({ resource: this.resource, reason });
  }

  private setHealth(h: 'ok' | 'failing', msg: string): void {
    if (h === this.health) return;
    const prev = this.health;
    this.health = h;
    this.publish();
    if (h === 'failing') this.ctx.log.warn(`${this.resource}: ${msg}`);
    else if (prev === 'failing') this.ctx.log.info(`${this.resource}: recovered: ${msg}`);
  }

  private publish(): void {
    this.metrics.syncState.set({ resource: this.resource }, !this.syncedFlag ? 0 : this.health === 'failing' ? 2 : 1);
  }
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: string }).code;
    return code && !err.message.includes(code) ? `${err.message} (${code})` : err.message;
  }
  return String(err);
}

function sleepUnlessStopped(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
