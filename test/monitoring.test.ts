import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import { dig } from './helpers/dig.js';
import { FakeApiServer, endpointSlice, namespace, service, writeKubeconfig } from './helpers/fake-apiserver.js';
import { NetnsLab, isRoot } from './helpers/netns.js';
import { waitFor } from './helpers/wait.js';
import { exposedSeries, labelValuesUses, promqlUses, type PromqlUse } from './helpers/promql.js';
import { freePort, startBlackhole, startDnsmasq } from './helpers/upstream.js';
import { tempDir } from './helpers/temp-dir.js';
import { NodecacheMetrics } from '../src/nodecache/metrics.js';
import { createRegistry } from '../src/pkg/metrics.js';

/**
 * deploy/monitoring/ points at metrics that exist: every metric name and label in the PromQL of the alert
 * rules and of the Grafana dashboard (panels, variables, legends, annotations) is exported by a running
 * `clusterdns serve` (API informers against a fake API server, forward to a live and a dead upstream,
 * cache, a few queries) or `clusterdns vip` (in a private network namespace), scraped from /metrics.
 */

const CLI = resolve('dist/src/cli.js');
const MONITORING = resolve('deploy/monitoring');
/** Labels Prometheus attaches to every target (ServiceMonitor / PodMonitor defaults), not exported by the process. */
const TARGET_LABELS = new Set(['job', 'instance', 'pod', 'namespace', 'service', 'endpoint', 'container']);
/** Series Prometheus makes itself. */
const SYNTHETIC = new Set(['up']);

interface Use { where: string; expr: string; uses: PromqlUse; shown: string[] }

/** Every PromQL expression of the rules and the dashboard, with the labels its annotations or legends show. */
function collectUses(): Use[] {
  const out: Use[] = [];
  const templated = (s: string | undefined) => [...(s ?? '').matchAll(/\{\{\s*(?:\$labels\.)?([a-zA-Z_]\w*)\s*\}\}/g)].map((m) => m[1]!);
  const rules = parse(readFileSync(join(MONITORING, 'prometheusrule.yaml'), 'utf8'));
  for (const g of rules.spec.groups) {
    for (const r of g.rules) {
      const shown = Object.values<string>(r.annotations ?? {}).flatMap((a) => [...a.matchAll(/\$labels\.(\w+)/g)].map((m) => m[1]!));
      out.push({ where: `prometheusrule.yaml ${g.name}/${r.alert ?? r.record}`, expr: r.expr, uses: promqlUses(r.expr), shown });
    }
  }
  const dash = JSON.parse(readFileSync(join(MONITORING, 'dashboard.json'), 'utf8'));
  const panels = (ps: any[]): any[] => ps.flatMap((p) => [p, ...panels(p.panels ?? [])]);
  for (const p of panels(dash.panels)) {
    for (const target of p.targets ?? []) {
      out.push({ where: `dashboard.json "${p.title}" ${target.refId}`, expr: target.expr, uses: promqlUses(target.expr), shown: templated(target.legendFormat) });
    }
  }
  for (const v of dash.templating.list) {
    if (v.type !== 'query') continue;
    const q = typeof v.query === 'string' ? v.query : v.query.query;
    out.push({ where: `dashboard.json variable $${v.name}`, expr: q, uses: labelValuesUses(q), shown: [] });
  }
  return out;
}

async function scrape(url: string): Promise<string> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return res.text();
}

/** Problems of `use` against the series a process exports; `owns` says which metric names that process answers for. */
function check(use: Use, series: Map<string, Set<string>>, owns: (metric: string) => boolean): string[] {
  const problems: string[] = [];
  const metrics = [...use.uses.selectors.keys()].filter((m) => !SYNTHETIC.has(m) && owns(m));
  for (const m of metrics) {
    const labels = series.get(m);
    if (!labels) {
      problems.push(`${use.where}: metric ${m} is not exported`);
      continue;
    }
    for (const l of use.uses.selectors.get(m)!) if (!TARGET_LABELS.has(l) && !labels.has(l)) problems.push(`${use.where}: ${m} has no label ${l}`);
    for (const l of use.uses.grouping) if (!TARGET_LABELS.has(l) && !labels.has(l)) problems.push(`${use.where}: groups by ${l}, which ${m} does not have`);
  }
  // What a legend or annotation shows must survive the aggregation (or be on the series when nothing aggregates).
  const available = use.uses.grouping.size ? use.uses.grouping : new Set([...TARGET_LABELS, ...metrics.flatMap((m) => [...(series.get(m) ?? [])])]);
  if (metrics.length) for (const l of use.shown) if (!available.has(l)) problems.push(`${use.where}: shows {{${l}}}, which the expression does not keep`);
  return problems;
}

const uses = collectUses();
const isVip = (m: string) => m.startsWith('clusterdns_vip_');
const isNodecache = (m: string) => m.includes('_nodecache_');
/** Metrics a `clusterdns serve` scrape answers for. */
const isDns = (m: string) => !isVip(m) && !isNodecache(m);

