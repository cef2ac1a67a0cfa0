import type { Directive } from '../../corefile/types.js';
import { SetupArgs } from '../../pkg/args.js';
import type { PluginDefinition } from '../../server/types.js';
import { nameToWire } from '../../server/wire/name.js';
import { Cache, type CacheConfig } from './cache.js';
import { cacheMetrics } from './metrics.js';

/** CoreDNS shards its cache in 256 and keeps at least 4 per shard: capacities round down to 256s, minimum 1024. */
function capacity(n: number): number {
  return Math.max(4, Math.floor(n / 256)) * 256;
}

/** Default max_bytes: room for both default capacities full of typical answers (~1.3 KB each, counted with overhead). */
export const DEFAULT_MAX_BYTES = 32 << 20;

const SIZE_UNITS: Record<string, number> = { '': 1, k: 1 << 10, kib: 1 << 10, m: 1 << 20, mib: 1 << 20, g: 1 << 30, gib: 1 << 30 };

/** `65536`, `512k`, `32M`, `1GiB` (binary units, case ignored), or undefined. */
export function parseSize(text: string): number | undefined {
  const m = /^(\d+)([a-z]*)$/i.exec(text);
  const unit = m && SIZE_UNITS[m[2]!.toLowerCase()];
  return unit ? Number(m[1]) * unit : undefined;
}

/** Parses `cache [TTL] [ZONES...] { ... }` with CoreDNS's defaults (3600/1800 s caps, 5 s floor, 9984 entries). */
export function parseCache(d: Directive, blockZones: string[]): CacheConfig {
  const s = new SetupArgs('cache');
  const cfg: CacheConfig = {
    zones: blockZones, successCap: capacity(10_000), denialCap: capacity(10_000), maxBytes: DEFAULT_MAX_BYTES,
    successMaxTtl: 3600, successMinTtl: 5, denialMaxTtl: 1800, denialMinTtl: 5, servfailTtl: 5,
    prefetch: 0, prefetchWindowMs: 60_000, prefetchPercent: 10, staleMs: 0, verifyStale: false,
    disableSuccess: [], disableDenial: [], keepTtl: false,
  };
  const zoneArgs = (at: Directive, args: string[]): string[] => s.zones(at, args).map((name) => {
    try { nameToWire(name); } catch (e) { throw s.error(at, `invalid zone '${name}': ${(e as Error).message}`); }
    return name;
  });
  let args = d.args;
  if (args.length && /^-?\d+$/.test(args[0]!)) {
    const ttl = Number(args[0]);
    if (ttl <= 0) throw s.error(d, `cache TTL can not be zero or negative: ${ttl}`);
    cfg.successMaxTtl = cfg.denialMaxTtl = ttl;
    args = args.slice(1);
  }
  if (args.length) cfg.zones = zoneArgs(d, args);
  const int = (text: string | undefined, what: string, at: Directive): number => {
    if (text === undefined || !/^-?\d+$/.test(text)) throw s.error(at, `${what}: '${text ?? ''}' is not an integer`);
    return Number(text);
  };
  for (const c of d.children) {
    const a = c.args;
    s.noBlock(c);
    if (c.name !== 'disable') s.once(c);
    switch (c.name) {
      case 'success': case 'denial': {
        if (!a.length || a.length > 3) throw s.error(c, `${c.name} needs CAPACITY [TTL] [MINTTL]`);
        const cap = int(a[0], `${c.name} capacity`, c);
        if (cap <= 0) throw s.error(c, `${c.name} capacity must be positive: ${cap}`);
        const max = a[1] === undefined ? undefined : int(a[1], `${c.name} TTL`, c);
        if (max !== undefined && max <= 0) throw s.error(c, `cache TTL can not be zero or negative: ${max}`);
        const min = a[2] === undefined ? undefined : int(a[2], `${c.name} MINTTL`, c);
        if (min !== undefined && min < 0) throw s.error(c, `cache min TTL can not be negative: ${min}`);
        if (c.name === 'success') {
          cfg.successCap = capacity(cap);
          cfg.successMaxTtl = max ?? cfg.successMaxTtl;
          cfg.successMinTtl = min ?? cfg.successMinTtl;
        } else {
          cfg.denialCap = capacity(cap);
          cfg.denialMaxTtl = max ?? cfg.denialMaxTtl;
          cfg.denialMinTtl = min ?? cfg.denialMinTtl;
        }
        break;
      }
      case 'max_bytes': {
        const text = s.count(c, 1, 1, 'SIZE')[0]!;
        const n = parseSize(text);
        if (!n || !Number.isSafeInteger(n)) throw s.error(c, `max_bytes: '${text}' is not a positive size (bytes, or with k, M, G)`);
        cfg.maxBytes = n;
        break;
      }
      case 'prefetch': {
        if (!a.length || a.length > 3) throw s.error(c, 'prefetch needs AMOUNT [DURATION] [PERCENTAGE%]');
        cfg.prefetch = int(a[0], 'prefetch amount', c);
        if (cfg.prefetch < 0) throw s.error(c, `prefetch amount should be positive: ${cfg.prefetch}`);
        if (a[1] !== undefined) {
          cfg.prefetchWindowMs = s.duration(c, a[1]);
        }
        if (a[2] !== undefined) {
          const m = /^(\d+)%$/.exec(a[2]);
          if (!m) throw s.error(c, `prefetch: percentage must look like 10%, got '${a[2]}'`);
          const pct = Number(m[1]);
          if (pct < 10 || pct > 90) throw s.error(c, `percentage should fall in range [10, 90]: ${pct}`);
          cfg.prefetchPercent = pct;
        }
        break;
      }
      case 'serve_stale': {
        if (a.length > 2) throw s.error(c, 'serve_stale takes [DURATION] [immediate|verify] (response TTL and failure recheck are not supported)');
        cfg.staleMs = 3_600_000;
        if (a[0] !== undefined) {
          cfg.staleMs = s.duration(c, a[0]);
        }
        if (a[1] !== undefined) {
          const mode = a[1].toLowerCase();
          if (mode !== 'immediate' && mode !== 'verify') throw s.error(c, `invalid value for serve_stale refresh mode: ${a[1]}`);
          cfg.verifyStale = mode === 'verify';
        }
        break;
      }
      case 'servfail': {
        const ms = s.duration(c, s.count(c, 1, 1, 'DURATION')[0]!);
        // RFC 2308 §7.1: a server failure may not be cached for more than five minutes.
        if (ms > 300_000) throw s.error(c, 'caching SERVFAIL responses over 5 minutes is not permitted');
        cfg.servfailTtl = Math.floor(ms / 1000);
        break;
      }
      case 'disable': {
        const [which, ...zones] = a;
        if (which !== 'success' && which !== 'denial') throw s.error(c, `cache type for disable must be "success" or "denial", got '${which ?? ''}'`);
        const list = zones.length ? zoneArgs(c, zones) : ['.'];
        if (which === 'success') cfg.disableSuccess = list;
        else cfg.disableDenial = list;
        break;
      }
      case 'keepttl':
        s.count(c, 0);
        cfg.keepTtl = true;
        break;
      default:
        throw s.error(c, `unknown property '${c.name}'`);
    }
  }
  return cfg;
}

export const definition: PluginDefinition = {
  name: 'cache',
  once: true,
  setup(d, ctx) {
    return new Cache(parseCache(d, ctx.zones), cacheMetrics(ctx.shared.registry), ctx.view);
  },
};
