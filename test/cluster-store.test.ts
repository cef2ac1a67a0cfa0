import t from 'tap';
import { mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConvertError, endpointsToSlices, toEndpointSlice, toNamespace, toPod, toService } from '../src/cluster/convert.js';
import { ManifestSource } from '../src/cluster/manifests.js';
import { parseSelector } from '../src/cluster/selector.js';
import { ClusterStore } from '../src/cluster/store.js';
import { waitFor } from './helpers/wait.js';
import { tempDir } from './helpers/temp-dir.js';

const svc = (spec: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  ({ apiVersion: 'v1', kind: 'Service', metadata: { name: 's', namespace: 'ns' }, spec, ...extra });

t.test('toService', async (t) => {
  const s = toService(svc({ clusterIP: '10.0.0.1', ports: [{ port: 80 }] }));
  t.match(s, {
    namespace: 'ns', name: 's', type: 'ClusterIP', clusterIPs: ['10.0.0.1'], headless: false,
    ports: [{ name: '', port: 80, protocol: 'TCP', targetPort: 80 }], sessionAffinity: 'None', sessionAffinityTimeout: 10800,
    externalTrafficPolicy: 'Cluster', internalTrafficPolicy: 'Cluster',
  });
  t.same(toService(svc({ clusterIPs: ['10.0.0.1', 'FD00:0:0::7'] })).clusterIPs, ['10.0.0.1', 'fd00::7'], 'dual-stack, canonical v6');
  t.match(toService(svc({ clusterIP: 'None' })), { headless: true, clusterIPs: [] });
  t.equal(toService({ kind: 'Service', metadata: { name: 'x' }, spec: {} }).namespace, 'default', 'namespace defaults to default');
  t.match(toService(svc({ type: 'ExternalName', externalName: 'My.DB.example.com.' })), { externalName: 'my.db.example.com', clusterIPs: [] });
  t.same(toService(svc({ ports: [{ port: 80, targetPort: 'web8080' }] })).ports[0]!.targetPort, 'web8080');
  t.same(toService(svc({ ports: [{ port: 80, targetPort: '8080' }] })).ports[0]!.targetPort, 8080);
  const lb = toService(svc({ type: 'LoadBalancer', ports: [{ port: 80, nodePort: 31001 }] },
    { status: { loadBalancer: { ingress: [{ ip: '192.168.64.4' }, { ip: '1.2.3.4', ipMode: 'Proxy' }, { hostname: 'lb.example' }] } } }));
  t.same(lb.loadBalancerIPs, ['192.168.64.4'], 'ipMode Proxy and hostnames skipped');
  t.same(lb.loadBalancerIngress, ['192.168.64.4', '1.2.3.4', 'lb.example'], 'DNS reads every entry: ip in any ipMode, else hostname');
  const plain = toService(svc({ type: 'LoadBalancer' }, { status: { loadBalancer: { ingress: [{ ip: '192.0.2.1' }] } } }));
  t.equal(plain.loadBalancerIngress, plain.loadBalancerIPs, 'one array when they agree');
  t.same(toService(svc({}, { status: { loadBalancer: { ingress: [{ hostname: 'LB.Example.' }] } } })).loadBalancerIngress, ['lb.example']);
  t.throws(() => toService(svc({}, { status: { loadBalancer: { ingress: [{ hostname: 'not a name' }] } } })),
    /status\.loadBalancer\.ingress\[0\]\.hostname: not a valid DNS name/);
  t.equal(lb.ports[0]!.nodePort, 31001);
  t.equal(toService(svc({ sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } } })).sessionAffinityTimeout, 60);
  t.same(toService(svc({ loadBalancerSourceRanges: [' 10.1.0.0/16 ', 'FD00::/64'] })).loadBalancerSourceRanges, ['10.1.0.0/16', 'fd00::/64'],
    'source ranges trimmed and canonical (they go into iptables rules as written)');

  const bad: [unknown, RegExp][] = [
    [svc({ ports: [{ port: 'http' }] }), /Service ns\/s: spec\.ports\[0\]\.port: want an integer 1-65535, got "http"/],
    [svc({ ports: [{}] }), /spec\.ports\[0\]\.port: required/],
    [svc({ clusterIP: '10.0.0.300' }), /spec\.clusterIP: want an IP address/],
    [svc({ type: 'Magic' }), /spec\.type: want one of/],
    [svc({ type: 'ExternalName' }), /spec\.externalName: required/],
    [svc({ clusterIPs: ['10.0.0.1', '10.0.0.2'] }), /one IPv4 and one IPv6/],
    [svc({ ports: [{ port: 80 }, { port: 81 }] }), /unique name/],
    [svc({ ports: [{ port: 80, protocol: 'ICMP' }] }), /protocol: want TCP, UDP or SCTP/],
    [svc({ ports: [{ port: 80, name: 'Web Port' }] }), /spec\.ports\[0\]\.name: not a valid port name/],
    [svc({ loadBalancerSourceRanges: ['10.0.0.0/8 -j ACCEPT'] }), /spec\.loadBalancerSourceRanges\[0\]: want a CIDR/],
    [svc({ loadBalancerSourceRanges: ['10.0.0.0/33'] }), /want a CIDR/],
    [svc({ loadBalancerSourceRanges: ['10.0.0.0'] }), /want a CIDR/],
    [{ kind: 'Service', metadata: { name: 'Bad_Name' } }, /metadata\.name: not a valid name/],
    [{ kind: 'Service', metadata: { name: 'x', labels: { on: true } } }, /metadata\.labels\.on: label values must be strings/],
    [{ kind: 'Service' }, /metadata: missing/],
    ['text', /want an object/],
  ];
  for (const [obj, re] of bad) t.throws(() => toService(obj), re, String(re));
  try {
    toService(svc({ type: 'x' }));
    t.fail('should throw');
  } catch (e) {
    t.ok(e instanceof ConvertError, 'ConvertError');
  }
});