t.test('the PromQL extraction finds what the files reference', async (t) => {
  const all = new Set(uses.flatMap((u) => [...u.uses.selectors.keys()]));
  for (const m of ['up', 'coredns_dns_responses_total', 'coredns_dns_request_duration_seconds_bucket', 'coredns_proxy_request_duration_seconds_bucket',
    'coredns_proxy_healthcheck_failures_total', 'clusterdns_kubernetes_sync_state', 'coredns_reload_failed_total', 'coredns_panics_total',
    'clusterdns_vip_last_sync_timestamp_seconds', 'coredns_build_info', 'process_resident_memory_bytes']) t.ok(all.has(m), m);
  t.notOk([...all].some((m) => /^(sum|rate|by|histogram_quantile|time|le|job)$/.test(m)), 'no functions, keywords or labels taken for metrics');
  const u = promqlUses('sum by (pod) (increase(a_total{job="x",rcode=~"S.*"}[$__rate_interval])) / on(pod) group_left(zone) b{instance=~"$i"} > 0.5');
  t.same([...u.selectors.entries()].map(([m, l]) => [m, [...l]]), [['a_total', ['job', 'rcode']], ['b', ['instance']]]);
  t.same([...u.grouping], ['pod', 'zone']);
  t.same([...labelValuesUses('label_values(coredns_build_info{job=~"$job"}, instance)').selectors.get('coredns_build_info')!], ['job', 'instance']);
});

t.test('the dashboard is well-formed and every expression balanced', async (t) => {
  for (const u of uses) {
    const stack: string[] = [];
    const pairs: Record<string, string> = { ')': '(', '}': '{', ']': '[' };
    for (const c of u.expr.replace(/"(?:[^"\\]|\\.)*"/g, '""')) {
      if ('({['.includes(c)) stack.push(c);
      else if (c in pairs && stack.pop() !== pairs[c]) { stack.push('!'); break; }
    }
    t.same(stack, [], `${u.where}: brackets balance`);
  }
  const dash = JSON.parse(readFileSync(join(MONITORING, 'dashboard.json'), 'utf8'));
  const ids = dash.panels.map((p: { id: number }) => p.id);
  t.equal(new Set(ids).size, ids.length, 'panel ids are unique');
  const cells = new Set<string>();
  for (const p of dash.panels) {
    const { x, y, w, h } = p.gridPos;
    t.ok(x >= 0 && w > 0 && x + w <= 24, `"${p.title}" fits the 24-column grid`);
    let overlaps = false;
    for (let i = x; i < x + w; i++) {
      for (let j = y; j < y + h; j++) {
        overlaps ||= cells.has(`${i},${j}`);
        cells.add(`${i},${j}`);
      }
    }
    t.notOk(overlaps, `"${p.title}" overlaps no other panel`);
    if (p.type !== 'row') t.equal(p.datasource?.uid, '${datasource}', `"${p.title}" uses the data source variable`);
  }
});

