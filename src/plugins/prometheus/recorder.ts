import { metricSet, type Registry } from '../../pkg/metrics.js';
import type { Metric } from 'prom-client';

/**
 * CoreDNS's per-query metrics at DNS rates. prom-client hashes and validates the label set on every
 * `inc()` and `observe()`, even through a cached `labels()` child (`npm run bench metrics`: about 1.5 µs
 * per query for the five updates, against 0.1 µs here). So each label set is a cell of plain numbers,
 * found through nested maps keyed by values the query already holds (no per-query allocation), and each
 * metric family is a custom collector: an object the registry reads through `get()` like its own metrics
 * (`registerMetric`, prom-client's public API), printing the same text a prom-client metric would.
 */

type Labels = Record<string, string>;

interface Sample { labels: Record<string, string | number>; value: number; metricName?: string }

class CounterCell {
  n = 0;
  constructor(readonly labels: Labels) {}
}

class HistogramCell {
  readonly buckets: Float64Array;
  count = 0;
  sum = 0;
  constructor(readonly labels: Labels, readonly bounds: readonly number[]) {
    this.buckets = new Float64Array(bounds.length);
  }

  observe(v: number): void {
    const b = this.bounds;
    // Same bucket choice as prom-client: the first bound >= v; above the last only +Inf (count).
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

/** A metric family of cells, in the order they were created (prom-client's order of first use). */
abstract class CellFamily<C> {
  readonly aggregator = 'sum';
  protected readonly cells: C[] = [];
  abstract readonly type: 'counter' | 'histogram';

  constructor(registry: Registry, readonly name: string, readonly help: string) {
    // The registry accepts any object with prom-client's metric shape; its type names only its own classes.
    registry.registerMetric(this as unknown as Metric);
  }

  protected add(c: C): C {
    this.cells.push(c);
    return c;
  }

  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Sample[] }> {
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: this.samples() };
  }

  protected abstract samples(): Sample[];
  abstract reset(): void;
}

class CellCounter extends CellFamily<CounterCell> {
  readonly type = 'counter';

  cell(labels: Labels): CounterCell {
    return this.add(new CounterCell(labels));
  }

  protected samples(): Sample[] {
    return this.cells.map((c) => ({ labels: c.labels, value: c.n }));
  }

  reset(): void {
    for (const c of this.cells) c.n = 0;
  }
}

class CellHistogram extends CellFamily<HistogramCell> {
  readonly type = 'histogram';

  constructor(registry: Registry, name: string, help: string, private readonly bounds: readonly number[]) {
    super(registry, name, help);
  }

  cell(labels: Labels): HistogramCell {
    return this.add(new HistogramCell(labels, this.bounds));
  }

  protected samples(): Sample[] {
    const out: Sample[] = [];
    const bucket = `${this.name}_bucket`;
    for (const c of this.cells) {
      let acc = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        acc += c.buckets[i]!;
        out.push({ labels: { le: this.bounds[i]!, ...c.labels }, value: acc, metricName: bucket });
      }
      out.push({ labels: { le: '+Inf', ...c.labels }, value: c.count, metricName: bucket });
      out.push({ labels: c.labels, value: c.sum, metricName: `${this.name}_sum` });
      out.push({ labels: c.labels, value: c.count, metricName: `${this.name}_count` });
    }
    return out;
  }

  reset(): void {
    for (const c of this.cells) {
      c.buckets.fill(0);
      c.count = 0;
      c.sum = 0;
    }
  }
}

const durationBuckets = [0.00025, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096, 8.192];
const sizeBuckets = [0, 100, 200, 300, 400, 511, 1023, 2047, 4095, 8291, 16000, 32000, 48000, 64000];

/**
 * The per-query metric families of one registry (names and labels as CoreDNS's plugin/metrics, so
 * dashboards and alerts keep working) and their cells. One per registry, like the metrics themselves, so
 * series survive reloads (a reloaded prometheus plugin gets the same recorder back).
 */
export class Recorder {
  readonly requests: CellCounter;
  readonly responses: CellCounter;
  readonly duration: CellHistogram;
  readonly requestSize: CellHistogram;
  readonly responseSize: CellHistogram;
  readonly doRequests: CellCounter;
  private readonly views = new Map<string, ViewSeries>();

