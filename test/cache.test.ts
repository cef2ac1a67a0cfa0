import t from 'tap';
import { join } from 'node:path';
import { SetupError, type Directive } from '../src/corefile/types.js';
import { Cache } from '../src/plugins/cache/cache.js';
import { parseCache } from '../src/plugins/cache/setup.js';
import { createRegistry, type Registry } from '../src/pkg/metrics.js';
import { cacheMetrics } from '../src/plugins/cache/metrics.js';
import { composeChain } from '../src/server/config.js';
import type { Reply } from '../src/server/types.js';
import { RCODE, TYPE } from '../src/server/wire/constants.js';
import { decodeMessage, type Message } from '../src/server/wire/message.js';
import { dig } from './helpers/dig.js';
import { inProcessServer } from './helpers/in-process.js';
import { startServer } from './helpers/server.js';
import { exampleZone, makeQuery, startKnot } from './helpers/upstream.js';
import { sleep } from './helpers/wait.js';

const zone = exampleZone('www A 192.0.2.1\nshort 2 A 192.0.2.3\n');

async function metric(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = registry.getSingleMetric(name);
  if (!m) return 0;
  const { values } = await m.get();
  return values.filter((v) => Object.entries(labels).every(([k, want]) => String((v.labels as Record<string, unknown>)[k]) === want))
    .reduce((n, v) => n + v.value, 0);
}

t.test('setup: defaults and every wrong option', async (t) => {
  const d = (args: string[], children: [string, ...string[]][] = []): Directive => ({
    name: 'cache', args, file: 'Corefile', line: 7,
    children: children.map(([name, ...a], i) => ({ name, args: a, children: [], file: 'Corefile', line: 8 + i })),
  });
  const def = parseCache(d([]), ['cluster.local.']);
  t.same([def.zones, def.successCap, def.successMaxTtl, def.denialMaxTtl, def.successMinTtl, def.servfailTtl, def.maxBytes],
    [['cluster.local.'], 9984, 3600, 1800, 5, 5, 32 << 20]);
  const sizes: [string, number][] = [['65536', 65536], ['512k', 512 << 10], ['8M', 8 << 20], ['1GiB', 1 << 30], ['64mib', 64 << 20]];
  for (const [text, n] of sizes) t.equal(parseCache(d([], [['max_bytes', text]]), ['.']).maxBytes, n, `max_bytes ${text}`);
  const c = parseCache(d(['30', 'Example.ORG'], [
    ['success', '5000', '60', '1'], ['denial', '100'], ['prefetch', '3', '2m', '50%'], ['serve_stale', '10m', 'verify'],
    ['servfail', '2s'], ['disable', 'denial', 'cluster.local'], ['keepttl'],
  ]), ['.']);
  t.same([c.zones, c.successCap, c.successMaxTtl, c.successMinTtl, c.denialCap, c.denialMaxTtl], [['example.org.'], 4864, 60, 1, 1024, 30]);
  t.same([c.prefetch, c.prefetchWindowMs, c.prefetchPercent, c.staleMs, c.verifyStale, c.servfailTtl, c.disableDenial, c.keepTtl],
    [3, 120_000, 50, 600_000, true, 2, ['cluster.local.'], true]);
  const bad: [string, Directive, RegExp][] = [
    ['zero ttl', d(['0']), /Corefile:7 .*plugin\/cache: cache TTL can not be zero/],
    ['success arity', d([], [['success']]), /Corefile:8 .*success needs CAPACITY/],
    ['success not a number', d([], [['success', 'lots']]), /success capacity: 'lots' is not an integer/],
    ['negative min ttl', d([], [['denial', '100', '10', '-1']]), /min TTL can not be negative/],
    ['prefetch percent', d([], [['prefetch', '1', '1m', '95%']]), /range \[10, 90\]/],
    ['prefetch percent sign', d([], [['prefetch', '1', '1m', '50']]), /percentage must look like 10%/],
    ['serve_stale mode', d([], [['serve_stale', '1h', 'later']]), /refresh mode: later/],
    ['serve_stale response ttl', d([], [['serve_stale', '1h', 'immediate', '30s']]), /not supported/],
    ['servfail too long', d([], [['servfail', '6m']]), /over 5 minutes/],
    ['disable what', d([], [['disable', 'everything']]), /must be "success" or "denial"/],
    ['keepttl args', d([], [['keepttl', 'yes']]), /keepttl: takes no arguments/],
    ['unknown', d([], [['sizes', '1']]), /Corefile:8 .*unknown property 'sizes'/],
    ['twice', d([], [['keepttl'], ['keepttl']]), /Corefile:9 .*given more than once/],
    ['max_bytes zero', d([], [['max_bytes', '0']]), /Corefile:8 .*max_bytes: '0' is not a positive size/],
    ['max_bytes unit', d([], [['max_bytes', '8MB']]), /max_bytes: '8MB' is not a positive size/],
    ['max_bytes arity', d([], [['max_bytes']]), /Corefile:8 .*max_bytes/],
  ];
  for (const [what, dir, re] of bad) {
    t.throws(() => parseCache(dir, ['.']), re, what);
    try { parseCache(dir, ['.']); } catch (e) { t.ok(e instanceof SetupError, `${what}: SetupError`); }
  }
});

