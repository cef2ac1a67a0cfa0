import t, { type Test } from 'tap';
import { join } from 'node:path';
import { createApiSource, type ApiSource, type ApiSourceConfig, type ApiSourceContext } from '../src/cluster/api-source.js';
import { REFLECTOR_DEFAULTS } from '../src/cluster/reflector.js';
import { ClusterStore } from '../src/cluster/store.js';
import { setLogSink } from '../src/pkg/log.js';
import { logger } from '../src/pkg/log.js';
import { createRegistry, type Registry } from '../src/pkg/metrics.js';
import { loadPlugins } from '../src/plugins/registry.js';
import { kubernetesDefinition } from '../src/plugins/kubernetes/setup.js';
import { FakeApiServer, endpointSlice, namespace, pod, service, writeKubeconfig } from './helpers/fake-apiserver.js';
import { dig, digShort } from './helpers/dig.js';
import { startServer, type RunningServer } from './helpers/server.js';
import { sleep, waitFor } from './helpers/wait.js';
import { tempDir } from './helpers/temp-dir.js';

// The Corefile cannot set these; short values keep outage and watchdog scenarios to seconds.
const TUNING = { watchdogMs: 1500, backoff: { initialMs: 100, maxMs: 400 } };

async function metric(registry: Registry, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
  const v = (m?.values as { labels: Record<string, string | number>; value: number; metricName?: string }[] | undefined)
    ?.find((x) => Object.entries(labels).every(([k, want]) => String(x.labels[k]) === want) && (!x.metricName || x.metricName === name || x.metricName.endsWith('_sum') === (labels.__sum === 'true')));
  return v?.value;
}

/** The cluster most scenarios start from. */
function seed(api: FakeApiServer): void {
  api.apply('namespaces', namespace('default'));
  api.apply('namespaces', namespace('team'));
  api.apply('services', service('default', 'web', '10.96.0.10'));
  api.apply('endpointslices', endpointSlice('default', 'web', 'web-abc', [{ ip: '10.1.0.1' }, { ip: '10.1.0.2' }]));
  api.apply('services', service('default', 'stable', '10.96.0.11'));
  api.apply('services', service('team', 'db', '', { headless: true }));
  api.apply('endpointslices', endpointSlice('team', 'db', 'db-xyz', [{ ip: '10.2.0.1', hostname: 'db-0' }, { ip: '10.2.0.2', hostname: 'db-1' }]));
}

interface Cluster {
  api: FakeApiServer;
  dns: RunningServer;
  a(name: string): Promise<string[]>;
  status(name: string): Promise<string>;
}

/** A fake API server plus clusterdns (in-process, real listeners) reading it through a kubeconfig. */
async function cluster(t: Test, opts: { options?: string; before?: (api: FakeApiServer) => void } = {}): Promise<Cluster> {
  const api = await new FakeApiServer().start();
  seed(api);
  opts.before?.(api);
  const dir = tempDir('informers');
  const kc = writeKubeconfig(dir, api.url);
  const plugins = new Map(await loadPlugins()).set('kubernetes', kubernetesDefinition(TUNING));
  const dns = await startServer(`cluster.local {\n  kubernetes cluster.local {\n    kubeconfig ${kc}\n${opts.options ?? ''}  }\n}\n`, { dir, plugins });
  t.teardown(async () => {
    await dns.stop();
    await api.stop();
  });
  return {
    api, dns,
    a: (name) => digShort(dns.port, [`${name}.svc.cluster.local`, 'A']),
    status: async (name) => (await dig(dns.port, [`${name}.svc.cluster.local`, 'A'])).status,
  };
}

t.test('initial sync: services, headless endpoints, SRV, NXDOMAIN; synced metrics; paged LIST', async (t) => {
  const c = await cluster(t);
  t.same(await c.a('web.default'), ['10.96.0.10']);
  t.same(await c.a('db.team'), ['10.2.0.1', '10.2.0.2']);
  t.same(await c.a('db-0.db.team'), ['10.2.0.1']);
  t.same(await digShort(c.dns.port, ['_http._tcp.web.default.svc.cluster.local', 'SRV']), ['0 100 80 web.default.svc.cluster.local.']);
  t.equal(await c.status('nope.default'), 'NXDOMAIN');
  for (const resource of ['services', 'endpointslices', 'namespaces']) {
    t.equal(await metric(c.dns.server.registry, 'clusterdns_kubernetes_sync_state', { resource }), 1, `${resource} synced`);
    const list = c.api.requests.find((r) => r.resource === resource && !r.watch);
    t.equal(list?.query.limit, String(REFLECTOR_DEFAULTS.pageSize), `${resource} LIST is paged`);
    const watch = c.api.requests.find((r) => r.resource === resource && r.watch);
    t.equal(watch?.query.allowWatchBookmarks, 'true', `${resource} watch asks for bookmarks`);
    t.ok(watch?.query.resourceVersion, `${resource} watch starts at the list's resourceVersion`);
  }
  t.equal(c.api.listCount('pods'), 0, 'no pod watch without pods verified');
});