t.test('every metric and label of the DNS rules and dashboard is exported by clusterdns serve', { skip: !existsSync(CLI) && 'dist/src/cli.js missing (run tsc -p . first)' }, async (t) => {
  const dir = tempDir('monitoring');
  const api = await new FakeApiServer().start();
  api.seed('namespaces', [namespace('default')]);
  api.seed('services', [service('default', 'web', '10.96.0.20')]);
  api.seed('endpointslices', [endpointSlice('default', 'web', 'web-1', [{ ip: '10.244.0.5' }])]);
  const upstream = await startDnsmasq(['--address=/example.com/192.0.2.10']);
  const dead = await startBlackhole();
  const [dnsPort, metricsPort] = [await freePort(), await freePort()];
  const kubeconfig = writeKubeconfig(dir, api.url);
  writeFileSync(join(dir, 'Corefile'), `.:${dnsPort} {
    bind 127.0.0.1
    errors
    prometheus 127.0.0.1:${metricsPort}
    cache 30
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig ${kubeconfig}
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    forward . ${upstream.addr} {
        max_concurrent 1000
    }
    reload
    loadbalance
}
dead.test:${dnsPort} {
    bind 127.0.0.1
    prometheus 127.0.0.1:${metricsPort}
    forward . ${dead.addr} {
        max_fails 1
        health_check 100ms
    }
}
`);
  const child: ChildProcess = spawn(process.execPath, [CLI, 'serve', '-conf', join(dir, 'Corefile')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => { stderr += b.toString(); });
  t.teardown(async () => {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    }
    await Promise.all([upstream.stop(), dead.stop(), api.stop()]);
    rmSync(dir, { recursive: true, force: true });
  });
  const url = `http://127.0.0.1:${metricsPort}/metrics`;
  await waitFor('clusterdns serve metrics', async () => (await scrape(url).catch(() => '')).includes('clusterdns_kubernetes_sync_state{resource="services"} 1'), 15_000)
    .catch((e: Error) => { throw new Error(`${e.message}\n${stderr}`); });

  // A few queries of every kind the panels break down: cluster names (hit, miss), external names (forwarded,
  // then cached), TCP, and a dead upstream (timeouts, failed health checks).
  for (const [args, proto] of [[['web.default.svc.cluster.local', 'A'], 'udp'], [['nope.default.svc.cluster.local', 'A'], 'udp'],
    [['example.com', 'A'], 'udp'], [['example.com', 'A'], 'udp'], [['web.default.svc.cluster.local', 'SRV', '+tcp'], 'tcp'],
    [['-x', '10.96.0.20'], 'udp']] as const) {
    const r = await dig(dnsPort, [...args]);
    t.ok(r.status, `${args.join(' ')} over ${proto}: ${r.status}`);
  }
  await dig(dnsPort, ['x.dead.test', 'A', '+tries=1', '+time=3']).catch(() => undefined);
  api.dropWatches(); // one list/watch restart, for clusterdns_kubernetes_restarts_total
  await waitFor('health checks of the dead upstream and a watch restart', async () => {
    const text = await scrape(url);
    return text.includes(`coredns_proxy_healthcheck_failures_total{proxy_name="forward",to="${dead.addr}"}`) && text.includes('clusterdns_kubernetes_restarts_total{');
  }, 10_000);

  const series = exposedSeries(await scrape(url));
  let checked = 0;
  for (const use of uses) {
    const problems = check(use, series, isDns);
    if ([...use.uses.selectors.keys()].some((m) => isDns(m) && !SYNTHETIC.has(m))) checked++;
    t.same(problems, [], use.where);
  }
  t.ok(checked >= 40, `${checked} DNS expressions checked`);

  // And the check does catch a panel that points nowhere.
  const bogus = (expr: string, shown: string[] = []) => check({ where: 'bogus', expr, uses: promqlUses(expr), shown }, series, isDns);
  t.same(bogus('sum(rate(coredns_forward_responses_total[5m]))'), ['bogus: metric coredns_forward_responses_total is not exported']);
  t.same(bogus('sum(rate(coredns_dns_requests_total{rcode="SERVFAIL"}[5m])) by (to)', ['zone']), [
    'bogus: coredns_dns_requests_total has no label rcode',
    'bogus: groups by to, which coredns_dns_requests_total does not have',
    'bogus: shows {{zone}}, which the expression does not keep',
  ]);
});

t.test('every metric and label of the VIP rules and dashboard is exported by clusterdns vip', { skip: (!isRoot() && 'needs root for a network namespace') || (!existsSync(CLI) && 'dist/src/cli.js missing') }, async (t) => {
  const lab = new NetnsLab('vipmon');
  const dir = tempDir('vipmon');
  t.teardown(async () => {
    await lab.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });
  const manifests = join(dir, 'manifests');
  mkdirSync(manifests);
  writeFileSync(join(manifests, 'web.yaml'), [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } },
    service('default', 'web', '10.96.0.20', { ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080 }] }),
    endpointSlice('default', 'web', 'web-1', [{ ip: '10.244.1.2' }]),
  ].map((o) => JSON.stringify(o)).join('\n---\n'));
  await lab.addNamespace('node');
  const vip = lab.spawn('node', process.execPath, [CLI, 'vip', '--mode', 'iptables', '--manifests', manifests, '--node-ip', '10.0.1.1',
    '--cluster-cidr', '10.244.0.0/16', '--hostname-override', 'node1', '--metrics', '127.0.0.1:10249']);
  let stderr = '';
  vip.stderr!.on('data', (b: Buffer) => { stderr += b.toString(); });
  const text = await waitFor('clusterdns vip metrics', async () => {
    const r = await lab.exec('node', 'curl', ['-s', '--max-time', '2', 'http://127.0.0.1:10249/metrics']);
    return r.code === 0 && /clusterdns_vip_rules\{family="IPv4"\} [1-9]/.test(r.stdout) ? r.stdout : undefined;
  }, 15_000).catch((e: Error) => { throw new Error(`${e.message}\n${stderr}`); });
  await lab.kill(vip);

  const series = exposedSeries(text);
  let checked = 0;
  for (const use of uses.filter((u) => [...u.uses.selectors.keys()].some(isVip))) {
    checked++;
    t.same(check(use, series, isVip), [], use.where);
  }
  t.ok(checked >= 6, `${checked} VIP expressions checked`);
});

t.test('every metric and label of the node-local cache rules is exported by the nodecache agent', async (t) => {
  // The agent's own metrics, as its process registers them (its cache and forward metrics are the DNS server's, checked above).
  const registry = createRegistry();
  new NodecacheMetrics(registry).rules.set({ mode: 'iptables' }, 24);
  const series = exposedSeries(await registry.metrics());
  let checked = 0;
  for (const use of uses.filter((u) => [...u.uses.selectors.keys()].some(isNodecache))) {
    checked++;
    t.same(check(use, series, isNodecache), [], use.where);
  }
  t.ok(checked >= 2, `${checked} nodecache expressions checked`);
  t.ok(uses.some((u) => /up\{job="node-local-dns"\}/.test(u.expr)), 'the cache being down is alerted on');
});
