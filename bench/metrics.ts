/**
 * The per-query metric cost of the prometheus plugin: its cells read by a custom collector (what ships),
 * against prom-client's public per-update API with `labels()` children cached per label set, and with a
 * label object per call. In process, no sockets: nanoseconds per query for the five updates CoreDNS makes.
 */
import client from 'prom-client';
import { recorderFor } from '../src/plugins/prometheus/recorder.js';
import { table } from './lib.js';

const TYPES = ['A', 'AAAA', 'SRV', 'PTR'];
const RCODES = ['NOERROR', 'NXDOMAIN'];
const durationBuckets = [0.00025, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096, 8.192];
const sizeBuckets = [0, 100, 200, 300, 400, 511, 1023, 2047, 4095, 8291, 16000, 32000, 48000, 64000];

type Record = (i: number) => void;

function cells(): { record: Record; registry: client.Registry } {
  const registry = new client.Registry();
  const s = recorderFor(registry).view('').seriesFor('dns://:53', 'cluster.local.');
  return {
    registry,
    record: (i) => {
      const type = TYPES[i & 3]!;
      s.request(type, false, 1);
      s.duration(type, 0.0001 + (i & 7) * 0.0003);
      s.sizes(false, 40 + (i & 15), 90 + (i & 63));
      s.response('kubernetes', RCODES[(i >> 2) & 1]!);
    },
  };
}

function promClient(children: boolean): { record: Record; registry: client.Registry } {
  const registry = new client.Registry();
  const registers = [registry];
  const requests = new client.Counter({ name: 'req', help: 'h', labelNames: ['server', 'zone', 'view', 'proto', 'family', 'type'], registers });
  const responses = new client.Counter({ name: 'resp', help: 'h', labelNames: ['server', 'zone', 'view', 'rcode', 'plugin'], registers });
  const duration = new client.Histogram({ name: 'dur', help: 'h', labelNames: ['server', 'zone', 'view', 'type'], buckets: durationBuckets, registers });
  const qsize = new client.Histogram({ name: 'qs', help: 'h', labelNames: ['server', 'zone', 'view', 'proto'], buckets: sizeBuckets, registers });
  const rsize = new client.Histogram({ name: 'rs', help: 'h', labelNames: ['server', 'zone', 'view', 'proto'], buckets: sizeBuckets, registers });
  const base = { server: 'dns://:53', zone: 'cluster.local.', view: '' };
  if (!children) {
    return {
      registry,
      record: (i) => {
        const type = TYPES[i & 3]!;
        requests.inc({ ...base, proto: 'udp', family: '1', type });
        duration.observe({ ...base, type }, 0.0001 + (i & 7) * 0.0003);
        qsize.observe({ ...base, proto: 'udp' }, 40 + (i & 15));
        rsize.observe({ ...base, proto: 'udp' }, 90 + (i & 63));
        responses.inc({ ...base, rcode: RCODES[(i >> 2) & 1]!, plugin: 'kubernetes' });
      },
    };
  }
  // Children looked up the way the cells are: by values the query holds, no label object per query.
  const req = new Map(TYPES.map((t) => [t, requests.labels({ ...base, proto: 'udp', family: '1', type: t })]));
  const dur = new Map(TYPES.map((t) => [t, duration.labels({ ...base, type: t })]));
  const resp = new Map(RCODES.map((r) => [r, responses.labels({ ...base, rcode: r, plugin: 'kubernetes' })]));
  const q = qsize.labels({ ...base, proto: 'udp' });
  const r = rsize.labels({ ...base, proto: 'udp' });
  return {
    registry,
    record: (i) => {
      const type = TYPES[i & 3]!;
      req.get(type)!.inc();
      dur.get(type)!.observe(0.0001 + (i & 7) * 0.0003);
      q.observe(40 + (i & 15));
      r.observe(90 + (i & 63));
      resp.get(RCODES[(i >> 2) & 1]!)!.inc();
    },
  };
}

/** Best of `rounds` timed loops of `n` queries (the least disturbed by the rest of the machine). */
function nsPerQuery(record: Record, n: number, rounds: number): number {
  for (let i = 0; i < 50_000; i++) record(i);
  let best = Infinity;
  for (let r = 0; r < rounds; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) record(i);
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / n);
  }
  return best;
}

async function scrapeMs(registry: client.Registry): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < 20; i++) await registry.metrics();
  return (performance.now() - t0) / 20;
}

export async function benchMetrics(o: { queries: number; rounds: number }): Promise<string> {
  const rows: (string | number)[][] = [['recording', 'ns / query (best of rounds)', 'ratio to cells', 'scrape ms']];
  // prom-client's paths are tens of times slower: a tenth of the queries gives them as many seconds.
  const variants: [string, { record: Record; registry: client.Registry }, number][] = [
    ['cells + custom collector (shipped)', cells(), o.queries],
    ['prom-client labels() children', promClient(true), o.queries / 10],
    ['prom-client label objects', promClient(false), o.queries / 10],
  ];
  let ref = 0;
  for (const [name, v, n] of variants) {
    const ns = nsPerQuery(v.record, n, o.rounds);
    ref ||= ns;
    rows.push([name, ns.toFixed(0), (ns / ref).toFixed(1), (await scrapeMs(v.registry)).toFixed(2)]);
  }
  return [`## Per-query metric cost: request, duration, request and response size, response (best of ${o.rounds} rounds; ${o.queries} queries for the cells, a tenth for prom-client)`, table(rows)].join('\n');
}
