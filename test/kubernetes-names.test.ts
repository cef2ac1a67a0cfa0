import t from 'tap';
import { ClusterStore } from '../src/cluster/store.js';
import { toService } from '../src/cluster/convert.js';
import { KubernetesPlugin } from '../src/plugins/kubernetes/handler.js';
import { endpointLabel, isReverse, parseExternalRequest, parseRequest, podLabelToIP, trimZone } from '../src/plugins/kubernetes/names.js';
import { tryParseDuration as parseDuration } from '../src/pkg/duration.js';
import { Fall } from '../src/pkg/fall.js';
import { RCODE, TYPE } from '../src/server/wire/constants.js';
import { decodeMessage, encodeMessage } from '../src/server/wire/message.js';
import { isParseFailure, parseQuery } from '../src/server/wire/query.js';
import type { Query, Reply } from '../src/server/types.js';

const Z = 'cluster.local.';

t.test('parseRequest', async (t) => {
  const cases: [string, string | null][] = [
    // name → port.protocol.endpoint.service.namespace.podOrSvc, null = not a cluster name
    [Z, '.....'],
    [`svc.${Z}`, '.....'],
    [`pod.${Z}`, '.....'],
    [`ns.svc.${Z}`, '....ns.svc'],
    [`web.ns.svc.${Z}`, '...web.ns.svc'],
    [`web-0.web.ns.svc.${Z}`, '..web-0.web.ns.svc'],
    [`_http._tcp.web.ns.svc.${Z}`, 'http.tcp..web.ns.svc'],
    [`http.tcp.web.ns.svc.${Z}`, 'http.tcp..web.ns.svc'],
    [`_._tcp.web.ns.svc.${Z}`, '.tcp..web.ns.svc'],
    [`1-2-3-4.ns.pod.${Z}`, '...1-2-3-4.ns.pod'],
    [`x.1-2-3-4.ns.pod.${Z}`, '..x.1-2-3-4.ns.pod'],
    [`a.b.c.web.ns.svc.${Z}`, null],
    [`foo.${Z}`, null],
    [`dns-version.${Z}`, null],
    [`web.ns.foo.${Z}`, null],
    ['example.org.', null],
  ];
  for (const [name, want] of cases) {
    const r = parseRequest(name, Z);
    t.equal(r && [r.port, r.protocol, r.endpoint, r.service, r.namespace, r.podOrSvc].join('.'), want, name);
  }
  t.equal(parseRequest('web.ns.svc.', '.')?.service, 'web', 'root zone');

  const E = 'example.com.';
  const external: [string, string | null][] = [
    // k8s_external's names: no svc label; the endpoint label loses a leading `_` too (external.go)
    [`ns.${E}`, '....ns.svc'],
    [`web.ns.${E}`, '...web.ns.svc'],
    [`web-0.web.ns.${E}`, '..web-0.web.ns.svc'],
    [`_web-0.web.ns.${E}`, '..web-0.web.ns.svc'],
    [`_http._tcp.web.ns.${E}`, 'http.tcp..web.ns.svc'],
    [`a.b.c.web.ns.${E}`, null],
    [E, null],
    ['example.org.', null],
  ];
  for (const [name, want] of external) {
    const r = parseExternalRequest(name, E);
    t.equal(r && [r.port, r.protocol, r.endpoint, r.service, r.namespace, r.podOrSvc].join('.'), want, `external ${name}`);
  }
  t.equal(trimZone('a.b.', '.'), 'a.b');
  t.equal(trimZone('xcluster.local.', Z), null);
});

t.test('endpoint labels and pod labels', async (t) => {
  const labels: [string, string | undefined, string | undefined, boolean, string][] = [
    ['10.0.0.1', 'web-0', 'pod', true, 'web-0'],
    ['10.0.0.1', undefined, 'my-pod', true, 'my-pod'],
    ['10.0.0.1', undefined, 'my-pod', false, '10-0-0-1'],
    ['10.0.0.1', undefined, 'p'.repeat(64), true, '10-0-0-1'],
    ['5678:abcd::1', undefined, undefined, false, '5678-abcd--1'],
    ['fd00::', undefined, undefined, false, 'fd00--0'],
    ['fd00:0:0::1', undefined, undefined, false, 'fd00-0-0--1'],
  ];
  for (const [ip, host, pod, mode, want] of labels) t.equal(endpointLabel(ip, host, pod, mode), want, `${ip} ${host} ${pod} ${mode}`);
  const pods: [string, string | undefined][] = [
    ['10-9-4-4', '10.9.4.4'], ['fd00--1', 'fd00::1'], ['1-2-3', undefined], ['1-2-3-4-5', undefined],
    ['not-an-ip', undefined], ['1-2-3-999', undefined], ['fd00-0-0-0-0-0-0-1', 'fd00::1'],
  ];
  for (const [label, want] of pods) t.equal(podLabelToIP(label), want, label);
  t.ok(isReverse('1.0.0.10.in-addr.arpa.'));
  t.ok(isReverse('ip6.arpa.'));
  t.notOk(isReverse('in-addr.arpa.example.'));
  t.equal(parseDuration('5s'), 5000);
  t.equal(parseDuration('1m30s'), 90000);
  t.equal(parseDuration('250ms'), 250);
  t.equal(parseDuration('soon'), undefined);
});

