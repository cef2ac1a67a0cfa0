import { SetupError, type Directive } from '../../corefile/types.js';
import type { PluginDefinition } from '../../server/types.js';
import { nameToWire } from '../../server/wire/name.js';
import { fqdn } from '../../pkg/zone.js';
import { tryParseDuration as parseDuration } from '../../pkg/duration.js';
import { Cache, type CacheConfig } from './cache.js';
import { cacheMetrics } from './metrics.js';

/** CoreDNS shards its cache in 256 and keeps at least 4 per shard: capacities round down to 256s, minimum 1024. */
function capacity(n: number): number {
  return Math.max(4, Math.floor(n / 256)) * 256;
}

/** Parses `cache [TTL] [ZONES...] { ... }` with CoreDNS's defaults (3600/1800 s caps, 5 s floor, 9984 entries). */
export function parseCache(d: Directive, blockZones: string[]): CacheConfig {
  const err = (line: number, msg: string) => new SetupError(d.file, line, 'cache', msg);
  const cfg: CacheConfig = {
    zones: blockZones, successCap: capacity(10_000), denialCap: capacity(10_000),
    successMaxTtl: 3600, successMinTtl: 5, denialMaxTtl: 1800, denialMinTtl: 5, servfailTtl: 5,
    prefetch: 0, prefetchWindowMs: 60_000, prefetchPercent: 10, staleMs: 0, verifyStale: false,
    disableSuccess: [], disableDenial: [], keepTtl: false,
  };
  const zoneArg = (z: string, line: number): string => {
    const name = fqdn(z);
    try { nameToWire(name); } catch (e) { throw err(line, `invalid zone '${z}': ${(e as Error).message}`); }
    return name;
  };
  let args = d.args;
  if (args.length && /^-?\d+$/.test(args[0]!)) {
    const ttl = Number(args[0]);
    if (ttl <= 0) throw err(d.line, `cache TTL can not be zero or negative: ${ttl}`);
    cfg.successMaxTtl = cfg.denialMaxTtl = ttl;
    args = args.slice(1);
  }
  if (args.length) cfg.zones = args.map((z) => zoneArg(z, d.line));
  const int = (text: string | undefined, what: string, line: number): number => {
    if (text === undefined || !/^-?\d+$/.test(text)) throw err(line, `${what}: '${text ?? ''}' is not an integer`);
    return Number(text);
  };
  const seen = new Set<string>();
  for (const c of d.children) {
    const a = c.args;
    if (c.children.length) throw err(c.line, `'${c.name}' takes no block`);
    if (seen.has(c.name) && c.name !== 'disable') throw err(c.line, `'${c.name}' given more than once`);
    seen.add(c.name);
    switch (c.name) {
      case 'success': case 'denial': {
        if (!a.length || a.length > 3) throw err(c.line, `${c.name} needs CAPACITY [TTL] [MINTTL]`);
        const cap = int(a[0], `${c.name} capacity`, c.line);
        if (cap <= 0) throw err(c.line, `${c.name} capacity must be positive: ${cap}`);
        const max = a[1] === undefined ? undefined : int(a[1], `${c.name} TTL`, c.line);
        if (max !== undefined && max <= 0) throw err(c.line, `cache TTL can not be zero or negative: ${max}`);
        const min = a[2] === undefined ? undefined : int(a[2], `${c.name} MINTTL`, c.line);
        if (min !== undefined && min < 0) throw err(c.line, `cache min TTL can not be negative: ${min}`);
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
      case 'prefetch': {
        if (!a.length || a.length > 3) throw err(c.line, 'prefetch needs AMOUNT [DURATION] [PERCENTAGE%]');
        cfg.prefetch = int(a[0], 'prefetch amount', c.line);
        if (cfg.prefetch < 0) throw err(c.line, `prefetch amount should be positive: ${cfg.prefetch}`);
        if (a[1] !== undefined) {
          const ms = parseDuration(a[1]);
          if (ms === undefined) throw err(c.line, `prefetch: invalid duration '${a[1]}'`);
          cfg.prefetchWindowMs = ms;
        }
        if (a[2] !== undefined) {
          const m = /^(\d+)%$/.exec(a[2]);
          if (!m) throw err(c.line, `prefetch: percentage must look like 10%, got '${a[2]}'`);
          const pct = Number(m[1]);
          if (pct < 10 || pct > 90) throw err(c.line, `percentage should fall in range [10, 90]: ${pct}`);
          cfg.prefetchPercent = pct;
        }
        break;
      }
      case 'serve_stale': {
        if (a.length > 2) throw err(c.line, 'serve_stale takes [DURATION] [immediate|verify] (response TTL and failure recheck are not supported)');
        cfg.staleMs = 3_600_000;
        if (a[0] !== undefined) {
          const ms = parseDuration(a[0]);
          if (ms === undefined || ms < 0) throw err(c.line, `serve_stale: invalid duration '${a[0]}'`);
          cfg.staleMs = ms;
        }
        if (a[1] !== undefined) {
          const mode = a[1].toLowerCase();
          if (mode !== 'immediate' && mode !== 'verify') throw err(c.line, `invalid value for serve_stale refresh mode: ${a[1]}`);
          cfg.verifyStale = mode === 'verify';
        }
        break;
      }
      case 'servfail': {
        if (a.length !== 1) throw err(c.line, 'servfail needs exactly one duration');
        const ms = parseDuration(a[0]!);
        if (ms === undefined || ms < 0) throw err(c.line, `servfail: invalid duration '${a[0]}'`);
        // RFC 2308 §7.1: a server failure may not be cached for more than five minutes.
        if (ms > 300_000) throw err(c.line, 'caching SERVFAIL responses over 5 minutes is not permitted');
        cfg.servfailTtl = Math.floor(ms / 1000);
        break;
      }
      case 'disable': {
        const [which, ...zones] = a;
        if (which !== 'success' && which !== 'denial') throw err(c.line, `cache type for disable must be "success" or "denial", got '${which ?? ''}'`);
        const list = zones.length ? zones.map((z) => zoneArg(z, c.line)) : ['.'];
        if (which === 'success') cfg.disableSuccess = list;
        else cfg.disableDenial = list;
        break;
      }
      case 'keepttl':
        if (a.length) throw err(c.line, `keepttl takes no arguments, got '${a.join(' ')}'`);
        cfg.keepTtl = true;
        break;
      default:
        throw err(c.line, `unknown property '${c.name}'`);
    }
  }
  return cfg;
}

export const definition: PluginDefinition = {
  name: 'cache',
  once: true,
  setup(d, ctx) {
    return new Cache(parseCache(d, ctx.zones), cacheMetrics(ctx.shared.registry));
  },
};
