import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { SetupError, type Directive } from '../src/corefile/types.js';
import { parseForward, resolvConfNameservers } from '../src/plugins/forward/setup.js';
import { dig } from './helpers/dig.js';
import { metricValue } from './helpers/metrics.js';
import { startServer } from './helpers/server.js';
import { freePort, startBlackhole, startDnsmasq, startKnot } from './helpers/upstream.js';
import { sleep } from './helpers/wait.js';
import { tempDir } from './helpers/temp-dir.js';

function zone(wwwAddr = '192.0.2.1'): string {
  return `$ORIGIN example.com.
$TTL 300
@ SOA ns hostmaster 1 3600 600 86400 60
@ NS ns
ns A 127.0.0.1
www A ${wwwAddr}
www AAAA 2001:db8::1
@ MX 10 mail
mail A 192.0.2.25
txt TXT "hello world"
`;
}

t.test('setup: every wrong option names plugin, line and option', async (t) => {
  const dir = tempDir('fwd-setup');
  writeFileSync(join(dir, 'resolv.conf'), '# comment\nsearch x.local\nnameserver 10.0.0.10\nnameserver fe80::1%eth0\noptions ndots:5\n');
  writeFileSync(join(dir, 'empty.conf'), 'search x\n');
  const d = (args: string[], children: [string, ...string[]][] = []): Directive => ({
    name: 'forward', args, file: 'Corefile', line: 3,
    children: children.map(([name, ...a], i) => ({ name, args: a, children: [], file: 'Corefile', line: 4 + i })),
  });
  const ctx = (dir: string, block: Directive[] = []) => ({ corefile: join(dir, 'Corefile'), block });
  const bad: [string, Directive, RegExp][] = [
    ['no upstream', d(['.']), /Corefile:3 .*plugin\/forward: usage/],
    ['https upstream', d(['.', 'https://1.1.1.1']), /https:\/\/ upstreams \(DNS over HTTPS\) are not supported/],
    ['host name upstream', d(['.', 'dns.example.']), /host names are not supported/],
    ['bad port', d(['.', '10.0.0.1:99999']), /invalid port/],
    ['resolv.conf without nameservers', d(['.', 'empty.conf']), /no nameservers/],
    ['unknown option', d(['.', '10.0.0.1'], [['bogus']]), /Corefile:4 .*unknown property 'bogus'/],
    ['max_fails not a number', d(['.', '10.0.0.1'], [['max_fails', 'x']]), /Corefile:4 .*max_fails/],
    ['max_concurrent arity', d(['.', '10.0.0.1'], [['max_concurrent']]), /max_concurrent: wrong argument count: want INTEGER, got 0/],
    ['policy', d(['.', '10.0.0.1'], [['policy', 'fastest']]), /unknown policy 'fastest'/],
    ['expire duration', d(['.', '10.0.0.1'], [['expire', '10']]), /expire: invalid duration/],
    ['health_check option', d(['.', '10.0.0.1'], [['health_check', '1s', 'fast']]), /health_check: unknown option fast/],
    ['health_check domain arity', d(['.', '10.0.0.1'], [['health_check', '1s', 'domain']]), /domain needs a name/],
    ['next rcode', d(['.', '10.0.0.1'], [['next', 'NOPE']]), /next: 'NOPE' is not a valid rcode/],
    ['failover NOERROR', d(['.', '10.0.0.1'], [['failover', 'NOERROR']]), /NOERROR cannot be used/],
    ['force_tcp with args', d(['.', '10.0.0.1'], [['force_tcp', 'yes']]), /force_tcp: takes no arguments, got 'yes'/],
    ['duplicate option', d(['.', '10.0.0.1'], [['policy', 'random'], ['policy', 'sequential']]), /Corefile:5 .*given more than once/],
    ['16 upstreams', d(['.', ...Array.from({ length: 16 }, (_, i) => `10.0.0.${i + 1}`)]), /more than 15 TOs/],
  ];
  for (const [what, dir2, re] of bad) {
    t.throws(() => parseForward(dir2, ctx(dir)), re, what);
    try { parseForward(dir2, ctx(dir)); } catch (e) { t.ok(e instanceof SetupError, `${what}: SetupError`); }
  }
  const ok = parseForward(d(['example.org', 'dns://10.0.0.1:5300', '[::1]:53', '::2', 'resolv.conf'], [
    ['except', 'a.example.org', 'B.example.org'], ['policy', 'sequential'], ['max_fails', '0'], ['health_check', '2s', 'no_rec', 'domain', 'example.org'],
    ['max_concurrent', '1000'], ['expire', '1m30s'], ['next', 'NXDOMAIN'], ['failover', 'SERVFAIL', 'REFUSED'], ['force_tcp'],
  ]), ctx(dir));
  t.equal(ok.from, 'example.org.');
  t.same(ok.except, ['a.example.org.', 'b.example.org.']);
  t.same(ok.upstreams.map((u) => u.to), ['10.0.0.1:5300', '[::1]:53', '[::2]:53', '10.0.0.10:53', '[fe80::1]:53']);
  t.same([ok.policy, ok.maxFails, ok.maxConcurrent, ok.next, ok.failover, ok.forceTcp], ['sequential', 0, 1000, [3], [2, 5], true]);
  t.equal(parseForward(d(['10.0.0.0/8', '10.0.0.1']), ctx(dir)).from, '10.in-addr.arpa.');
  const first = d(['a.example', '10.0.0.1']);
  const second = d(['.', '10.0.0.2']);
  t.equal(parseForward(first, ctx(dir, [first, second])).hasNextForward, true);
  t.equal(parseForward(second, ctx(dir, [first, second])).hasNextForward, false);
  t.same(resolvConfNameservers('nameserver 1.2.3.4\n nameserver 5.6.7.8 \nnameserver bogus\n').map((h) => h.host), ['1.2.3.4', '5.6.7.8']);
});