t.test('SERVFAIL while the first LIST is pending, answers once it lands', async (t) => {
  const started = performance.now();
  const c = await cluster(t, { options: '    startup_timeout 300ms\n', before: (api) => (api.listDelayMs = 1500) });
  t.ok(performance.now() - started < 1400, 'server started after startup_timeout, not after the LIST');
  t.equal(await c.status('web.default'), 'SERVFAIL', 'unsynced: no cached data, SERVFAIL');
  t.equal(await c.status('nope.default'), 'SERVFAIL', 'unsynced: would-be NXDOMAIN is SERVFAIL');
  await waitFor('answers after the LIST', async () => (await c.a('web.default')).length === 1, 5000);
  t.equal(await c.status('nope.default'), 'NXDOMAIN');
});

t.test('service added, modified, deleted: visible within 1 s', async (t) => {
  const c = await cluster(t);
  const within = async (what: string, check: () => Promise<boolean>) => {
    const t0 = performance.now();
    await waitFor(what, check, 3000);
    const ms = performance.now() - t0;
    t.ok(ms < 1000, `${what} in ${ms.toFixed(0)} ms`);
  };
  c.api.apply('services', service('default', 'new', '10.96.0.20'));
  await within('add', async () => (await c.a('new.default'))[0] === '10.96.0.20');
  c.api.apply('services', service('default', 'new', '10.96.0.21'));
  await within('modify', async () => (await c.a('new.default'))[0] === '10.96.0.21');
  c.api.delete('services', 'default', 'new');
  await within('delete', async () => (await c.status('new.default')) === 'NXDOMAIN');
});

t.test('endpoint readiness flips', async (t) => {
  const c = await cluster(t);
  const slice = (ready1: boolean) => endpointSlice('team', 'db', 'db-xyz', [{ ip: '10.2.0.1', hostname: 'db-0' }, { ip: '10.2.0.2', hostname: 'db-1', ready: ready1 }]);
  c.api.apply('endpointslices', slice(false));
  await waitFor('not-ready endpoint gone from the headless answer', async () => (await c.a('db.team')).join() === '10.2.0.1', 2000);
  c.api.apply('endpointslices', slice(true));
  await waitFor('ready again', async () => (await c.a('db.team')).join() === '10.2.0.1,10.2.0.2', 2000);
  t.pass('flipped both ways');
});

t.test('410 Gone: relist applies missed changes without losing records meanwhile', async (t) => {
  const c = await cluster(t);
  const gone = (await metric(c.dns.server.registry, 'clusterdns_kubernetes_restarts_total', { resource: 'services', reason: 'gone' })) ?? 0;
  const lists = c.api.listCount('services');
  // Changes the client misses: watches silent, then history compacted and the streams cut.
  c.api.hangWatches();
  c.api.delete('services', 'default', 'web');
  c.api.apply('services', service('team', 'db', '', { headless: true, labels: { changed: 'yes' } }));
  c.api.apply('services', service('default', 'added', '10.96.0.30'));
  c.api.listDelayMs = 400;
  c.api.compact();
  c.api.dropWatches();
  const deadline = performance.now() + 1500;
  let answered = 0;
  while (performance.now() < deadline) {
    t.same(await c.a('stable.default'), ['10.96.0.11'], 'unchanged service answers throughout the relist');
    answered++;
  }
  await waitFor('deleted service gone after relist', async () => (await c.status('web.default')) === 'NXDOMAIN', 3000);
  t.same(await c.a('added.default'), ['10.96.0.30']);
  t.same(await c.a('db.team'), ['10.2.0.1', '10.2.0.2'], 'headless service kept with its endpoints');
  t.ok(answered > 3);
  t.ok(c.api.listCount('services') > lists, 'relisted');
  t.ok(((await metric(c.dns.server.registry, 'clusterdns_kubernetes_restarts_total', { resource: 'services', reason: 'gone' })) ?? 0) > gone, 'gone restart counted');
});