/* Handler paths dig cannot show: unsynced store, zone transfers, the reply cache. */
function query(name: string, type: number): Query {
  const pq = parseQuery(encodeMessage({ id: 1, qr: false, rcode: 0, question: { name, type, class: 1 }, answer: [], authority: [], additional: [] }));
  if (isParseFailure(pq)) throw new Error(pq.reason);
  return { ...pq, proto: 'udp', remoteAddress: '127.0.0.1', remotePort: 5353, family: 1, server: 'dns://:53', zone: Z, start: 0 };
}

t.test('handler: unsynced, AXFR, cache', async (t) => {
  const store = new ClusterStore();
  const plugin = new KubernetesPlugin({
    zones: [Z, 'in-addr.arpa.'], primaryZone: Z, ttl: 5, namespaces: new Set(), namespaceLabels: null, labels: null,
    pods: 'disabled', endpointPodNames: false, noEndpoints: false, fallthrough: Fall.never, ignoreEmptyService: false, localIPs: [], hostSearch: [],
  }, store, { description: 'test', start: async () => {}, stop: async () => {} }, { resolve: async () => { throw new Error('no upstream'); } });
  const next = () => ({ rcode: RCODE.REFUSED, plugin: 'next' });
  const serve = (name: string, type: number) => plugin.serve(query(name, type), next) as Reply;

  t.notOk(plugin.ready(), 'not ready before sync');
  const unsynced = serve(`nosuch.default.svc.${Z}`, TYPE.A);
  t.equal(unsynced.rcode, RCODE.SERVFAIL, 'would-be NXDOMAIN is SERVFAIL before sync');
  t.equal(unsynced.msg?.authority[0]?.type, TYPE.SOA, 'with the SOA');
  t.equal(serve(`nosuch.default.svc.${Z}`, TYPE.AXFR).rcode, RCODE.REFUSED, 'AXFR refused');
  t.equal(serve('example.org.', TYPE.A).plugin, 'next', 'other zones pass on');

  store.batch(() => {
    store.upsertNamespace({ name: 'default', labels: {} });
    store.upsertService(toService({ kind: 'Service', metadata: { name: 'redis' }, spec: { clusterIP: '10.0.0.1', ports: [{ port: 6379 }] } }));
  });
  store.synced = true;
  t.ok(plugin.ready());
  t.equal(serve(`nosuch.default.svc.${Z}`, TYPE.A).rcode, RCODE.NXDOMAIN, 'NXDOMAIN once synced');
  const a = serve(`redis.default.svc.${Z}`, TYPE.A);
  t.equal(serve(`redis.default.svc.${Z}`, TYPE.A).msg, a.msg, 'the same Message object for the same lower-case question');
  t.same(a.msg?.answer.map((r) => r.data), ['10.0.0.1']);
  // Other spellings: the memoised upper-case encoding with the asker's question copied in (no build).
  for (const spelling of [`Redis.Default.svc.${Z}`, `rEDIS.default.SVC.${Z}`]) {
    const mixed = serve(spelling, TYPE.A);
    t.notOk(mixed.msg, `${spelling}: served as wire`);
    const m = decodeMessage(mixed.wire!);
    t.equal(m.question?.name, spelling, `${spelling}: the asker's question`);
    t.same(m.answer.map((r) => [r.name, r.data]), [[spelling, '10.0.0.1']], `${spelling}: owner in the asker's case, as CoreDNS writes it`);
  }
  t.equal(plugin.memoised, 2, 'one entry per (type, lower-case name) whatever the spellings: nosuch and redis');
  store.upsertService(toService({ kind: 'Service', metadata: { name: 'redis' }, spec: { clusterIP: '10.0.0.2', ports: [{ port: 6379 }] } }));
  const c = serve(`redis.default.svc.${Z}`, TYPE.A);
  t.not(c.msg, a.msg, 'a store change drops the cache');
  t.same(c.msg?.answer.map((r) => r.data), ['10.0.0.2']);
  t.same(a.msg?.answer.map((r) => r.data), ['10.0.0.1'], 'returned messages are never mutated');
});