t.test('forwards A/AAAA/MX/TXT to knotd, keeping EDNS and the DO bit', async (t) => {
  const up = await startKnot({ zones: { 'example.com.': zone() }, dnssec: true });
  t.teardown(up.stop);
  const srv = await startServer(`. {\n  forward . ${up.addr}\n}\n`);
  t.teardown(srv.stop);
  const a = await dig(srv.port, ['www.example.com', 'A']);
  t.equal(a.status, 'NOERROR');
  t.same(a.answer.map((r) => r.data), ['192.0.2.1']);
  t.ok(a.flags.includes('aa'), 'AA of the authoritative upstream relayed');
  t.ok(a.flags.includes('ra'), 'RA set by a block with forward');
  t.equal(a.ednsUdp, 1232, 'our own OPT replaces the upstream one');
  t.same((await dig(srv.port, ['www.example.com', 'AAAA'])).answer.map((r) => r.data), ['2001:db8::1']);
  t.same((await dig(srv.port, ['example.com', 'MX'])).answer.map((r) => r.data), ['10 mail.example.com.']);
  t.same((await dig(srv.port, ['txt.example.com', 'TXT'])).answer.map((r) => r.data), ['"hello world"']);
  const nx = await dig(srv.port, ['nope.example.com', 'A']);
  t.equal(nx.status, 'NXDOMAIN');
  t.equal(nx.authority[0]?.type, 'SOA');
  const plain = await dig(srv.port, ['www.example.com', 'A']);
  t.notOk(plain.answer.some((r) => r.type === 'RRSIG'), 'DO=0: no signatures');
  const signed = await dig(srv.port, ['www.example.com', 'A', '+dnssec']);
  t.ok(signed.answer.some((r) => r.type === 'RRSIG'), 'DO=1 reached the upstream: RRSIG in the answer');
  t.match(signed.raw, /flags: do;/, 'DO echoed to the client');
  const upper = await dig(srv.port, ['WwW.ExAmPlE.CoM', 'A']);
  t.same(upper.answer.map((r) => r.name), ['WwW.ExAmPlE.CoM.'], 'question case echoed');
  const tcp = await dig(srv.port, ['www.example.com', 'A', '+tcp']);
  t.same(tcp.answer.map((r) => r.data), ['192.0.2.1'], 'TCP client');
  t.ok(await metricValue(srv.server.registry, 'coredns_proxy_request_duration_seconds', { to: up.addr, rcode: 'NOERROR' }) > 0, 'duration histogram by to and rcode');
});

