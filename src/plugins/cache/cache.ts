import { performance } from 'node:perf_hooks';
import { LRUCache } from 'lru-cache';
import { FLAG, HEADER_SIZE, RCODE, TYPE } from '../../server/wire/constants.js';
import { decodeMessage, encodeMessage } from '../../server/wire/message.js';
import { canonicalWire } from '../../server/respond.js';
import { isSubdomain } from '../../pkg/zone.js';
import type { Next, Plugin, Query, Reply } from '../../server/types.js';
import { serverCells, type CacheMetrics, type ServerCells } from './metrics.js';
import { inspect, type Kind, type TtlRule } from './wire.js';

export interface CacheConfig {
  zones: string[];
  /** Entries per cache (success and denial each). */
  successCap: number;
  denialCap: number;
  /** Budget for both caches together, entries counted by entrySize(). */
  maxBytes: number;
  /** Seconds. */
  successMaxTtl: number;
  successMinTtl: number;
  denialMaxTtl: number;
  denialMinTtl: number;
  /** Seconds a SERVFAIL/NOTIMP is cached; 0 = never. */
  servfailTtl: number;
  /** 0 = off; else hits without a gap of `prefetchWindowMs` before the entry is refreshed early. */
  prefetch: number;
  prefetchWindowMs: number;
  prefetchPercent: number;
  /** 0 = off; how long past expiry an entry may still be served. */
  staleMs: number;
  verifyStale: boolean;
  disableSuccess: string[];
  disableDenial: string[];
  keepTtl: boolean;
}

interface Entry {
  /** The response as first answered, TTLs flattened to `ttl`, no OPT. */
  wire: Buffer;
  ttlOffsets: number[];
  rcode: number;
  kind: Kind;
  /** performance.now() when stored. */
  stored: number;
  ttl: number;
  cells: ServerCells;
  /** Prefetch popularity (CoreDNS freq): hits without a gap longer than the prefetch window. */
  hits: number;
  lastHit: number;
  refreshing: boolean;
}

/**
 * What an entry costs besides its bytes on the wire: the Entry object, the LRU's slots and the Buffer
 * object around the wire (about 0.7 KB of heap and 0.3 KB outside it, measured on Node 26).
 */
const ENTRY_OVERHEAD = 1024;

/** The bytes an entry is counted for against max_bytes: what it keeps alive, not only its answer. */
function entrySize(key: string, e: Entry): number {
  return ENTRY_OVERHEAD + key.length + e.wire.length + 8 * e.ttlOffsets.length;
}

/**
 * A copy in memory of its own for an entry: a slice of Node's shared 8 KB buffer pool would keep the whole
 * pool chunk alive for as long as the entry lives, several times its size (and its byte count a lie).
 */
function ownCopy(b: Buffer): Buffer {
  const out = Buffer.allocUnsafeSlow(b.length);
  b.copy(out);
  return out;
}

/** CoreDNS's cache key: qname lower-case, type, class, DO, CD. */
function cacheKey(q: Query): string {
  return `${q.lname}|${q.type}|${q.class}|${q.edns?.do ? '1' : '0'}${q.cd ? '1' : '0'}`;
}

/**
 * Front cache of encoded answers, keyed like CoreDNS by (qname lower-case, type, class, DO, CD). A hit copies
 * the stored bytes and rewrites the TTL fields in place: no decode, no encode, no allocation besides the copy.
 * Besides CoreDNS's entry capacities, both caches together stay within a byte budget: random names with
 * large answers (fetched over TCP, up to 64 KB each) would otherwise fill 9984 entries with half a gigabyte.
 */
export class Cache implements Plugin {
  readonly name = 'cache';
  private readonly success: LRUCache<string, Entry>;
  private readonly denial: LRUCache<string, Entry>;
  private readonly zonesLabel: string;
  private readonly cells = new Map<string, ServerCells>();
  /** Queries of a prefetch or stale refresh in flight, and what their answer stored (null: nothing). */
  private readonly refreshes = new WeakMap<Query, { prev?: Entry; stored: Reply | null }>();

  constructor(readonly config: CacheConfig, private readonly metrics: CacheMetrics, private readonly view = '') {
    this.zonesLabel = config.zones.join(',');
    const evicted = (type: 'success' | 'denial') => (e: Entry, _k: string, reason: LRUCache.DisposeReason) => {
      if (reason === 'evict') e.cells.evictions[type].inc();
    };
    // The LRU's own TTL is expiry plus the serve_stale window: beyond that an entry is useless and freed.
    this.success = new LRUCache({ max: config.successCap, maxSize: config.maxBytes, dispose: evicted('success') });
    this.denial = new LRUCache({ max: config.denialCap, maxSize: config.maxBytes, dispose: evicted('denial') });
  }