t.test('API down: old answers keep coming, one log line per state change, recovery picks up changes', async (t) => {
  const lines: string[] = [];
  const restore = setLogSink((l) => lines.push(l));
  t.teardown(restore);
  const c = await cluster(t);
  await c.api.down();
  // Changes made while clusterdns cannot see the API (and history compacted: recovery must relist).
  c.api.apply('services', service('default', 'web', '10.96.0.99'));
  c.api.delete('services', 'default', 'stable');
  c.api.compact();
  const until = performance.now() + 2500;
  while (performance.now() < until) {
    t.same(await c.a('web.default'), ['10.96.0.10'], 'last good data served');
    await sleep(100);
  }
  t.equal(await metric(c.dns.server.registry, 'clusterdns_kubernetes_sync_state', { resource: 'services' }), 2, 'state: synced but failing');
  const failing = lines.filter((l) => /services: .*retrying with backoff/.test(l));
  t.equal(failing.length, 1, `one warning for many retries: ${failing.join(' | ')}`);
  t.ok(((await metric(c.dns.server.registry, 'clusterdns_kubernetes_restarts_total', { resource: 'services', reason: 'error' })) ?? 0) >= 3, 'retried several times');

  // Back, but LIST still failing: the store must not be emptied.
  c.api.failLists = 500;
  await c.api.up();
  await sleep(800);
  t.same(await c.a('web.default'), ['10.96.0.10'], 'failing relist keeps the last good data');
  t.same(await c.a('stable.default'), ['10.96.0.11']);
  c.api.failLists = null;
  await waitFor('change made during the outage', async () => (await c.a('web.default'))[0] === '10.96.0.99', 3000);
  await waitFor('deletion made during the outage', async () => (await c.status('stable.default')) === 'NXDOMAIN', 3000);
  await waitFor('state back to 1', async () => (await metric(c.dns.server.registry, 'clusterdns_kubernetes_sync_state', { resource: 'services' })) === 1, 2000);
  t.equal(lines.filter((l) => /services: recovered/.test(l)).length, 1, 'one recovery line');
  t.equal(lines.filter((l) => /services: .*retrying with backoff/.test(l)).length, 1, 'still one failure line');
});

t.test('silent watch: the watchdog restarts it', async (t) => {
  const c = await cluster(t);
  const before = (await metric(c.dns.server.registry, 'clusterdns_kubernetes_restarts_total', { resource: 'services', reason: 'watchdog' })) ?? 0;
  c.api.hangWatches();
  c.api.hangNewWatches = true;
  c.api.apply('services', service('default', 'late', '10.96.0.40'));
  await sleep(300);
  t.equal(await c.status('late.default'), 'NXDOMAIN', 'hung watch delivers nothing');
  c.api.hangNewWatches = false;
  const t0 = performance.now();
  await waitFor('change after watchdog restart', async () => (await c.a('late.default')).length === 1, 5000);
  const ms = performance.now() - t0;
  t.ok(ms < 4000, `seen after ${ms.toFixed(0)} ms (watchdog 1500 ms)`);
  t.ok(((await metric(c.dns.server.registry, 'clusterdns_kubernetes_restarts_total', { resource: 'services', reason: 'watchdog' })) ?? 0) > before, 'watchdog restart counted');
});

t.test('watch stream closed by the server or cut mid-stream: re-watch from the last version, no relist', async (t) => {
  const c = await cluster(t);
  const lists = c.api.listCount('services');
  c.api.closeWatches();
  c.api.apply('services', service('default', 'after-close', '10.96.0.50'));
  await waitFor('event after a clean close', async () => (await c.a('after-close.default')).length === 1, 3000);
  c.api.dropWatches();
  c.api.apply('services', service('default', 'after-drop', '10.96.0.51'));
  await waitFor('event after a dropped connection', async () => (await c.a('after-drop.default')).length === 1, 3000);
  c.api.bookmark();
  t.equal(c.api.listCount('services'), lists, 'no relist needed');
});

/* ------------------------------------------------------------------ source-level: options */

/** What whoever starts a source hands it: here a registry of the test's own and a `test` tag. */
const context = (over: Partial<ApiSourceContext> = {}): ApiSourceContext => ({ log: logger('test'), registry: createRegistry(), ...over });