t.test('a truncated UDP answer is fetched again over TCP', async (t) => {
  // dnsmasq truncates at --edns-packet-max even when the asker offers more (knotd takes nothing below 1232).
  const up = await startDnsmasq([
    '--edns-packet-max=512', ...Array.from({ length: 40 }, (_, i) => `--host-record=many.test,10.0.1.${i + 1}`),
  ], { probeZone: 'many.test.' });
  t.teardown(up.stop);
  const direct = await dig(up.port, ['many.test', 'A', '+ignore', '+bufsize=1232']);
  t.ok(direct.flags.includes('tc'), 'upstream truncates at 512 bytes');
  const srv = await startServer(`. {\n  forward . ${up.addr}\n}\n`);
  t.teardown(srv.stop);
  const many = await dig(srv.port, ['many.test', 'A', '+ignore', '+bufsize=1232']);
  t.notOk(many.flags.includes('tc'));
  t.equal(many.answer.length, 40, 'all 40 records through TCP');
  const small = await dig(srv.port, ['many.test', 'A', '+ignore', '+noedns']);
  t.ok(small.flags.includes('tc'), 'a 512-byte asker still gets TC');
  t.ok(small.answer.length > 0 && small.answer.length < 40, 'with as many records as fit');
  const forced = await startServer(`. {\n  forward . ${up.addr} {\n    force_tcp\n  }\n}\n`);
  t.teardown(forced.stop);
  t.equal((await dig(forced.port, ['many.test', 'A', '+ignore', '+bufsize=1232'])).answer.length, 40, 'force_tcp');
});

t.test('upstream down: health checks mark it down, the second answers; back up: used again', async (t) => {
  const port1 = await freePort();
  let up1 = await startKnot({ zones: { 'example.com.': zone('192.0.2.1') }, port: port1 });
  const up2 = await startKnot({ zones: { 'example.com.': zone('192.0.2.2') } });
  t.teardown(async () => { await up1.stop(); await up2.stop(); });
  const srv = await startServer(`. {\n  forward . ${up1.addr} ${up2.addr} {\n    policy sequential\n    health_check 100ms\n  }\n}\n`);
  t.teardown(srv.stop);
  t.same((await dig(srv.port, ['www.example.com'])).answer.map((r) => r.data), ['192.0.2.1']);
  await up1.stop();
  const failed = await metricValue(srv.server.registry, 'coredns_proxy_healthcheck_failures_total', { to: up1.addr });
  t.same((await dig(srv.port, ['www.example.com'])).answer.map((r) => r.data), ['192.0.2.2'], 'failover within the query');
  await sleep(600);
  t.ok(await metricValue(srv.server.registry, 'coredns_proxy_healthcheck_failures_total', { to: up1.addr }) >= failed + 3, 'health checks kept failing');
  const started = Date.now();
  t.same((await dig(srv.port, ['www.example.com'])).answer.map((r) => r.data), ['192.0.2.2'], 'down upstream skipped');
  t.ok(Date.now() - started < 500, 'no time lost on the down upstream');
  up1 = await startKnot({ zones: { 'example.com.': zone('192.0.2.1') }, port: port1 });
  let back = false;
  for (let i = 0; i < 30 && !back; i++) {
    await sleep(100);
    back = (await dig(srv.port, ['www.example.com'])).answer[0]?.data === '192.0.2.1';
  }
  t.ok(back, 'health check saw it answer again and it is first again');
});

t.test('max_concurrent: a bounded burst over the limit is REFUSED at once', async (t) => {
  const hole = await startBlackhole();
  t.teardown(hole.stop);
  const srv = await startServer(`. {\n  errors\n  forward . ${hole.addr} {\n    max_concurrent 2\n    max_fails 0\n    read_timeout 300ms\n  }\n}\n`);
  t.teardown(srv.stop);
  const before = await metricValue(srv.server.registry, 'coredns_forward_max_concurrent_rejects_total');
  const slow = [dig(srv.port, ['a.example.com', '+time=1']), dig(srv.port, ['b.example.com', '+time=1'])];
  await sleep(100);
  const started = Date.now();
  const burst = await Promise.all(Array.from({ length: 6 }, (_, i) => dig(srv.port, [`c${i}.example.com`])));
  t.same(burst.map((r) => r.status), Array(6).fill('REFUSED'));
  t.ok(Date.now() - started < 1000, 'refused without waiting');
  t.equal(await metricValue(srv.server.registry, 'coredns_forward_max_concurrent_rejects_total') - before, 6);
  await Promise.all(slow.map((p) => p.catch(() => undefined)));
  t.ok(hole.received() >= 2, 'the two admitted queries did reach the upstream');
  // Two tries of 300 ms each: let them end before the server stops.
  await sleep(800);
});