  private cellsFor(server: string): ServerCells {
    let c = this.cells.get(server);
    if (!c) this.cells.set(server, (c = serverCells(this.metrics, server, this.zonesLabel, this.view)));
    return c;
  }

  serve(q: Query, next: Next): Reply | Promise<Reply> {
    if (!this.config.zones.some((z) => isSubdomain(q.lname, z))) return next(q);
    const cells = this.cellsFor(q.server);
    cells.requests.inc();
    const key = cacheKey(q);
    let e = this.denial.get(key);
    // A cached SERVFAIL must not hide a still valid positive answer (CoreDNS does the same).
    if (!e || e.kind === 'servfail') e = this.success.get(key) ?? e;
    if (!e) {
      cells.misses.inc();
      // Stored by answered() on the way back.
      return next(q);
    }
    cells.hits[e.kind === 'success' ? 'success' : 'denial'].inc();
    const now = performance.now();
    const age = Math.floor((now - e.stored) / 1000);
    const remaining = e.ttl - age;
    if (remaining > 0) {
      if (this.config.prefetch > 0 && this.popular(e, now) && remaining <= Math.ceil(this.config.prefetchPercent / 100 * e.ttl)) {
        this.refreshInBackground(q, next, key, e);
      }
      return this.answer(q, e, this.config.keepTtl ? e.ttl : remaining);
    }
    const stale = e;
    const serveStale = () => {
      cells.stale.inc();
      return this.answer(q, stale, 0);
    };
    if (this.config.verifyStale) return this.refresh(q, next).then((r) => r ?? serveStale(), serveStale);
    this.refreshInBackground(q, next, key, e);
    return serveStale();
  }

  private popular(e: Entry, now: number): boolean {
    e.hits = now - e.lastHit > this.config.prefetchWindowMs ? 1 : e.hits + 1;
    e.lastHit = now;
    return e.hits >= this.config.prefetch;
  }

  /** A copy of the stored answer with every TTL set to `ttl` (CoreDNS serves one TTL for the whole message). */
  private answer(q: Query, e: Entry, ttl: number): Reply {
    let out: Buffer = Buffer.allocUnsafe(e.wire.length);
    e.wire.copy(out);
    for (const off of e.ttlOffsets) out.writeUInt32BE(ttl, off);
    // CoreDNS sets AA on every cached answer: some old glibc stubs drop non-authoritative replies entirely.
    out[2] |= FLAG.AA >> 8;
    if (!q.edns?.do && !(q.raw[3]! & FLAG.AD)) out[3] &= ~FLAG.AD;
    if (out.length < q.questionEnd || out.compare(q.raw, HEADER_SIZE, q.questionEnd, HEADER_SIZE, q.questionEnd) !== 0) out = respelled(out, q);
    return { rcode: e.rcode, wire: out, plugin: this.name };
  }

  /** Prefetch, or refresh of a stale entry (then only a good answer replaces it); one at a time per entry. */
  private refreshInBackground(q: Query, next: Next, key: string, e: Entry): void {
    if (e.refreshing) return;
    e.refreshing = true;
    e.cells.prefetch.inc();
    // Like CoreDNS's prefetch writer, refresh as TCP so the upstream answer is never truncated.
    this.refresh({ ...q, proto: 'tcp' }, next, e).then(
      () => { e.refreshing = false; },
      () => { e.refreshing = false; },
    );
  }

  /** Stores what the rest of the chain answered for a miss, or for a refresh under the refresh's rules. */
  answered(q: Query, reply: Reply): Reply {
    const job = this.refreshes.get(q);
    if (job) {
      this.refreshes.delete(q);
      job.stored = this.store(q, reply, true, job.prev);
      return job.stored ?? reply;
    }
    if (!this.config.zones.some((z) => isSubdomain(q.lname, z))) return reply;
    return this.store(q, reply, false)!;
  }

  /**
   * Asks the rest of the chain again (prefetch, stale refresh): only NOERROR and NXDOMAIN replace an entry
   * (RFC 8767 §4); anything else resolves to null.
   */
  private refresh(q: Query, next: Next, prev?: Entry): Promise<Reply | null> {
    const job: { prev?: Entry; stored: Reply | null } = { prev, stored: null };
    this.refreshes.set(q, job);
    try {
      return Promise.resolve(next(q)).then(() => job.stored, (e: unknown) => {
        this.refreshes.delete(q);
        throw e;
      });
    } catch (e) {
      this.refreshes.delete(q);
      return Promise.reject(e as Error);
    }
  }

