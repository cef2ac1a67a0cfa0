/**
 * Cache hits for external names: clusterdns `cache` + `forward`, dnsmasq and unbound (caching forwarders)
 * in front of one knotd upstream, and that knotd answering directly, alternating in one run. Then the
 * cost of a miss: sequential queries for never-seen names, through each forwarder vs straight to knotd.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { externalZone } from './cluster-data.js';
import {
  alternate, dnsperf, freePort, medianQps, percentile, rcodeShares, Scope, SERVER_CORE, startClusterdns, startKnot, startPinned,
  table, udpQuery, waitForDns, type Server,
} from './lib.js';

export interface CacheBenchOptions {
  /** External names the upstream serves (each asked as A; all cached before the timed runs). */
  names: number;
  seconds: number;
  rounds: number;
  /** Sequential miss queries per path for the latency comparison. */
  misses: number;
}

async function startDnsmasq(scope: Scope, dir: string, upstream: number, probe: string): Promise<Server> {
  const port = await freePort();
  const proc = startPinned(scope, 'dnsmasq', 'dnsmasq', ['--keep-in-foreground', '--no-resolv', '--no-hosts', '--no-poll', '--conf-file=/dev/null',
    '--user=root', `--pid-file=${join(dir, 'dnsmasq.pid')}`, `--port=${port}`, '--listen-address=127.0.0.1', '--bind-interfaces',
    '--cache-size=10000', `--server=127.0.0.1#${upstream}`], SERVER_CORE);
  await waitForDns(port, probe, proc, 15_000);
  return { name: 'dnsmasq', port, proc };
}

async function startUnbound(scope: Scope, dir: string, upstream: number, probe: string): Promise<Server> {
  const port = await freePort();
  const conf = join(dir, 'unbound.conf');
  // module-config "iterator": no validator (the upstream zone is unsigned); one thread like knotd's one worker.
  writeFileSync(conf, `server:\n  interface: 127.0.0.1\n  port: ${port}\n  num-threads: 1\n  do-ip6: no\n  do-daemonize: no\n  chroot: ""\n` +
    `  username: ""\n  directory: "${dir}"\n  pidfile: "${join(dir, 'unbound.pid')}"\n  use-syslog: no\n  logfile: ""\n  verbosity: 0\n` +
    `  module-config: "iterator"\n  do-not-query-localhost: no\n  access-control: 127.0.0.0/8 allow\n  qname-minimisation: no\n` +
    `  msg-cache-size: 16m\n  rrset-cache-size: 32m\nforward-zone:\n  name: "."\n  forward-addr: 127.0.0.1@${upstream}\n`);
  const proc = startPinned(scope, 'unbound', 'unbound', ['-d', '-c', conf], SERVER_CORE);
  await waitForDns(port, probe, proc, 15_000);
  return { name: 'unbound', port, proc };
}

/** Sequential latency of never-seen names (wildcard answers) for each path, interleaved query by query. */
async function missLatency(paths: Server[], count: number): Promise<Map<string, { ms: number[]; failed: number }>> {
  const out = new Map(paths.map((p) => [p.name, { ms: [] as number[], failed: 0 }]));
  const tag = Date.now().toString(36);
  for (let i = 0; i < count; i++) {
    for (const p of paths) {
      const a = await udpQuery(p.port, `m${i}-${tag}-${p.name}.miss.example.com`, undefined, 2000);
      const slot = out.get(p.name)!;
      if (a && a.rcode === 0 && a.msg.answer.length) slot.ms.push(a.ms);
      else slot.failed++;
    }
  }
  for (const v of out.values()) v.ms.sort((a, b) => a - b);
  return out;
}