t.test('all upstreams down: SERVFAIL quickly', async (t) => {
  const dead1 = await freePort();
  const dead2 = await freePort();
  const srv = await startServer(`. {\n  errors\n  forward . 127.0.0.1:${dead1} 127.0.0.1:${dead2} {\n    max_fails 1\n    health_check 100ms\n  }\n}\n`);
  t.teardown(srv.stop);
  for (let i = 0; i < 3; i++) {
    const started = Date.now();
    const r = await dig(srv.port, ['www.example.com', '+time=4']);
    t.equal(r.status, 'SERVFAIL');
    t.ok(Date.now() - started < 3000, `refused ports: SERVFAIL in ${Date.now() - started} ms`);
    // Enough failed health checks (one per 100 ms) for both to count as down before the next query.
    await sleep(600);
  }
  t.ok(await metricValue(srv.server.registry, 'coredns_forward_healthcheck_broken_total') > 0, 'all down counted as broken health checking');
});

t.test('hung upstreams marked down: one random try, SERVFAIL in < 3 s', async (t) => {
  const h1 = await startBlackhole();
  const h2 = await startBlackhole();
  t.teardown(async () => { await h1.stop(); await h2.stop(); });
  const srv = await startServer(`. {\n  errors\n  forward . ${h1.addr} ${h2.addr} {\n    max_fails 1\n    health_check 100ms\n  }\n}\n`);
  t.teardown(srv.stop);
  await dig(srv.port, ['www.example.com', '+time=6']).catch(() => undefined);
  await sleep(1500);
  const started = Date.now();
  const r = await dig(srv.port, ['www.example.com', '+time=4']);
  t.equal(r.status, 'SERVFAIL');
  t.ok(Date.now() - started < 3000, `SERVFAIL in ${Date.now() - started} ms`);
});

t.test('except passes names on to the next plugin', async (t) => {
  const up = await startKnot({ zones: { 'example.com.': zone() } });
  t.teardown(up.stop);
  const srv = await startServer(`. {\n  forward . ${up.addr} {\n    except internal.example.com\n  }\n  whoami\n}\n`);
  t.teardown(srv.stop);
  t.same((await dig(srv.port, ['www.example.com'])).answer.map((r) => r.data), ['192.0.2.1']);
  const local = await dig(srv.port, ['x.internal.example.com']);
  t.equal(local.answer.length, 0);
  t.ok(local.additional.some((r) => r.data === '127.0.0.1'), 'whoami answered the excepted name');
});

t.test('FROM limits forwarding; two forwards and next NXDOMAIN', async (t) => {
  const up1 = await startKnot({ zones: { 'example.com.': zone('192.0.2.1') } });
  const up2 = await startKnot({ zones: { 'example.com.': zone('192.0.2.2').replace('txt TXT', 'only2 A 192.0.2.99\ntxt TXT') } });
  t.teardown(async () => { await up1.stop(); await up2.stop(); });
  const srv = await startServer(`. {\n  forward example.com ${up1.addr} {\n    next NXDOMAIN\n  }\n  forward . ${up2.addr}\n}\n`);
  t.teardown(srv.stop);
  t.same((await dig(srv.port, ['www.example.com'])).answer.map((r) => r.data), ['192.0.2.1'], 'first forward');
  t.same((await dig(srv.port, ['only2.example.com'])).answer.map((r) => r.data), ['192.0.2.99'], 'NXDOMAIN from the first goes to the second');
});

t.test('a resolv.conf path as upstream', async (t) => {
  const host = `127.0.${Math.floor(Math.random() * 200) + 20}.${Math.floor(Math.random() * 200) + 20}`;
  let up;
  try {
    up = await startKnot({ zones: { 'example.com.': zone() }, host, port: 53 });
  } catch (e) {
    t.plan(0, `cannot run knotd on ${host}:53: ${(e as Error).message}`);
    return;
  }
  t.teardown(up.stop);
  const srv = await startServer(`. {\n  forward . resolv.conf\n}\n`, { files: { 'resolv.conf': `search svc.cluster.local\nnameserver ${host}\noptions ndots:5\n` } });
  t.teardown(srv.stop);
  t.same((await dig(srv.port, ['www.example.com'])).answer.map((r) => r.data), ['192.0.2.1']);
});