async function source(t: Test, cfg: Partial<ApiSourceConfig>, prepare?: (api: FakeApiServer) => void, ctx = context()) {
  const api = await new FakeApiServer().start();
  seed(api);
  prepare?.(api);
  const dir = tempDir('informers');
  const src: ApiSource = createApiSource({ kubeconfig: writeKubeconfig(dir, api.url), pods: 'disabled', startupTimeoutMs: 3000, ...TUNING, ...cfg }, ctx);
  const store = new ClusterStore();
  await src.start(store);
  t.teardown(async () => {
    await src.stop();
    await api.stop();
  });
  return { api, src, store };
}

const names = (it: Iterable<{ namespace?: string; name: string }>) => [...it].map((o) => (o.namespace ? `${o.namespace}/${o.name}` : o.name)).sort();

t.test('namespaces: objects of other namespaces are never held', async (t) => {
  const { store } = await source(t, { namespaces: ['team'] });
  t.ok(store.synced);
  t.same(names(store.services()), ['team/db']);
  t.same(names(store.allSlices()), ['team/db-xyz']);
  t.same(names(store.namespaces()), ['team']);
});

t.test('labels / namespace_labels: server-side selectors', async (t) => {
  const { api, store } = await source(t, { labels: 'app=x', namespaceLabels: 'env in (prod)', pods: 'verified' }, (api) => {
    api.apply('services', service('default', 'labelled', '10.96.0.60', { labels: { app: 'x' } }));
    api.apply('endpointslices', endpointSlice('default', 'labelled', 'labelled-1', [{ ip: '10.3.0.1' }], { labels: { app: 'x' } }));
    api.apply('namespaces', namespace('prod', { env: 'prod' }));
    api.apply('pods', pod('default', 'p1', '10.1.0.1', { app: 'x' }));
    api.apply('pods', pod('default', 'p2', '10.1.0.2'));
  });
  t.same(names(store.services()), ['default/labelled']);
  t.same(names(store.allSlices()), ['default/labelled-1']);
  t.same(names(store.namespaces()), ['prod']);
  t.same(names(store.pods()), ['default/p1']);
  for (const r of ['services', 'endpointslices', 'pods'] as const) {
    t.ok(api.requests.filter((q) => q.resource === r).every((q) => q.query.labelSelector === 'app=x'), `${r}: selector on every request`);
  }
  t.ok(api.requests.filter((q) => q.resource === 'namespaces').every((q) => q.query.labelSelector === 'env in (prod)'));
  // A label change turns into ADDED/DELETED on the filtered watch.
  api.apply('services', service('default', 'labelled', '10.96.0.60', { labels: { app: 'y' } }));
  await waitFor('service leaving the selector', () => !store.service('default', 'labelled'), 2000);
  api.apply('pods', pod('default', 'p2', '10.1.0.2', { app: 'x' }));
  await waitFor('pod entering the selector', () => store.podsByAddress('10.1.0.2').length === 1, 2000);
  t.equal(store.podsByAddress('10.1.0.2')[0]!.hostNetwork, false);
  const hostPod = pod('default', 'p2', '10.1.0.2', { app: 'x' });
  api.apply('pods', { ...hostPod, spec: { ...(hostPod.spec as object), hostNetwork: true } });
  await waitFor('spec.hostNetwork through the watch (autopath)', () => store.podsByAddress('10.1.0.2')[0]?.hostNetwork === true, 2000);
});

t.test('pods verified starts a pod watch; noendpoints drops the slice watch', async (t) => {
  const { api, src } = await source(t, { pods: 'insecure', noEndpoints: true });
  t.same(src.status().map((s) => s.resource).sort(), ['namespaces', 'services']);
  t.equal(api.requests.filter((q) => q.resource === 'pods' || q.resource === 'endpointslices').length, 0);
});

t.test('invalid objects: warned once, last good version kept', async (t) => {
  const lines: string[] = [];
  const restore = setLogSink((l) => lines.push(l));
  t.teardown(restore);
  const { api, store } = await source(t, {});
  const bad = service('default', 'web', '10.96.0.10');
  (bad.spec as Record<string, unknown>).type = 'Bogus';
  api.apply('services', bad);
  api.apply('services', { ...bad });
  api.apply('services', service('default', 'marker', '10.96.0.70'));
  await waitFor('later event', () => !!store.service('default', 'marker'), 2000);
  t.same(store.service('default', 'web')?.clusterIPs, ['10.96.0.10'], 'kept');
  // And through a relist.
  api.expireWatches();
  await waitFor('relist', () => api.listCount('services') >= 2, 3000);
  await sleep(200);
  t.same(store.service('default', 'web')?.clusterIPs, ['10.96.0.10'], 'kept across a relist');
  t.equal(lines.filter((l) => l.includes('Service default/web')).length, 1, 'warned once');
});