  /**
   * Every reply passing on gets one capped TTL on all its records (CoreDNS's ResponseWriter does this
   * before deciding whether to store, so even truncated answers, other errors and disabled zones are capped).
   */
  private store(q: Query, reply: Reply, onlyGood: boolean, prev?: Entry): Reply | null {
    if (onlyGood && reply.rcode !== RCODE.NOERROR && reply.rcode !== RCODE.NXDOMAIN) return null;
    // No message means nobody answered (the server writes a bare error): CoreDNS never caches that either.
    if (!reply.wire && !reply.msg) return onlyGood ? null : reply;
    // Zone transfers pass untouched: CoreDNS would give every record of an AXFR the 5 s fail-safe TTL.
    if (q.type === TYPE.AXFR || q.type === TYPE.IXFR) return onlyGood ? null : reply;
    let info;
    try {
      info = inspect(reply.wire ?? canonicalWire(reply.msg!), q.type);
    } catch {
      return onlyGood ? null : reply;
    }
    if (onlyGood && !info.kind) return null;
    const c = this.config;
    const ttl = this.duration(info.ttlRule, info.minTtl);
    for (const off of info.ttlOffsets) info.wire.writeUInt32BE(ttl, off);
    const rcode = info.wire[3]! & 0xf;
    const kind = info.kind;
    const disabled = kind === 'success' ? c.disableSuccess : c.disableDenial;
    if (kind && ttl > 0 && !disabled.some((z) => isSubdomain(q.lname, z))) {
      const key = cacheKey(q);
      const cells = this.cellsFor(q.server);
      const now = performance.now();
      const e: Entry = {
        // The stored bytes never leave: plugins in front (loadbalance) may reorder records in place.
        wire: ownCopy(info.wire), ttlOffsets: info.ttlOffsets, rcode, kind, stored: now, ttl, cells,
        hits: prev?.hits ?? 0, lastHit: prev ? now : 0, refreshing: false,
      };
      const opts = { ttl: ttl * 1000 + c.staleMs, size: entrySize(key, e) };
      if (kind === 'success') {
        this.success.set(key, e, opts);
        // A positive refresh is the newest truth for this key (CoreDNS drops the denial on prefetch).
        if (prev) this.denial.delete(key);
      } else {
        this.denial.set(key, e, opts);
      }
      this.withinBudget();
      cells.entries.success.set(this.success.size);
      cells.entries.denial.set(this.denial.size);
      cells.bytes.success.set(this.success.calculatedSize);
      cells.bytes.denial.set(this.denial.calculatedSize);
    }
    const out = info.wire;
    if (!q.edns?.do && !(q.raw[3]! & FLAG.AD)) out[3] &= ~FLAG.AD;
    return { rcode: reply.rcode, wire: out, plugin: reply.plugin };
  }

  /** Each LRU keeps itself under max_bytes; together they may not either: the larger one gives up its oldest. */
  private withinBudget(): void {
    const { success, denial } = this;
    while (success.calculatedSize + denial.calculatedSize > this.config.maxBytes) {
      (success.calculatedSize >= denial.calculatedSize ? success : denial).pop();
    }
  }

  /** Seconds for a response's records: its lowest TTL, capped and floored per kind (CoreDNS computeTTL). */
  private duration(rule: TtlRule, minTtl: number): number {
    const c = this.config;
    if (rule === 'servfail') return c.servfailTtl;
    const [max, min] = rule === 'denial' ? [c.denialMaxTtl, c.denialMinTtl] : [c.successMaxTtl, c.successMinTtl];
    // No records at all, a delegation or another error: CoreDNS's fail-safe minimal TTL of 5 s.
    const msgTtl = minTtl < 0 || rule === 'failsafe' ? 5 : Math.min(minTtl, max);
    return Math.min(Math.max(msgTtl, min), max);
  }

  close(): void {
    this.success.clear();
    this.denial.clear();
  }
}

/**
 * A stored answer for an asker who spells the question otherwise: its records as stored, only the question
 * the asker's (CoreDNS's cache item keeps the first answer's names). Copying the asker's question over the
 * stored one, as the server does, would respell every name that points at it, not only the owners that
 * repeat the question.
 */
function respelled(wire: Buffer, q: Query): Buffer {
  try {
    const m = decodeMessage(wire);
    return encodeMessage({ ...m, question: { name: q.name, type: q.type, class: q.class } });
  } catch {
    return wire;
  }
}