t.test('in front of a plugin answering with a Message: TTL flattening, SERVFAIL, DO key', async (t) => {
  const msg = (rcode: number, ttls: number[]): Message => ({
    id: 0, rcode, question: { name: 'x.test.', type: TYPE.A, class: 1 },
    answer: ttls.map((ttl, i) => ({ name: 'x.test.', type: TYPE.A, ttl, data: `10.0.0.${i + 1}` })),
    authority: [], additional: [],
  });
  let calls = 0;
  let next: () => Reply = () => ({ rcode: 0, msg: msg(0, [300, 60]), plugin: 'kubernetes' });
  const cache = new Cache(parseCache({ name: 'cache', args: [], children: [], file: 'C', line: 1 }, ['.']), cacheMetrics(createRegistry()));
  // The block's chain as the server runs it: cache in front of a plugin that counts its calls.
  const chain = composeChain([cache, { name: 'kubernetes', serve: () => { calls++; return next(); } }]);
  const first = await chain(makeQuery('x.test.', TYPE.A));
  t.same(decodeMessage(first.wire!).answer.map((r) => r.ttl), [60, 60], 'all TTLs set to the lowest, like CoreDNS');
  t.equal(first.plugin, 'kubernetes');
  const hit = chain(makeQuery('X.TEST.', TYPE.A));
  t.notOk(hit instanceof Promise, 'a hit is answered synchronously');
  const m = decodeMessage((hit as Reply).wire!);
  t.same(m.answer.map((r) => r.data), ['10.0.0.1', '10.0.0.2']);
  t.ok(m.aa, 'AA on cached answers (CoreDNS)');
  t.equal((hit as Reply).plugin, 'cache');
  t.equal(calls, 1);
  next = () => ({ rcode: RCODE.SERVFAIL, msg: msg(RCODE.SERVFAIL, []), plugin: 'forward' });
  await chain(makeQuery('fail.test.', TYPE.A));
  const again = await chain(makeQuery('fail.test.', TYPE.A));
  t.equal(again.rcode, RCODE.SERVFAIL, 'SERVFAIL cached');
  t.equal(calls, 2);
  next = () => ({ rcode: RCODE.SERVFAIL, plugin: 'forward' });
  await chain(makeQuery('bare.test.', TYPE.A));
  await chain(makeQuery('bare.test.', TYPE.A));
  t.equal(calls, 4, 'a bare error (nobody answered) is never cached');
  await chain(makeQuery('dnssec.test.', TYPE.A, { do: true }));
  await chain(makeQuery('dnssec.test.', TYPE.A, { do: false }));
  t.equal(calls, 6, 'the DO bit is part of the key');
});

t.test('answers it does not store still pass with capped TTLs (CoreDNS caps before deciding to store)', async (t) => {
  let calls = 0;
  let next: () => Reply = () => ({ rcode: 0, plugin: 'kubernetes' });
  const cache = new Cache(parseCache({ name: 'cache', args: ['30'], children: [], file: 'C', line: 1 }, ['.']), cacheMetrics(createRegistry()));
  const chain = composeChain([cache, { name: 'kubernetes', serve: () => { calls++; return next(); } }]);
  const rr = (ttl: number) => ({ name: 'x.test.', type: TYPE.A, ttl, data: '10.0.0.1' });
  const cases: [string, Message, number][] = [
    ['truncated', { id: 0, tc: true, rcode: 0, question: { name: 'x.test.', type: TYPE.A, class: 1 }, answer: [rr(300)], authority: [], additional: [] }, 30],
    ['NXDOMAIN with an answer (other error): 5 s fail-safe',
      { id: 0, rcode: RCODE.NXDOMAIN, question: { name: 'x.test.', type: TYPE.A, class: 1 }, answer: [rr(300)], authority: [], additional: [] }, 5],
    ['delegation: 5 s fail-safe', {
      id: 0, rcode: 0, question: { name: 'x.test.', type: TYPE.A, class: 1 }, answer: [],
      authority: [{ name: 'test.', type: TYPE.NS, ttl: 86400, data: 'ns.test.' }], additional: [{ name: 'ns.test.', type: TYPE.A, ttl: 86400, data: '10.0.0.53' }],
    }, 5],
  ];
  for (const [what, msg, ttl] of cases) {
    next = () => ({ rcode: msg.rcode, msg, plugin: 'kubernetes' });
    const before = calls;
    const r = await chain(makeQuery('x.test.', TYPE.A));
    const m = decodeMessage(r.wire!);
    t.same([...m.answer, ...m.authority, ...m.additional].map((x) => x.ttl), [...msg.answer, ...msg.authority, ...msg.additional].map(() => ttl), `${what}: TTL ${ttl}`);
    t.equal(r.rcode, msg.rcode, `${what}: rcode kept`);
    await chain(makeQuery('x.test.', TYPE.A));
    t.equal(calls - before, what.startsWith('delegation') ? 1 : 2, `${what}: ${what.startsWith('delegation') ? 'stored' : 'not stored'}`);
    cache.close();
  }
});

