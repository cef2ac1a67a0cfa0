import t from 'tap';
import { loadPlugins } from '../src/plugins/registry.js';
import { loadConfig } from '../src/server/config.js';
import { DnsServer } from '../src/server/dns-server.js';
import { dig, digAnswer } from './helpers/dig.js';
import { checkCases, inProcessServer, type DnsCase } from './helpers/in-process.js';
import { serveCli } from './helpers/serve-cli.js';
import { freePort } from './helpers/upstream.js';

/*
 * local, any and minimal: each table is asked in-process (the fast check) and with real dig against
 * `clusterdns serve` on a loopback port (the built dist/: run `npx tsc -p .` first).
 */

const SOA = (owner: string) => `${owner} 604800 IN SOA localhost. root.localhost. 1 0 0 0 604800`;
// whoami after local: a name local does not take gets whoami's empty NOERROR.
const LOCAL_COREFILE = (port: number | string, block = '') => `.:${port} {\n    bind 127.0.0.1\n    local${block}\n    whoami\n}\n`;

const localCases: DnsCase[] = [
  { q: 'localhost.', type: 'A', an: ['localhost. 604800 IN A 127.0.0.1'] },
  { q: 'localhost.', type: 'AAAA', an: ['localhost. 604800 IN AAAA ::1'] },
  { q: 'localhost.', type: 'MX', ns: [SOA('localhost.')] },
  { q: 'localhost.', type: 'SOA', an: [SOA('localhost.')] },
  { q: 'localhost.', type: 'NS', an: ['localhost. 604800 IN NS localhost.'] },
  { q: 'app.localhost.', type: 'A', an: ['app.localhost. 604800 IN A 127.0.0.1'] },
  { q: 'a.b.localhost.', type: 'AAAA', an: ['a.b.localhost. 604800 IN AAAA ::1'] },
  { q: 'app.localhost.', type: 'TXT', ns: [SOA('app.localhost.')] },
  { q: 'localhost.localdomain.', type: 'A', an: ['localhost.localdomain. 604800 IN A 127.0.0.1'] },
  { q: 'localhost.default.svc.cluster.local.', type: 'A', an: ['localhost.default.svc.cluster.local. 604800 IN A 127.0.0.1'] },
  { q: '127.in-addr.arpa.', type: 'A', ns: [SOA('127.in-addr.arpa.')] },
  { q: '127.in-addr.arpa.', type: 'NS', an: ['127.in-addr.arpa. 604800 IN NS localhost.'] },
  { q: '0.in-addr.arpa.', type: 'SOA', an: [SOA('0.in-addr.arpa.')] },
  { q: '255.in-addr.arpa.', type: 'TXT', ns: [SOA('255.in-addr.arpa.')] },
  { q: '1.0.0.127.in-addr.arpa.', type: 'PTR', an: ['1.0.0.127.in-addr.arpa. 604800 IN PTR localhost.'] },
  { q: '1.0.0.127.in-addr.arpa.', type: 'A', ns: [SOA('127.in-addr.arpa.')] },
  { q: '2.0.0.127.in-addr.arpa.', type: 'PTR', rcode: 'NXDOMAIN', ns: [SOA('127.in-addr.arpa.')] },
  { q: 'foo.localhost.example.', type: 'A', an: [], ns: [] },
  { q: '1.0.0.10.in-addr.arpa.', type: 'PTR', an: [], ns: [] },
  { q: 'example.org.', type: 'A', an: [], ns: [] },
];

/** Cases that reach whoami show its additional A record: that is how "passed on" is told apart. */
const passedOn = (c: DnsCase) => c.an?.length === 0 && c.ns?.length === 0;

t.test(`local: ${localCases.length} cases in-process`, async (t) => {
  const srv = await inProcessServer(LOCAL_COREFILE(53));
  t.teardown(() => srv.close());
  await checkCases(t, (q, type) => srv.ask(q, type), localCases);
  for (const c of localCases) {
    const r = await srv.ask(c.q, c.type);
    t.equal(r.extra.length > 0, passedOn(c), `${c.q} ${c.type}: ${passedOn(c) ? 'passed on to whoami' : 'answered by local'}`);
    if (!passedOn(c)) t.equal(r.aa, false, `${c.q} ${c.type}: not authoritative, like CoreDNS's bare SetReply`);
  }
});