  constructor(registry: Registry) {
    this.requests = new CellCounter(registry, 'coredns_dns_requests_total', 'Counter of DNS requests made per zone, protocol and family.');
    this.responses = new CellCounter(registry, 'coredns_dns_responses_total', 'Counter of response status codes.');
    this.duration = new CellHistogram(registry, 'coredns_dns_request_duration_seconds', 'Histogram of the time (in seconds) each request took per zone.', durationBuckets);
    this.requestSize = new CellHistogram(registry, 'coredns_dns_request_size_bytes', 'Size of the EDNS0 UDP buffer in bytes (64K for TCP) per zone and protocol.', sizeBuckets);
    this.responseSize = new CellHistogram(registry, 'coredns_dns_response_size_bytes', 'Size of the returned response in bytes.', sizeBuckets);
    this.doRequests = new CellCounter(registry, 'coredns_dns_do_requests_total', 'Counter of DNS requests with DO bit set per zone.');
  }

  /** The series of the blocks with view `name` ('' for none): a block's plugin keeps it, so a query pays no view lookup. */
  view(name: string): ViewSeries {
    let v = this.views.get(name);
    if (!v) this.views.set(name, (v = new ViewSeries(this, name)));
    return v;
  }
}

/** The series sets of one view, by server and zone. */
export class ViewSeries {
  private readonly series = new Map<string, Map<string, SeriesSet>>();

  constructor(private readonly r: Recorder, private readonly view: string) {}

  seriesFor(server: string, zone: string): SeriesSet {
    let byZone = this.series.get(server);
    if (!byZone) this.series.set(server, (byZone = new Map()));
    let s = byZone.get(zone);
    if (!s) byZone.set(zone, (s = new SeriesSet(this.r, server, zone, this.view)));
    return s;
  }
}

/** The recorder of a server's registry. */
export const recorderFor = metricSet((registry) => new Recorder(registry));

const PROTOS = ['udp', 'tcp'] as const;

/** Cells of one (server, zone, view): everything a query needs is an index or a map lookup by an interned string. */
export class SeriesSet {
  /** Key: type label; index: proto * 2 + family - 1. */
  private requests = new Map<string, (CounterCell | undefined)[]>();
  /** Key: plugin label, then rcode label. */
  private responses = new Map<string, Map<string, CounterCell>>();
  private durations = new Map<string, HistogramCell>();
  private requestSizes: (HistogramCell | undefined)[] = [];
  private responseSizes: (HistogramCell | undefined)[] = [];
  private doRequests: CounterCell | undefined;

  constructor(private readonly r: Recorder, private readonly server: string, private readonly zone: string, private readonly view = '') {}

  request(type: string, tcp: boolean, family: 1 | 2): void {
    let byTransport = this.requests.get(type);
    if (!byTransport) this.requests.set(type, (byTransport = []));
    const i = (tcp ? 2 : 0) + family - 1;
    const cell = byTransport[i] ?? (byTransport[i] = this.r.requests.cell({
      server: this.server, zone: this.zone, view: this.view, proto: PROTOS[tcp ? 1 : 0], family: String(family), type,
    }));
    cell.n++;
  }

  response(plugin: string, rcode: string): void {
    let byRcode = this.responses.get(plugin);
    if (!byRcode) this.responses.set(plugin, (byRcode = new Map()));
    let cell = byRcode.get(rcode);
    if (!cell) byRcode.set(rcode, (cell = this.r.responses.cell({ server: this.server, zone: this.zone, view: this.view, rcode, plugin })));
    cell.n++;
  }

  duration(type: string, seconds: number): void {
    let cell = this.durations.get(type);
    if (!cell) this.durations.set(type, (cell = this.r.duration.cell({ server: this.server, zone: this.zone, view: this.view, type })));
    cell.observe(seconds);
  }

  sizes(tcp: boolean, request: number, response: number): void {
    const i = tcp ? 1 : 0;
    (this.requestSizes[i] ??= this.r.requestSize.cell(this.protoLabels(i))).observe(request);
    (this.responseSizes[i] ??= this.r.responseSize.cell(this.protoLabels(i))).observe(response);
  }

  private protoLabels(i: 0 | 1): Labels {
    return { server: this.server, zone: this.zone, view: this.view, proto: PROTOS[i] };
  }

  dnssecOk(): void {
    (this.doRequests ??= this.r.doRequests.cell({ server: this.server, zone: this.zone, view: this.view })).n++;
  }
}