t.test('toEndpointSlice and legacy Endpoints', async (t) => {
  const sl = toEndpointSlice({
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
    metadata: { name: 'web-abcde', namespace: 'default', labels: { 'kubernetes.io/service-name': 'web' } },
    addressType: 'IPv6', ports: [{ name: 'http', port: 80 }, {}],
    endpoints: [
      { addresses: ['FD00::0001'], hostname: 'web-0', nodeName: 'n1', targetRef: { kind: 'Pod', name: 'web-0', namespace: 'default' } },
      { addresses: ['fd00::2'], conditions: { ready: false, terminating: true } },
    ],
  });
  t.match(sl, {
    service: 'web', addressType: 'IPv6',
    ports: [{ name: 'http', port: 80, protocol: 'TCP' }, { name: '', port: null, protocol: 'TCP' }],
    endpoints: [
      { addresses: ['fd00::1'], rawAddresses: ['FD00::0001'], ready: true, serving: true, terminating: false, hostname: 'web-0', targetRef: { name: 'web-0' } },
      { addresses: ['fd00::2'], ready: false, serving: false, terminating: true },
    ],
  });
  t.throws(() => toEndpointSlice({ kind: 'EndpointSlice', metadata: { name: 'x' }, addressType: 'IPv4' }), /kubernetes\.io\/service-name.*missing/);
  t.throws(() => toEndpointSlice({
    kind: 'EndpointSlice', metadata: { name: 'x', labels: { 'kubernetes.io/service-name': 's' } }, addressType: 'IPv4',
    ports: [{ name: 'ünicode', port: 80 }],
  }), /ports\[0\]\.name: not a valid port name/);
  t.throws(() => toEndpointSlice({
    kind: 'EndpointSlice', metadata: { name: 'x', labels: { 'kubernetes.io/service-name': 's' } }, addressType: 'IPv4',
    endpoints: [{ addresses: ['fd00::1'] }],
  }), /endpoints\[0\]\.addresses\[0\]: fd00::1 is not an IPv4 address/);

  const slices = endpointsToSlices({
    kind: 'Endpoints', metadata: { name: 'redis', namespace: 'default' },
    subsets: [{
      addresses: [{ ip: '172.17.0.2', hostname: 'r0', targetRef: { kind: 'Pod', name: 'redis-1' } }, { ip: 'fd00::2' }],
      notReadyAddresses: [{ ip: '172.17.0.9' }],
      ports: [{ port: 6379, protocol: 'TCP' }],
    }],
  });
  t.match(slices, [
    { name: 'redis-0', service: 'redis', addressType: 'IPv4', labels: { 'kubernetes.io/service-name': 'redis' },
      endpoints: [{ addresses: ['172.17.0.2'], ready: true, hostname: 'r0' }, { addresses: ['172.17.0.9'], ready: false }],
      ports: [{ name: '', port: 6379 }] },
    { name: 'redis-0-ipv6', addressType: 'IPv6', endpoints: [{ addresses: ['fd00::2'] }] },
  ]);
});