t.test('apiserver_qps / apiserver_burst throttle LIST pages', async (t) => {
  const { api } = await source(t, { qps: 10, burst: 1, pageSize: 1, startupTimeoutMs: 5000 });
  await waitFor('watches', () => api.openWatches() === 3, 3000);
  const at = api.requests.map((r) => r.at);
  // 3 services + 2 namespaces + 2 slices in pages of one, plus 3 watches: 10 requests at 10/s.
  t.equal(at.length, 10);
  const span = at[at.length - 1]! - at[0]!;
  t.ok(span >= 850, `10 requests took ${span.toFixed(0)} ms at 10 qps, burst 1`);
});

t.test('programming duration: the source reports trigger times, the kubernetes plugin owns the metric', async (t) => {
  const reported: { service: string; headless: boolean; ageMs: number }[] = [];
  const { api, store } = await source(t, {}, undefined, context({
    endpointsProgrammed: (svc, triggerMs) => reported.push({ service: `${svc.namespace}/${svc.name}`, headless: svc.headless, ageMs: Date.now() - triggerMs }),
  }));
  const triggerTime = new Date(Date.now() - 2000).toISOString();
  api.apply('endpointslices', endpointSlice('team', 'db', 'db-xyz', [{ ip: '10.2.0.9' }], { triggerTime }));
  await waitFor('slice update', () => store.slicesByAddress('10.2.0.9').length === 1, 2000);
  t.equal(reported.length, 1, 'one report');
  t.match(reported[0], { service: 'team/db', headless: true });
  t.ok(reported[0]!.ageMs >= 2000 && reported[0]!.ageMs < 4000, `trigger time carried (${reported[0]!.ageMs} ms ago)`);

  const c = await cluster(t);
  const count = async () => ((await c.dns.server.registry.getMetricsAsJSON()).find((m) => m.name === 'coredns_kubernetes_dns_programming_duration_seconds')
    ?.values as { labels: Record<string, string>; value: number; metricName?: string }[] | undefined)
    ?.find((v) => v.metricName?.endsWith('_count') && v.labels.service_kind === 'headless_with_selector')?.value ?? 0;
  const before = await count();
  c.api.apply('endpointslices', endpointSlice('team', 'db', 'db-xyz', [{ ip: '10.2.0.9' }], { triggerTime }));
  await waitFor('slice update served', async () => (await c.a('db.team')).join() === '10.2.0.9', 2000);
  t.equal(await count(), before + 1, 'one observation for the headless service in the server registry');
});

t.test('kubeconfig context and config errors', async (t) => {
  const api = await new FakeApiServer().start();
  t.teardown(() => api.stop());
  const dir = tempDir('informers');
  const kc = writeKubeconfig(dir, api.url);
  t.throws(() => createApiSource({ kubeconfig: kc, context: 'nope', pods: 'disabled' }, context()), /no context named "nope" \(have: fake, broken\)/);
  t.throws(() => createApiSource({ kubeconfig: join(dir, 'missing'), pods: 'disabled' }, context()), /kubeconfig .*missing/);
  const saved = process.env.KUBERNETES_SERVICE_HOST;
  delete process.env.KUBERNETES_SERVICE_HOST;
  t.throws(() => createApiSource({ pods: 'disabled' }, context()), /not running in a Kubernetes pod/);
  if (saved !== undefined) process.env.KUBERNETES_SERVICE_HOST = saved;

  // CONTEXT picks the cluster: `broken` points at a closed port, start() gives up after startup_timeout.
  const src = createApiSource({ kubeconfig: kc, context: 'broken', pods: 'disabled', startupTimeoutMs: 300 }, context());
  t.match(src.description, /127\.0\.0\.1:1/);
  const store = new ClusterStore();
  const t0 = performance.now();
  await src.start(store);
  t.ok(performance.now() - t0 < 1500, 'start() bounded by startup_timeout');
  t.notOk(store.synced);
  t.notOk(src.synced());
  t.ok(src.status().every((s) => !s.synced && s.lastError?.includes('ECONNREFUSED')), 'errors recorded');
  await src.stop();

  // `endpoint URL` over plain http.
  seed(api);
  const ep = createApiSource({ endpoint: api.url, pods: 'disabled' }, context());
  const store2 = new ClusterStore();
  await ep.start(store2);
  t.ok(store2.synced);
  t.same(store2.service('default', 'web')?.clusterIPs, ['10.96.0.10']);
  await ep.stop();
});