t.test('answers it does not store from knotd: capped all the same', async (t) => {
  const up = await startKnot({ zones: { 'example.com.': `$ORIGIN example.com.
$TTL 300
@ SOA ns hostmaster 1 3600 600 86400 60
@ NS ns
ns A 127.0.0.1
alias CNAME www.example.net.
sub NS ns.sub
ns.sub A 127.0.0.2
` } });
  t.teardown(up.stop);
  const srv = await startServer(`. {\n  cache 30\n  forward . ${up.addr}\n}\n`);
  t.teardown(srv.stop);
  const misses = () => metric(srv.server.registry, 'coredns_cache_misses_total');
  const m0 = await misses();
  const chain = await dig(srv.port, ['alias.example.com', 'A', '+norecurse']);
  t.same(chain.answer.map((r) => [r.type, r.data, r.ttl]), [['CNAME', 'www.example.net.', 30]], 'a CNAME chain that does not end: capped, not stored');
  await sleep(1100);
  t.equal((await dig(srv.port, ['alias.example.com', 'A', '+norecurse'])).answer[0]?.ttl, 30, 'asked again upstream');
  t.equal(await misses() - m0, 2, 'both were misses');
  const referral = await dig(srv.port, ['x.sub.example.com', 'A', '+norecurse']);
  t.same(referral.authority.map((r) => [r.type, r.ttl]), [['NS', 5]], 'a delegation gets the 5 s fail-safe TTL (CoreDNS)');
  t.same(referral.additional.map((r) => [r.data, r.ttl]), [['127.0.0.2', 5]]);
});

t.test('in front of kubernetes: another spelling of a cached question gets the stored names (no respelling through the question)', async (t) => {
  const srv = await inProcessServer(`cluster.local {\n  cache 30\n  kubernetes {\n    manifests ${join(import.meta.dirname, '..', 'zones', 'cluster.yaml')}\n  }\n}\n`);
  t.teardown(() => srv.close());
  const stored = [
    '_http._tcp.myweb-svc-multi.default.svc.cluster.local. 5 IN SRV 0 100 80 myweb-svc-multi.default.svc.cluster.local.',
  ];
  t.same((await srv.ask('_http._tcp.myweb-svc-multi.default.svc.cluster.local.', 'SRV')).answer, stored);
  const other = await srv.ask('_http._tcp.MyWeb-Svc-Multi.DEFAULT.svc.ClUsTeR.lOcAl.', 'SRV');
  t.equal(other.msg.question?.name, '_http._tcp.MyWeb-Svc-Multi.DEFAULT.svc.ClUsTeR.lOcAl.', 'the question as asked');
  t.same(other.answer.map((l) => l.replace(/ \d+ IN/, ' 5 IN')), stored, 'records as first stored');
  t.same(other.extra.map((l) => l.split(' ')[0]), ['myweb-svc-multi.default.svc.cluster.local.'], 'the additional owner is not respelled');
});