t.test('toNamespace and toPod', async (t) => {
  t.same(toNamespace({ kind: 'Namespace', metadata: { name: 'prod', labels: { env: 'prod' } } }), { name: 'prod', labels: { env: 'prod' } });
  const pod = (status: unknown, md: Record<string, unknown> = {}) => toPod({ kind: 'Pod', metadata: { name: 'p', namespace: 'ns', ...md }, status });
  t.same(pod({ phase: 'Running', podIP: '10.0.0.5' }), { namespace: 'ns', name: 'p', ip: '10.0.0.5', hostNetwork: false, labels: {} });
  t.equal(toPod({ kind: 'Pod', metadata: { name: 'p', namespace: 'ns' }, spec: { hostNetwork: true }, status: { phase: 'Running', podIP: '10.0.0.5' } })?.hostNetwork, true);
  t.throws(() => toPod({ kind: 'Pod', metadata: { name: 'p', namespace: 'ns' }, spec: { hostNetwork: 'yes' }, status: { podIP: '10.0.0.5' } }),
    /Pod ns\/p: spec\.hostNetwork: want true or false/);
  t.equal(pod({ phase: 'Succeeded', podIP: '10.0.0.5' }), null, 'finished pods are skipped');
  t.equal(pod({ phase: 'Failed', podIP: '10.0.0.5' }), null);
  t.equal(pod({ phase: 'Running', podIP: '10.0.0.5' }, { deletionTimestamp: '2024-01-01T00:00:00Z' }), null, 'terminating');
  t.equal(pod({ phase: 'Pending' }), null, 'no IP yet');
  t.throws(() => pod({ podIP: 'x' }), /Pod ns\/p: status\.podIP: want an IP address/);
});

t.test('label selectors', async (t) => {
  const cases: [string, Record<string, string>, boolean][] = [
    ['app=web', { app: 'web' }, true],
    ['app==web', { app: 'db' }, false],
    ['app!=web', {}, true],
    ['app!=web', { app: 'web' }, false],
    ['env in (dev, prod),tier', { env: 'dev', tier: 'x' }, true],
    ['env in (dev, prod),tier', { env: 'dev' }, false],
    ['env notin (dev)', { env: 'qa' }, true],
    ['!legacy', { legacy: 'yes' }, false],
    ['kubernetes.io/metadata.name=prod', { 'kubernetes.io/metadata.name': 'prod' }, true],
    ['', { any: 'thing' }, true],
  ];
  for (const [sel, labels, want] of cases) t.equal(parseSelector(sel).matches(labels), want, `${sel} ${JSON.stringify(labels)}`);
  t.throws(() => parseSelector('a b c'), /cannot parse/);
  t.throws(() => parseSelector('a=b c'), /invalid label value|cannot parse/);
});