export async function benchCache(o: CacheBenchOptions): Promise<string> {
  const scope = new Scope();
  try {
    const dir = scope.dir('cache');
    const zone = externalZone(o.names);
    const probe = zone.names[0]!;
    const hitFile = join(dir, 'hits.txt');
    writeFileSync(hitFile, zone.names.map((n) => `${n} A`).join('\n') + '\n');

    const knot = await startKnot(scope, { [zone.origin]: zone.text }, probe);
    const metricsPort = await freePort();
    const ours = await startClusterdns(scope, dir, (port) =>
      `.:${port} {\n  bind 127.0.0.1\n  errors\n  prometheus 127.0.0.1:${metricsPort}\n  cache 3600\n  forward . 127.0.0.1:${knot.port}\n}\n`, probe);
    const dnsmasq = await startDnsmasq(scope, dir, knot.port, probe);
    const unbound = await startUnbound(scope, dir, knot.port, probe);
    const servers = { knotd: knot, clusterdns: ours, dnsmasq, unbound };

    // Warm every cache with the whole name list: the timed runs then see hits only.
    for (const s of [ours, dnsmasq, unbound]) await dnsperf(s.port, hitFile, 10, ['-n', '1']);
    const before = await cacheCounters(metricsPort);

    const keys = Object.keys(servers) as (keyof typeof servers)[];
    const res = await alternate(o.rounds, keys, (k) => dnsperf(servers[k].port, hitFile, o.seconds));
    const after = await cacheCounters(metricsPort);
    const knotQps = medianQps(res.knotd);
    const reference: Record<string, string> = { knotd: '1.00', clusterdns: 'target ≥ 0.20', dnsmasq: '≈ 0.50', unbound: '≈ 0.63' };
    const rows: (string | number)[][] = [['server', 'median QPS', 'runs', 'avg latency ms', 'rcode % (last run)', 'lost', 'ratio to knotd', 'reference']];
    for (const k of keys) {
      const last = res[k].at(-1)!;
      rows.push([k, Math.round(medianQps(res[k])), res[k].map((r) => Math.round(r.qps / 1000) + 'k').join(' '), last.avgLatencyMs.toFixed(2), rcodeShares(last),
        last.lost, (medianQps(res[k]) / knotQps).toFixed(3), reference[k]!]);
    }
    const requests = after.requests - before.requests;
    const hits = after.hits - before.hits;

    const miss = await missLatency([knot, ours, dnsmasq, unbound], o.misses);
    const direct = miss.get('knotd')!;
    const missRows: (string | number)[][] = [['path', 'p50 ms', 'p90 ms', 'p99 ms', 'failed', 'p50 added to knotd direct']];
    for (const [name, v] of miss) {
      missRows.push([name === 'knotd' ? 'knotd direct' : `${name} → knotd`, percentile(v.ms, 50).toFixed(3), percentile(v.ms, 90).toFixed(3),
        percentile(v.ms, 99).toFixed(3), v.failed, name === 'knotd' ? '' : (percentile(v.ms, 50) - percentile(direct.ms, 50)).toFixed(3) + ' ms']);
    }
    const added = percentile(miss.get('clusterdns')!.ms, 50) - percentile(direct.ms, 50);
    return [
      `## Cache hits for external names: ${o.names} names, ${o.rounds}×${o.seconds}s alternating, servers on core ${SERVER_CORE}`,
      table(rows),
      `clusterdns cache: ${hits} hits of ${requests} requests in the timed runs (${requests ? ((100 * hits) / requests).toFixed(2) : 'n/a'} %)`,
      `### Cache misses: ${o.misses} never-seen names per path, sequential, interleaved (client: this Node process, unpinned)`,
      table(missRows),
      `a miss through clusterdns adds ${added.toFixed(3)} ms (p50) to the upstream's own latency (target < 1 ms): ${added < 1 ? 'met' : 'NOT met'}`,
    ].join('\n');
  } finally {
    await scope.close();
  }
}

/** clusterdns's own cache counters, so the table can show that the timed runs were all hits. */
async function cacheCounters(port: number): Promise<{ hits: number; requests: number }> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const sum = (metric: string) => text.split('\n').filter((l) => l.startsWith(metric + '{') || l.startsWith(metric + ' '))
    .reduce((a, l) => a + Number(l.split(' ').at(-1)), 0);
  return { hits: sum('coredns_cache_hits_total'), requests: sum('coredns_cache_requests_total') };
}