t.test('local over UDP with dig, localhost_prefix off, the localhost counter', async (t) => {
  const metricsPort = await freePort();
  const srv = await serveCli((port) => `.:${port} {\n    bind 127.0.0.1\n    prometheus 127.0.0.1:${metricsPort}\n    local\n    whoami\n}\n` +
    `lan:${port} {\n    bind 127.0.0.1\n    local {\n        localhost_prefix off\n    }\n    whoami\n}\n`);
  t.teardown(() => srv.stop());
  await checkCases(t, (q, type) => digAnswer(srv.port, q, type), localCases);
  t.same((await dig(srv.port, ['-x', '127.0.0.1', '+short'])).raw.trim(), 'localhost.', 'dig -x 127.0.0.1');
  const off = await digAnswer(srv.port, 'localhost.lan.', 'A');
  t.same(off.answer, [], 'localhost_prefix off: localhost.lan. passes on');
  t.ok(off.extra.some((r) => r.includes(' A 127.0.0.1')), 'to whoami');
  t.same((await digAnswer(srv.port, 'x.localhost.lan.', 'A')).answer, [], 'x.localhost.lan. is not under .localhost.');
  const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  // Counted: app.localhost (A, TXT), a.b.localhost, localhost.localdomain, localhost.default.svc..., not localhost. itself.
  t.match(metrics, /^coredns_local_localhost_requests_total 5$/m, 'non-apex localhost queries counted, without a server label');
});

t.test('local and any: setup errors name the line', async (t) => {
  const plugins = await loadPlugins();
  const server = new DnsServer({ conf: '/nonexistent/Corefile', plugins });
  const load = (block: string) => loadConfig({ file: 'Corefile', text: `.:1053 {\n${block}\n}\n`, plugins, shared: server.shared });
  await t.rejects(load('    local {\n        localhost_prefix maybe\n    }'),
    /Corefile:3 - Error during setup: plugin\/local: localhost_prefix expects 'on' or 'off', got 'maybe'/);
  await t.rejects(load('    local {\n        zones x\n    }'), /Corefile:3 - Error during setup: plugin\/local: unknown property 'zones'/);
  await t.rejects(load('    local foo'), /Corefile:2 - Error during setup: plugin\/local: takes no arguments, got 'foo'/);
  await t.rejects(load('    any foo'), /Corefile:2 - Error during setup: plugin\/any: takes no arguments/);
  await t.rejects(load('    any {\n        x\n    }'), /Corefile:2 - Error during setup: plugin\/any: takes no block/);
  await t.rejects(load('    minimal x'), /Corefile:2 - Error during setup: plugin\/minimal: takes no arguments/);
});

t.test('any: ANY gets the RFC 8482 HINFO, other types pass on (dig against a forwarded upstream)', async (t) => {
  const srv = await serveCli((port) => `.:${port} {\n    bind 127.0.0.1\n    any\n    local\n    whoami\n}\n`);
  t.teardown(() => srv.stop());
  const r = await dig(srv.port, ['Example.ORG', 'ANY']);
  t.equal(r.status, 'NOERROR');
  t.notOk(r.flags.includes('aa'), 'not authoritative');
  t.same(r.answer, [{ name: 'Example.ORG.', ttl: 8482, class: 'IN', type: 'HINFO', data: '"ANY obsoleted" "See RFC 8482"' }],
    'one HINFO, owner in the question\'s case');
  t.same(r.additional, [], 'nothing else');
  const local = await dig(srv.port, ['localhost', 'ANY']);
  t.same([local.answer, local.authority.map((a) => a.type)], [[], ['SOA']], 'local runs before any (plugin.cfg): NODATA for localhost. ANY');
  t.same((await digAnswer(srv.port, 'localhost.', 'A')).answer, ['localhost. 604800 IN A 127.0.0.1'], 'A passes on to local');
  const tcp = await dig(srv.port, ['+tcp', 'example.org', 'ANY']);
  t.same(tcp.answer.map((a) => a.type), ['HINFO'], 'over TCP too');
});

const ZONE = `$TTL 300
@       IN SOA ns1.example.org. hostmaster.example.org. 1 7200 3600 1209600 300
@       IN NS  ns1.example.org.
ns1     IN A   192.0.2.53
www     IN A   192.0.2.10
mx      IN MX  10 www.example.org.
sub     IN NS  ns.sub.example.org.
ns.sub  IN A   192.0.2.99
`;

