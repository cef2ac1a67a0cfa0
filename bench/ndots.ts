/**
 * The "ndots:5 external name" workload. A pod in `default` resolving `hN.example.com` (fewer than 5 dots)
 * sends A+AAAA for `.default.svc.cluster.local`, `.svc.cluster.local`, `.cluster.local` (6 NXDOMAIN search
 * misses) and then for the name itself: 8 queries per lookup. With `autopath @kubernetes` the server walks
 * the path and the pod sends only the first A+AAAA. dnsperf's source 127.0.0.1 is a Pod in the manifests.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { externalZone, synthesize } from './cluster-data.js';
import {
  alternate, dnsperf, freePort, medianQps, rcodeShares, Scope, SERVER_CORE, startClusterdns, startKnot, table, udpQuery, type PerfResult, type Server,
} from './lib.js';
import { TYPE } from '../src/server/wire/constants.js';

export interface NdotsBenchOptions {
  /** Cluster services (positive answers). */
  services: number;
  /** External names looked up. */
  names: number;
  seconds: number;
  rounds: number;
}

const SEARCH = ['default.svc.cluster.local', 'svc.cluster.local', 'cluster.local'];

/**
 * Two cache layouts, each with and without autopath. kubeadm ≥ 1.32 stops caching cluster.local, so the
 * search misses come from the kubernetes plugin's memory (and, with autopath in that layout, the answer
 * under cluster.local is not cached either: every lookup is forwarded). The classic `cache` in front of
 * everything turns all of it into cache hits. Cache TTL 3600 keeps the external names warm for the run.
 */
const LAYOUTS = {
  'no cluster.local cache': '  cache 3600 {\n    disable success cluster.local\n    disable denial cluster.local\n  }\n',
  'cache everything': '  cache 3600\n',
} as const;

function corefile(manifest: string, upstream: number, metrics: number, cache: string, autopath: boolean) {
  return (port: number) => `.:${port} {\n  bind 127.0.0.1\n  errors\n  prometheus 127.0.0.1:${metrics}\n` +
    `  kubernetes cluster.local in-addr.arpa ip6.arpa {\n    manifests ${manifest}\n    pods verified\n    fallthrough in-addr.arpa ip6.arpa\n    ttl 30\n  }\n` +
    (autopath ? '  autopath @kubernetes\n' : '') + cache + `  forward . 127.0.0.1:${upstream}\n}\n`;
}

export async function benchNdots(o: NdotsBenchOptions): Promise<string> {
  const scope = new Scope();
  try {
    const dir = scope.dir('ndots');
    const cluster = synthesize(dir, o.services, 1, [{ name: 'dnsperf-client', namespace: 'default', ip: '127.0.0.1' }]);
    const ext = externalZone(o.names);
    const files = {
      positive: cluster.names.map((n) => `${n} A`),
      misses: ext.names.flatMap((n) => SEARCH.flatMap((s) => [`${n}.${s} A`, `${n}.${s} AAAA`])),
      lookup: ext.names.flatMap((n) => [...SEARCH, ''].flatMap((s) => { const q = s ? `${n}.${s}` : n; return [`${q} A`, `${q} AAAA`]; })),
      autopath: ext.names.flatMap((n) => [`${n}.${SEARCH[0]} A`, `${n}.${SEARCH[0]} AAAA`]),
    };
    const path = (k: keyof typeof files) => join(dir, `${k}.txt`);
    for (const [k, lines] of Object.entries(files)) writeFileSync(path(k as keyof typeof files), lines.join('\n') + '\n');

    const knot = await startKnot(scope, { [ext.origin]: ext.text }, ext.names[0]!);
    const servers: Record<string, Server> = {};
    for (const [layout, cache] of Object.entries(LAYOUTS)) {
      for (const autopath of [false, true]) {
        const key = `${layout}${autopath ? ', autopath' : ''}`;
        servers[key] = await startClusterdns(scope, dir, corefile(cluster.manifestFile, knot.port, await freePort(), cache, autopath), cluster.names[0]!, { name: key });
      }
    }
    // autopath must apply to this client (source 127.0.0.1 = the pod): the first search name gets CNAME + A.
    const auto = servers['no cluster.local cache, autopath']!;
    const check = await udpQuery(auto.port, `${ext.names[0]}.${SEARCH[0]}`, TYPE.A);
    if (!check || check.rcode !== 0 || check.msg.answer[0]?.type !== TYPE.CNAME) {
      throw new Error(`autopath did not apply to 127.0.0.1: rcode ${check?.rcode}, answer ${JSON.stringify(check?.msg.answer)}`);
    }
    // Warm the caches (external names in all four, and everything in the cache-everything pair).
    for (const [key, s] of Object.entries(servers)) await dnsperf(s.port, path(key.endsWith('autopath') ? 'autopath' : 'lookup'), 10, ['-n', '1']);

    const base = 'no cluster.local cache';
    const runs: Record<string, { server: Server; file: keyof typeof files; perLookup: number }> = {
      'positive cluster A': { server: servers[base]!, file: 'positive', perLookup: 0 },
      'search misses only': { server: servers[base]!, file: 'misses', perLookup: 0 },
    };
    for (const [key, server] of Object.entries(servers)) {
      const ap = key.endsWith('autopath');
      runs[`lookups: ${key}`] = { server, file: ap ? 'autopath' : 'lookup', perLookup: ap ? 2 : 8 };
    }
    const res = await alternate(o.rounds, Object.keys(runs), (k) => dnsperf(runs[k]!.server.port, path(runs[k]!.file), o.seconds));
    const q = (k: string) => medianQps(res[k]!);
    const rows: (string | number)[][] = [['workload (server)', 'queries/lookup', 'median QPS', 'runs', 'lookups/s', 'avg latency ms', 'rcode % (last run)', 'lost']];
    for (const [k, r] of Object.entries(runs)) {
      const last: PerfResult = res[k]!.at(-1)!;
      rows.push([k, r.perLookup || '', Math.round(q(k)), res[k]!.map((x) => Math.round(x.qps / 1000) + 'k').join(' '),
        r.perLookup ? Math.round(q(k) / r.perLookup) : '', last.avgLatencyMs.toFixed(2), rcodeShares(last), last.lost]);
    }
    const missRatio = q('search misses only') / q('positive cluster A');
    const lookups = (k: string) => q(`lookups: ${k}`) / runs[`lookups: ${k}`]!.perLookup;
    return [
      `## ndots:5 external names: ${o.names} names, ${o.services} services, ${o.rounds}×${o.seconds}s alternating, servers on core ${SERVER_CORE} (plugins: errors prometheus kubernetes [autopath] cache forward→knotd)`,
      table(rows),
      `search misses vs positive cluster answers (no cluster.local cache): ${missRatio.toFixed(3)} (must be ≥ 1.0: ${missRatio >= 1 ? 'met' : 'NOT met'})`,
      ...Object.keys(LAYOUTS).map((l) => `effective lookups/s, ${l}: autopath ${Math.round(lookups(`${l}, autopath`))} vs without ${Math.round(lookups(l))} = ${(lookups(`${l}, autopath`) / lookups(l)).toFixed(2)}×`),
    ].join('\n');
  } finally {
    await scope.close();
  }
}