t.test('store: indexes, serial and change events', async (t) => {
  const store = new ClusterStore();
  const events: string[] = [];
  store.onChange((cs) => events.push(cs.map((c) => `${c.op} ${c.kind} ${c.key}${c.dns ? '' : ' (no dns)'}`).join(', ')));
  const s1 = toService(svc({ clusterIP: '10.0.0.1', ports: [{ port: 80 }], externalIPs: ['80.11.12.10'] }));
  const gen = store.generation;
  store.upsertService(s1);
  t.equal(store.servicesByClusterIP('10.0.0.1')[0]?.name, 's');
  t.equal(store.servicesByExternalIP('80.11.12.10')[0]?.name, 's');
  t.ok(store.generation > gen, 'generation bumped');
  store.upsertService(toService(svc({ clusterIP: '10.0.0.1', ports: [{ port: 80 }], externalIPs: ['80.11.12.10'], sessionAffinity: 'ClientIP' })));
  t.same(events, ['add Service ns/s', 'update Service ns/s (no dns)'], 'VIP-only change is not a DNS change');
  store.deleteService('ns', 's');
  t.same(store.servicesByClusterIP('10.0.0.1'), []);
});

const MANIFESTS = `
apiVersion: v1
kind: Service
metadata: {name: a, namespace: team}
spec: {clusterIP: 10.0.0.1, ports: [{port: 80}]}
---
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Service
    metadata: {name: b}
    spec: {clusterIP: 10.0.0.2, ports: [{port: 80}]}
  - apiVersion: discovery.k8s.io/v1
    kind: EndpointSlice
    metadata: {name: b-1, labels: {kubernetes.io/service-name: b}}
    addressType: IPv4
    endpoints: [{addresses: [10.1.0.1]}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: ignored}
`;

t.test('manifests source: file, implicit namespaces, bad documents, polling', async (t) => {
  const dir = tempDir('manifests');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'cluster.yaml');
  writeFileSync(file, MANIFESTS);
  const store = new ClusterStore();
  const warnings: string[] = [];
  const src = new ManifestSource(file, { intervalMs: 50, warn: (m) => warnings.push(m) });
  await src.start(store);
  t.teardown(() => src.stop());
  t.ok(store.synced, 'synced after the first load');
  t.same([...store.services()].map((s) => `${s.namespace}/${s.name}`).sort(), ['default/b', 'team/a']);
  t.same([...store.namespaces()].map((n) => n.name).sort(), ['default', 'team'], 'namespaces created implicitly');
  t.equal(store.slicesFor('default', 'b')[0]?.endpoints[0]?.addresses[0], '10.1.0.1', 'List items');
  t.same(warnings, []);

  // Document 1 turns bad: its last good objects stay, the error names file and document.
  writeFileSync(file, MANIFESTS.replace('ports: [{port: 80}]}', 'ports: [{port: eighty}]}') + '---\nkind: Service\nmetadata: {name: c}\nspec: {clusterIP: 10.0.0.3}\n');
  const t0 = Date.now();
  await waitFor('service c from the new file', () => !!store.service('default', 'c'), 2000);
  const took = Date.now() - t0;
  t.ok(took < 2000, `applied within 2 s (${took} ms)`);
  t.ok(store.service('team', 'a'), 'last good object of the bad document stays');
  t.match(warnings.join('\n'), new RegExp(`${file.replace(/[/.]/g, '\\$&')}: document 1 \\(line 2\\): Service team/a: spec\\.ports\\[0\\]\\.port`));

  // YAML syntax error in a new document: reported, rest applied.
  writeFileSync(file, MANIFESTS + '---\n# nothing\n---\nkind: [unclosed\n');
  await waitFor('service c gone', () => !store.service('default', 'c'), 2000);
  t.match(src.problems.join('\n'), /document 5 \(line \d+\): /);
  t.ok(store.service('team', 'a'));

  // Deleting an object removes it.
  writeFileSync(file, MANIFESTS.split('---')[0]!);
  await waitFor('service b gone', () => !store.service('default', 'b'), 2000);
  t.same([...store.namespaces()].map((n) => n.name), ['team']);
});