t.test('minimal: NOERROR answers lose authority and additional; denials and delegations keep them', async (t) => {
  const files = { 'db.example.org': ZONE };
  const corefile = (port: number | string, minimal: boolean) =>
    `example.org:${port} {\n    bind 127.0.0.1\n    file db.example.org\n${minimal ? '    minimal\n' : ''}}\n`;
  const SOA_EX = 'example.org. 300 IN SOA ns1.example.org. hostmaster.example.org. 1 7200 3600 1209600 300';
  const NS_EX = 'example.org. 300 IN NS ns1.example.org.';
  const WWW = 'www.example.org. 300 IN A 192.0.2.10';
  const full: DnsCase[] = [
    { q: 'www.example.org.', type: 'A', an: ['www.example.org. 300 IN A 192.0.2.10'], ns: [NS_EX], ar: [] },
    { q: 'mx.example.org.', type: 'MX', an: ['mx.example.org. 300 IN MX 10 www.example.org.'], ns: [NS_EX], ar: [WWW] },
    { q: 'nope.example.org.', type: 'A', rcode: 'NXDOMAIN', ns: [SOA_EX], ar: [] },
  ];
  const minimal: DnsCase[] = [
    { q: 'www.example.org.', type: 'A', an: ['www.example.org. 300 IN A 192.0.2.10'], ns: [], ar: [] },
    { q: 'mx.example.org.', type: 'MX', an: ['mx.example.org. 300 IN MX 10 www.example.org.'], ns: [], ar: [] },
    { q: 'nope.example.org.', type: 'A', rcode: 'NXDOMAIN', ns: [SOA_EX], ar: [] },
    { q: 'www.example.org.', type: 'TXT', ns: [SOA_EX], ar: [] },
    { q: 'host.sub.example.org.', type: 'A', ns: ['sub.example.org. 300 IN NS ns.sub.example.org.'], ar: ['ns.sub.example.org. 300 IN A 192.0.2.99'] },
  ];
  const without = await inProcessServer(corefile(53, false), { files });
  t.teardown(() => without.close());
  await checkCases(t, (q, type) => without.ask(q, type), full);
  const inproc = await inProcessServer(corefile(53, true), { files });
  t.teardown(() => inproc.close());
  await checkCases(t, (q, type) => inproc.ask(q, type), minimal);
  const srv = await serveCli((port) => corefile(port, true), { files, probe: ['example.org', 'SOA'] });
  t.teardown(() => srv.stop());
  await checkCases(t, (q, type) => digAnswer(srv.port, q, type), minimal);
  t.same((await digAnswer(srv.port, 'www.example.org.', 'A', ['+tcp'])).ns, [], 'over TCP too');
});

t.test('minimal on forwarded answers: the upstream\'s encoded reply is cut after its answer section', async (t) => {
  const upstreamPort = await freePort();
  // The upstream is a second block of the same process serving the zone with NS and glue.
  const srv = await serveCli((port) => `example.org:${upstreamPort} {\n    bind 127.0.0.1\n    file db.example.org\n}\n` +
    `.:${port} {\n    bind 127.0.0.1\n    minimal\n    forward . 127.0.0.1:${upstreamPort}\n}\n`, { files: { 'db.example.org': ZONE }, probe: ['example.org', 'SOA'] });
  t.teardown(() => srv.stop());
  const direct = await digAnswer(upstreamPort, 'mx.example.org.', 'MX');
  t.same([direct.ns.length, direct.extra.length], [1, 1], 'the upstream sends authority and additional records');
  const cases: DnsCase[] = [
    { q: 'mx.example.org.', type: 'MX', an: ['mx.example.org. 300 IN MX 10 www.example.org.'], ns: [], ar: [] },
    { q: 'nope.example.org.', type: 'A', rcode: 'NXDOMAIN', ns: ['example.org. 300 IN SOA ns1.example.org. hostmaster.example.org. 1 7200 3600 1209600 300'], ar: [] },
  ];
  await checkCases(t, (q, type) => digAnswer(srv.port, q, type), cases);
  const r = await dig(srv.port, ['mx.example.org', 'MX']);
  t.equal(r.ednsUdp, 1232, 'the asker still gets the server\'s OPT record');
});
