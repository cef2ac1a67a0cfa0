import { createRequire } from 'node:module';
import type { Counter, Histogram } from 'prom-client';
import { metricSet } from '../../pkg/metrics.js';
import { dnsMetrics, type DnsMetrics } from '../../server/metrics.js';

/** prom-client's label hashing: the key of a metric's `hashMap` (internal, hence untyped). */
const { hashObject } = createRequire(import.meta.url)('prom-client/lib/util.js') as {
  hashObject(labels: Record<string, string>, labelNames: string[]): string;
};

/**
 * Per-query metrics at DNS rates. prom-client hashes and validates the label set on every `inc()` and
 * `observe()`, even through a `labels()` child (~1 µs each, measured; six updates per query would eat a
 * third of the per-query budget at 60k qps). So each label set gets a cell with plain numbers, found
 * through nested maps keyed by values the query already holds (no per-query allocation), and the cells
 * are folded into the core's prom-client metrics when the registry is read (their `collect` hook).
 */

type Labels = Record<string, string>;

class CounterCell {
  n = 0;
  constructor(readonly metric: Counter<string>, readonly labels: Labels) {}
}

class HistogramCell {
  readonly buckets: Float64Array;
  count = 0;
  sum = 0;
  constructor(readonly metric: Histogram<string>, readonly labels: Labels, readonly bounds: readonly number[]) {
    this.buckets = new Float64Array(bounds.length);
  }

  observe(v: number): void {
    const b = this.bounds;
    // Same bucket choice as prom-client's findBound: the first bound >= v; above the last only +Inf.
    for (let i = 0; i < b.length; i++) {
      if (v <= b[i]!) {
        this.buckets[i]!++;
        break;
      }
    }
    this.count++;
    this.sum += v;
  }
}

/** The internals a histogram flush writes into: prom-client has no public bulk-observe. */
interface HistogramInternals {
  hashMap: Record<string, { bucketValues: Record<number, number>; sum: number; count: number } | undefined>;
  sortedLabelNames: string[];
  upperBounds: number[];
}

/**
 * The cells of one registry's DNS metrics. One per registry, like the metrics themselves, so series
 * survive reloads (a reloaded prometheus plugin gets the same recorder back).
 */
export class Recorder {
  private readonly counters: CounterCell[] = [];
  private readonly histograms: HistogramCell[] = [];
  private readonly series = new Map<string, Map<string, SeriesSet>>();

  constructor(readonly metrics: DnsMetrics) {
    const m = metrics;
    for (const metric of [m.requests, m.responses, m.duration, m.requestSize, m.responseSize, m.doRequests]) {
      // prom-client calls `collect` before it reads a metric, so every reader of the registry sees fresh values.
      (metric as unknown as { collect: () => void }).collect = () => this.flush();
    }
  }

  counterCell(metric: Counter<string>, labels: Labels): CounterCell {
    const c = new CounterCell(metric, labels);
    this.counters.push(c);
    return c;
  }

  histogramCell(metric: Histogram<string>, labels: Labels): HistogramCell {
    const c = new HistogramCell(metric, labels, (metric as unknown as HistogramInternals).upperBounds);
    this.histograms.push(c);
    return c;
  }

  /** Moves everything counted since the last read into the prom-client metrics. */
  flush(): void {
    for (const c of this.counters) {
      if (c.n === 0) continue;
      c.metric.inc(c.labels, c.n);
      c.n = 0;
    }
    for (const c of this.histograms) {
      if (c.count === 0) continue;
      const h = c.metric as unknown as HistogramInternals;
      const key = hashObject(c.labels, h.sortedLabelNames);
      let e = h.hashMap[key];
      if (!e) {
        c.metric.zero(c.labels);
        e = h.hashMap[key]!;
      }
      for (let i = 0; i < c.bounds.length; i++) e.bucketValues[c.bounds[i]!]! += c.buckets[i]!;
      e.sum += c.sum;
      e.count += c.count;
      c.buckets.fill(0);
      c.count = 0;
      c.sum = 0;
    }
  }

  seriesFor(server: string, zone: string): SeriesSet {
    let byZone = this.series.get(server);
    if (!byZone) this.series.set(server, (byZone = new Map()));
    let s = byZone.get(zone);
    if (!s) byZone.set(zone, (s = new SeriesSet(this, server, zone)));
    return s;
  }
}

/** The recorder of a server's registry. */
export const recorderFor = metricSet((registry) => new Recorder(dnsMetrics(registry)));

const PROTOS = ['udp', 'tcp'] as const;

/** Cells of one (server, zone): everything a query needs is an index or a map lookup by an interned string. */
export class SeriesSet {
  /** Key: type label; index: proto * 2 + family - 1. */
  private requests = new Map<string, (CounterCell | undefined)[]>();
  /** Key: plugin label, then rcode label. */
  private responses = new Map<string, Map<string, CounterCell>>();
  private durations = new Map<string, HistogramCell>();
  private requestSizes: (HistogramCell | undefined)[] = [];
  private responseSizes: (HistogramCell | undefined)[] = [];
  private doRequests: CounterCell | undefined;

  constructor(private readonly recorder: Recorder, private readonly server: string, private readonly zone: string) {}

  request(type: string, tcp: boolean, family: 1 | 2): void {
    let byTransport = this.requests.get(type);
    if (!byTransport) this.requests.set(type, (byTransport = []));
    const i = (tcp ? 2 : 0) + family - 1;
    const cell = byTransport[i] ?? (byTransport[i] = this.recorder.counterCell(this.recorder.metrics.requests, {
      server: this.server, zone: this.zone, view: '', proto: PROTOS[tcp ? 1 : 0], family: String(family), type,
    }));
    cell.n++;
  }

  response(plugin: string, rcode: string): void {
    let byRcode = this.responses.get(plugin);
    if (!byRcode) this.responses.set(plugin, (byRcode = new Map()));
    let cell = byRcode.get(rcode);
    if (!cell) byRcode.set(rcode, (cell = this.recorder.counterCell(this.recorder.metrics.responses, { server: this.server, zone: this.zone, view: '', rcode, plugin })));
    cell.n++;
  }

  duration(type: string, seconds: number): void {
    let cell = this.durations.get(type);
    if (!cell) this.durations.set(type, (cell = this.recorder.histogramCell(this.recorder.metrics.duration, { server: this.server, zone: this.zone, view: '', type })));
    cell.observe(seconds);
  }

  sizes(tcp: boolean, request: number, response: number): void {
    const i = tcp ? 1 : 0;
    (this.requestSizes[i] ??= this.recorder.histogramCell(this.recorder.metrics.requestSize, this.protoLabels(i))).observe(request);
    (this.responseSizes[i] ??= this.recorder.histogramCell(this.recorder.metrics.responseSize, this.protoLabels(i))).observe(response);
  }

  private protoLabels(i: 0 | 1): Labels {
    return { server: this.server, zone: this.zone, view: '', proto: PROTOS[i] };
  }

  dnssecOk(): void {
    (this.doRequests ??= this.recorder.counterCell(this.recorder.metrics.doRequests, { server: this.server, zone: this.zone, view: '' })).n++;
  }
}
