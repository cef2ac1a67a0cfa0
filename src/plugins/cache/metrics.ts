import { client, metricSet } from '../../pkg/metrics.js';

/** CoreDNS's cache metrics, once per server registry so a reload does not reset them. `view` is the block's view name. */
export const cacheMetrics = metricSet((registry) => ({
  entries: new client.Gauge({
    name: 'coredns_cache_entries', help: 'The number of elements in the cache.',
    labelNames: ['server', 'type', 'zones', 'view'], registers: [registry],
  }),
  bytes: new client.Gauge({
    name: 'coredns_cache_size_bytes', help: 'The bytes the elements of the cache take, as counted against max_bytes.',
    labelNames: ['server', 'type', 'zones', 'view'], registers: [registry],
  }),
  hits: new client.Counter({
    name: 'coredns_cache_hits_total', help: 'The count of cache hits.',
    labelNames: ['server', 'type', 'zones', 'view'], registers: [registry],
  }),
  misses: new client.Counter({
    name: 'coredns_cache_misses_total', help: 'The count of cache misses. Deprecated, derive misses from cache hits/requests counters.',
    labelNames: ['server', 'zones', 'view'], registers: [registry],
  }),
  requests: new client.Counter({
    name: 'coredns_cache_requests_total', help: 'The count of cache requests.',
    labelNames: ['server', 'zones', 'view'], registers: [registry],
  }),
  servedStale: new client.Counter({
    name: 'coredns_cache_served_stale_total', help: 'The number of requests served from stale cache entries.',
    labelNames: ['server', 'zones', 'view'], registers: [registry],
  }),
  evictions: new client.Counter({
    name: 'coredns_cache_evictions_total', help: 'The count of cache evictions.',
    labelNames: ['server', 'type', 'zones', 'view'], registers: [registry],
  }),
  prefetch: new client.Counter({
    name: 'coredns_cache_prefetch_total', help: 'The number of times the cache has prefetched a cached item.',
    labelNames: ['server', 'zones', 'view'], registers: [registry],
  }),
}));

export type CacheMetrics = ReturnType<typeof cacheMetrics>;

type Child = { inc(n?: number): void };

/** Label-bound counters of one server, looked up once: prom-client's label hashing is too slow per hit. */
export interface ServerCells {
  requests: Child; misses: Child; stale: Child; prefetch: Child;
  hits: { success: Child; denial: Child };
  evictions: { success: Child; denial: Child };
  entries: { success: { set(n: number): void }; denial: { set(n: number): void } };
  bytes: { success: { set(n: number): void }; denial: { set(n: number): void } };
}

export function serverCells(cacheMetrics: CacheMetrics, server: string, zones: string, view: string): ServerCells {
  const base = { server, zones, view };
  return {
    requests: cacheMetrics.requests.labels(base),
    misses: cacheMetrics.misses.labels(base),
    stale: cacheMetrics.servedStale.labels(base),
    prefetch: cacheMetrics.prefetch.labels(base),
    hits: { success: cacheMetrics.hits.labels({ ...base, type: 'success' }), denial: cacheMetrics.hits.labels({ ...base, type: 'denial' }) },
    evictions: {
      success: cacheMetrics.evictions.labels({ ...base, type: 'success' }),
      denial: cacheMetrics.evictions.labels({ ...base, type: 'denial' }),
    },
    entries: {
      success: cacheMetrics.entries.labels({ ...base, type: 'success' }),
      denial: cacheMetrics.entries.labels({ ...base, type: 'denial' }),
    },
    bytes: {
      success: cacheMetrics.bytes.labels({ ...base, type: 'success' }),
      denial: cacheMetrics.bytes.labels({ ...base, type: 'denial' }),
    },
  };
}