t.test('hit, miss and TTL decrement in front of forward to knotd', async (t) => {
  const up = await startKnot({ zones: { 'example.com.': zone } });
  let upStopped = false;
  t.teardown(async () => { if (!upStopped) await up.stop(); });
  const srv = await startServer(`. {\n  cache 30\n  forward . ${up.addr}\n}\n`);
  t.teardown(srv.stop);
  const before = { hits: await metric(srv.server.registry, 'coredns_cache_hits_total'), misses: await metric(srv.server.registry, 'coredns_cache_misses_total'), req: await metric(srv.server.registry, 'coredns_cache_requests_total') };
  const first = await dig(srv.port, ['www.example.com']);
  t.equal(first.answer[0]?.ttl, 30, 'TTL capped at the cache TTL');
  await sleep(1100);
  const second = await dig(srv.port, ['www.example.com']);
  t.same(second.answer.map((r) => r.data), ['192.0.2.1']);
  t.ok(second.answer[0]!.ttl <= 29 && second.answer[0]!.ttl >= 28, `TTL decremented (${second.answer[0]!.ttl})`);
  t.equal(await metric(srv.server.registry, 'coredns_cache_hits_total') - before.hits, 1);
  t.equal(await metric(srv.server.registry, 'coredns_cache_misses_total') - before.misses, 1);
  t.equal(await metric(srv.server.registry, 'coredns_cache_requests_total') - before.req, 2);
  t.ok(await metric(srv.server.registry, 'coredns_cache_entries', { type: 'success' }) >= 1);
  const nx = await dig(srv.port, ['nope.example.com']);
  t.equal(nx.status, 'NXDOMAIN');
  t.ok(await metric(srv.server.registry, 'coredns_cache_entries', { type: 'denial' }) >= 1, 'NXDOMAIN with SOA in the denial cache');
  await up.stop();
  upStopped = true;
  const cached = await dig(srv.port, ['WWW.example.com']);
  t.same(cached.answer.map((r) => r.data), ['192.0.2.1'], 'served from cache with the upstream gone');
  t.equal(cached.answer[0]!.name, 'www.example.com.', 'a hit serves the records as stored (CoreDNS), the question as asked');
  t.match(cached.raw, /;WWW\.example\.com\.\s+IN\s+A/);
  t.equal((await dig(srv.port, ['nope.example.com'])).status, 'NXDOMAIN', 'denial served from cache');
});

t.test('serve_stale: expired entries still answer after the upstream died', async (t) => {
  for (const mode of ['immediate', 'verify']) {
    const up = await startKnot({ zones: { 'example.com.': zone } });
    let upStopped = false;
    t.teardown(async () => { if (!upStopped) await up.stop(); });
    const srv = await startServer(`. {\n  errors\n  cache {\n    success 1024 1 1\n    serve_stale 1h ${mode}\n  }\n  forward . ${up.addr}\n}\n`);
    t.teardown(srv.stop);
    t.equal((await dig(srv.port, ['www.example.com'])).answer[0]?.ttl, 1);
    await up.stop();
    upStopped = true;
    await sleep(1600);
    const before = await metric(srv.server.registry, 'coredns_cache_served_stale_total');
    const stale = await dig(srv.port, ['www.example.com']);
    t.equal(stale.status, 'NOERROR', `${mode}: still answered`);
    t.same(stale.answer.map((r) => [r.data, r.ttl]), [['192.0.2.1', 0]], `${mode}: stale answer with TTL 0`);
    t.equal(await metric(srv.server.registry, 'coredns_cache_served_stale_total') - before, 1);
    t.equal((await dig(srv.port, ['short.example.com'])).status, 'SERVFAIL', `${mode}: nothing stale to serve`);
  }
});

t.test('prefetch refreshes a popular entry before it expires', async (t) => {
  const up = await startKnot({ zones: { 'example.com.': zone } });
  t.teardown(up.stop);
  const srv = await startServer(`. {\n  cache {\n    success 1024 4 0\n    prefetch 1 1m 50%\n  }\n  forward . ${up.addr}\n}\n`);
  t.teardown(srv.stop);
  const before = await metric(srv.server.registry, 'coredns_cache_prefetch_total');
  t.equal((await dig(srv.port, ['www.example.com'])).answer[0]?.ttl, 4);
  await sleep(2100);
  const late = await dig(srv.port, ['www.example.com']);
  t.ok(late.answer[0]!.ttl <= 2, `served from cache with TTL ${late.answer[0]!.ttl}`);
  await sleep(200);
  t.equal(await metric(srv.server.registry, 'coredns_cache_prefetch_total') - before, 1, 'one prefetch');
  t.equal((await dig(srv.port, ['www.example.com'])).answer[0]?.ttl, 4, 'the entry was refreshed');
});

t.test('disable and zones limit what is cached', async (t) => {
  const up = await startKnot({ zones: { 'example.com.': zone } });
  t.teardown(up.stop);
  const srv = await startServer(`. {\n  cache 30 example.com {\n    disable success www.example.com\n  }\n  forward . ${up.addr}\n  }\n`);
  t.teardown(srv.stop);
  await dig(srv.port, ['www.example.com']);
  await sleep(1100);
  t.equal((await dig(srv.port, ['www.example.com'])).answer[0]?.ttl, 30, 'disabled: every answer fresh from upstream (capped TTL)');
  const outside = await dig(srv.port, ['example.com', 'SOA']);
  t.equal(outside.status, 'NOERROR');
  await sleep(1100);
  t.ok((await dig(srv.port, ['example.com', 'SOA'])).answer[0]!.ttl < 30, 'other names in the zone are cached');
});