t.test('manifests source: directory with a ConfigMap-style symlink swap', async (t) => {
  const dir = tempDir('cm');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const v1 = join(dir, '..v1'), v2 = join(dir, '..v2');
  mkdirSync(v1);
  mkdirSync(v2);
  writeFileSync(join(v1, 'a.yaml'), 'kind: Service\nmetadata: {name: one}\nspec: {clusterIP: 10.0.0.1}\n');
  writeFileSync(join(v2, 'a.yaml'), 'kind: Service\nmetadata: {name: two}\nspec: {clusterIP: 10.0.0.2}\n');
  writeFileSync(join(v1, 'b.json'), JSON.stringify({ kind: 'Namespace', metadata: { name: 'json-ns' } }));
  symlinkSync('..v1', join(dir, '..data'));
  symlinkSync('..data/a.yaml', join(dir, 'a.yaml'));
  symlinkSync('..data/b.json', join(dir, 'b.json'));
  writeFileSync(join(dir, 'notes.txt'), 'not a manifest');
  const store = new ClusterStore();
  const src = new ManifestSource(dir, { intervalMs: 50 });
  await src.start(store);
  t.teardown(() => src.stop());
  t.ok(store.service('default', 'one'));
  t.ok(store.namespace('json-ns'), 'json files are read');
  symlinkSync('..v2', join(dir, '..data_tmp'));
  renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  await waitFor('service two', () => !!store.service('default', 'two'), 2000);
  t.notOk(store.service('default', 'one'));
  t.ok(store.namespace('json-ns'), 'a file that vanished keeps its last good objects');
});

t.test('embedded snapshot zones/cluster.yaml loads cleanly', async (t) => {
  const store = new ClusterStore();
  const warnings: string[] = [];
  const src = new ManifestSource(join(import.meta.dirname, '..', 'zones', 'cluster.yaml'), { warn: (m) => warnings.push(m) });
  await src.start(store);
  await src.stop();
  t.same(warnings, []);
  t.equal(store.service('default', 'myweb-svc-ses')?.sessionAffinity, 'ClientIP');
  t.same(store.slicesFor('default', 'myweb-svc-ses')[0]?.endpoints.map((e) => e.addresses[0]), ['10.233.90.63', '10.233.92.235', '10.233.96.74']);
  t.equal(store.service('prod', 'my-service')?.externalName, 'my.database.example.com');
  t.equal(store.service('default', 'test-np')?.ports[0]?.nodePort, 31001);
  t.same(store.service('kube-system', 'kube-dns')?.ports.map((p) => `${p.name}/${p.port}/${p.protocol}`), ['dns/53/UDP', 'dns-tcp/53/TCP', 'metrics/9153/TCP']);
});

t.test('manifests: JSON files (a List, as kubectl get -o json writes) and a JSON syntax error with its line', async (t) => {
  const dir = tempDir('json');
  const list = {
    apiVersion: 'v1', kind: 'List', items: [
      { apiVersion: 'v1', kind: 'Service', metadata: { name: 'j', namespace: 'json' }, spec: { clusterIP: '10.0.0.9', ports: [{ port: 80 }] } },
    ],
  };
  writeFileSync(join(dir, 'a.json'), JSON.stringify(list, null, 2));
  const warnings: string[] = [];
  const store = new ClusterStore();
  const src = new ManifestSource(dir, { intervalMs: 50, warn: (m) => warnings.push(m) });
  await src.start(store);
  t.teardown(() => src.stop());
  t.same(store.service('json', 'j')?.clusterIPs, ['10.0.0.9']);
  t.ok(store.namespace('json'), 'namespace created implicitly');
  writeFileSync(join(dir, 'a.json'), '{\n  "kind": "List",\n  "items": [\n    {"kind": "Service"\n  ]\n}\n');
  await src.poll();
  t.match(warnings.join('\n'), /a\.json: document 1 \(line [45]\): /, 'the error names file, document and line');
  t.same(store.service('json', 'j')?.clusterIPs, ['10.0.0.9'], 'last good objects stay');
});
