import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer } from './helpers/server.js';
import { dig } from './helpers/dig.js';
import { parseTTL, parseZoneFile } from '../src/plugins/file/zonefile.js';
import { sleep } from './helpers/wait.js';
import { startKnot } from './helpers/upstream.js';

const ZONE = readFileSync(new URL('../zones/example.org.zone', import.meta.url), 'utf8');
const fmt = (rrs: { name: string; ttl: number; type: string; data: string }[]) => rrs.map((a) => `${a.name} ${a.ttl} ${a.type} ${a.data}`);

t.test('file: example.org zone through dig', async (t) => {
  const srv = await startServer('example.org {\n    file db.example.org {\n        reload 100ms\n    }\n}\n', { files: { 'db.example.org': ZONE } });
  t.teardown(() => srv.stop());
  const rows: { q: string[]; status: string; aa: boolean; answer: string[]; authority?: string[]; additional?: string[] }[] = [
    { q: ['example.org', 'SOA'], status: 'NOERROR', aa: true,
      answer: ['example.org. 3600 SOA ns1.example.org. hostmaster.example.org. 2024060101 7200 900 1209600 300'] },
    { q: ['www.example.org', 'A'], status: 'NOERROR', aa: true, answer: ['www.example.org. 300 A 192.0.2.80', 'www.example.org. 300 A 192.0.2.81'],
      authority: ['example.org. 3600 NS ns1.example.org.', 'example.org. 3600 NS ns2.example.org.'] },
    { q: ['blog.example.org', 'A'], status: 'NOERROR', aa: true, answer: [
      'blog.example.org. 3600 CNAME web.example.org.', 'web.example.org. 3600 CNAME www.example.org.',
      'www.example.org. 300 A 192.0.2.80', 'www.example.org. 300 A 192.0.2.81'] },
    { q: ['example.org', 'MX'], status: 'NOERROR', aa: true, answer: ['example.org. 3600 MX 10 mail.example.org.', 'example.org. 3600 MX 20 mail2.example.org.'],
      additional: ['mail.example.org. 3600 A 192.0.2.25', 'mail2.example.org. 3600 A 192.0.2.26'] },
    { q: ['_https._tcp.example.org', 'SRV'], status: 'NOERROR', aa: true, answer: ['_https._tcp.example.org. 3600 SRV 10 5 443 www.example.org.'] },
    { q: ['example.org', 'TXT'], status: 'NOERROR', aa: true, answer: ['example.org. 3600 TXT "v=spf1 mx -all"'] },
    { q: ['host.apps.example.org', 'A'], status: 'NOERROR', aa: true, answer: ['host.apps.example.org. 3600 A 192.0.2.100'] },
    { q: ['a.b.apps.example.org', 'TXT'], status: 'NOERROR', aa: true, answer: ['a.b.apps.example.org. 3600 TXT "wildcard" "apps"'] },
    { q: ['host.apps.example.org', 'AAAA'], status: 'NOERROR', aa: true, answer: [],
      authority: ['example.org. 3600 SOA ns1.example.org. hostmaster.example.org. 2024060101 7200 900 1209600 300'] },
    { q: ['deep.example.org', 'A'], status: 'NOERROR', aa: true, answer: [], authority: ['example.org. 3600 SOA ns1.example.org. hostmaster.example.org. 2024060101 7200 900 1209600 300'] },
    { q: ['www.example.org', 'MX'], status: 'NOERROR', aa: true, answer: [] },
    { q: ['nope.example.org', 'A'], status: 'NXDOMAIN', aa: true, answer: [],
      authority: ['example.org. 3600 SOA ns1.example.org. hostmaster.example.org. 2024060101 7200 900 1209600 300'] },
    { q: ['x.deep.example.org', 'A'], status: 'NXDOMAIN', aa: true, answer: [] },
    { q: ['www.lab.example.org', 'A'], status: 'NOERROR', aa: false, answer: [],
      authority: ['lab.example.org. 3600 NS ns.lab.example.org.', 'lab.example.org. 3600 NS ns.other.example.'],
      additional: ['ns.lab.example.org. 3600 A 192.0.2.200'] },
    { q: ['opaque.example.org', 'TYPE65280'], status: 'NOERROR', aa: true, answer: ['opaque.example.org. 3600 TYPE65280 \\# 4 0A000001'] },
  ];
  for (const row of rows) {
    const r = await dig(srv.port, [...row.q, '+norec']);
    const label = row.q.join(' ');
    t.equal(r.status, row.status, `${label} status`);
    t.equal(r.flags.includes('aa'), row.aa, `${label} aa`);
    t.same(fmt(r.answer), row.answer, `${label} answer`);
    if (row.authority) t.same(fmt(r.authority).sort(), row.authority.sort(), `${label} authority`);
    if (row.additional) t.same(fmt(r.additional).sort(), row.additional.sort(), `${label} additional`);
  }

  // Same content with a new serial is reloaded; a changed file with the old serial is not (CoreDNS).
  const path = join(srv.dir, 'db.example.org');
  writeFileSync(path, ZONE.replace('192.0.2.80', '192.0.2.180'));
  await sleep(400);
  t.same((await dig(srv.port, ['www.example.org', 'A'])).answer.map((a) => a.data).sort(), ['192.0.2.80', '192.0.2.81'], 'same serial: not reloaded');
  writeFileSync(path, ZONE.replace('192.0.2.80', '192.0.2.180').replace('2024060101', '2024060102'));
  let data: string[] = [];
  for (let i = 0; i < 30 && !data.includes('192.0.2.180'); i++) {
    await sleep(100);
    data = (await dig(srv.port, ['www.example.org', 'A'])).answer.map((a) => a.data);
  }
  t.ok(data.includes('192.0.2.180'), 'new serial: reloaded');
  writeFileSync(path, 'garbage (\n');
  await sleep(300);
  t.equal((await dig(srv.port, ['www.example.org', 'A'])).status, 'NOERROR', 'a broken file keeps the last good zone');
});

// Needs a core fix: DnsServer.resolveInternal encodes its query with QR=1 (encodeMessage defaults qr to true),
// so parseQuery drops it and every internal lookup fails.
t.test('file: out-of-zone CNAME is resolved through the server', async (t) => {
  const srv = await startServer(
    'example.org {\n    file db.example.org\n}\nexample.net {\n    file db.example.net\n}\n',
    { files: { 'db.example.org': ZONE, 'db.example.net': '$TTL 60\n@ SOA ns hm 1 1 1 1 1\n@ NS ns\nns A 192.0.2.1\ndocs A 198.51.100.7\n' } });
  t.teardown(() => srv.stop());
  const r = await dig(srv.port, ['docs.example.org', 'A']);
  t.same(fmt(r.answer), ['docs.example.org. 3600 CNAME docs.example.net.', 'docs.example.net. 60 A 198.51.100.7']);
});

t.test('zone file parser', async (t) => {
  const z = parseZoneFile([
    '$TTL 300',
    'example.com. IN SOA ns hostmaster ( 1 2 3 4 5 ) ; multi-line',
    '  NS ns',
    'ns 60 IN A 192.0.2.1',
    'IN 70 A 192.0.2.2',
    '$ORIGIN sub.example.com.',
    'x TXT "a \\"quoted\\" string" plain \\065',
    '@ MX 10 mail.example.com.',
  ].join('\n'), 'example.com.', 'db');
  t.same(z.records.map((r) => [r.name, r.type, r.ttl]), [
    ['example.com.', 6, 300], ['example.com.', 2, 300], ['ns.example.com.', 1, 60], ['IN.example.com.', 1, 70],
    ['x.sub.example.com.', 16, 300], ['sub.example.com.', 15, 300],
  ]);
  t.same(z.records[4]!.data, ['a "quoted" string', 'plain', 'A']);
  t.same(z.records[0]!.data, { mname: 'ns.example.com.', rname: 'hostmaster.example.com.', serial: 1, refresh: 2, retry: 3, expire: 4, minimum: 5 });
  t.same([parseTTL('1h30m'), parseTTL('2W'), parseTTL('90'), parseTTL('1x')], [5400, 1209600, 90, undefined]);
  const bad: [string, RegExp][] = [
    ['a A 1.2.3.4', /^db:1: no TTL given/],
    ['$TTL 60\na A 1.2.3', /^db:2: A: bad IPv4 address '1.2.3'/],
    ['$TTL 60\na ( A\n1.2.3.4', /^db:2: '\(' never closed/],
    ['$TTL 60\na.other. A 1.2.3.4', /^db:2: a\.other\. is out of zone example\.com\./],
    ['$TTL 60\na CAA 0 issue', /^db:2: CAA needs 3 RDATA fields, got 2/],
    ['$TTL 60\na CAA 0 is-sue "x"', /^db:2: CAA: bad tag 'is-sue'/],
    ['$TTL 60\na FOO 1', /^db:2: unknown type 'FOO'/],
    ['$TTL 60\na TYPE999 \\# 3 0a00', /^db:2: TYPE999: \\# length 3 does not match 2 bytes/],
    ['$TTL 60\na MX ten mail', /^db:2: MX: bad preference 'ten'/],
    ['$TTL 60\na "unterminated', /^db:2: unterminated quoted string/],
  ];
  for (const [text, want] of bad) t.throws(() => parseZoneFile(text, 'example.com.', 'db'), want, text);
});

t.test('file: bad config', async (t) => {
  const rows: [string, Record<string, string>, RegExp][] = [
    ['file', {}, /Corefile:2 - Error during setup: plugin\/file: needs a zone file: file DBFILE \[ZONES\.\.\.\]/],
    ['file missing.db', {}, /Corefile:2 - Error during setup: plugin\/file: unable to read zone file .*missing\.db/],
    ['file db {\n  reload x\n}', { db: ZONE }, /Corefile:3 - Error during setup: plugin\/file: reload: invalid duration 'x'/],
    ['file db {\n  upstreams\n}', { db: ZONE }, /Corefile:3 - Error during setup: plugin\/file: unknown property 'upstreams' \(want reload, fallthrough or upstream\)/],
    ['file db', { db: '$TTL 60\nwww A 192.0.2.1\n' }, /Corefile:2 - Error during setup: plugin\/file: .*db: zone example\.org\. needs exactly one SOA record at its apex, found 0/],
    ['file db', { db: '$TTL 60\n@ SOA a b 1 2 3 4 5\nwww A 192.0.2.1\nwww CNAME x\n' }, /www\.example\.org\. has a CNAME and other data/],
  ];
  for (const [block, files, want] of rows) {
    await t.rejects(startServer(`example.org {\n${block}\n}\n`, { files }), want, block.replace(/\n/g, ' '));
  }
});

/** DNAME, CAA, loops and out-of-zone targets: CoreDNS's lookup.go and dname.go cases, through dig. */
const ALIASES = [
  '$TTL 300',
  '@ SOA ns1 hostmaster 7 7200 900 1209600 300',
  '@ NS ns1',
  'ns1 A 192.0.2.53',
  'ext CNAME www.example.net.',
  'caa CAA 0 issue "letsencrypt.org"',
  'caa CAA 128 iodef "mailto:security@example.org"',
  'dname DNAME target',
  'dname A 192.0.2.70',
  'a.dname A 192.0.2.71 ; occluded by the DNAME above it',
  'www.target A 192.0.2.90',
  'alias.target CNAME www.target',
  'away DNAME example.net.',
  'self DNAME self',
  '*.loop CNAME x.loop',
  'me CNAME me',
  'ping CNAME pong',
  'pong CNAME ping',
  '',
].join('\n');

t.test('file: DNAME, CAA, CNAME loops and out-of-zone targets through dig', async (t) => {
  // No forward and no block for example.net: a CNAME leaving the zone is answered with the CNAME alone.
  const srv = await startServer('example.org {\n    file db {\n        upstream\n    }\n}\n', { files: { db: ALIASES } });
  t.teardown(() => srv.stop());
  const dname = 'dname.example.org. 300 DNAME target.example.org.';
  const rows: { q: string[]; status: string; answer: string[]; authority?: string[] }[] = [
    { q: ['ext.example.org', 'A'], status: 'NOERROR', answer: ['ext.example.org. 300 CNAME www.example.net.'], authority: ['example.org. 300 NS ns1.example.org.'] },
    { q: ['caa.example.org', 'CAA'], status: 'NOERROR', answer: ['caa.example.org. 300 CAA 0 issue "letsencrypt.org"', 'caa.example.org. 300 CAA 128 iodef "mailto:security@example.org"'] },
    { q: ['dname.example.org', 'DNAME'], status: 'NOERROR', answer: [dname] },
    { q: ['dname.example.org', 'A'], status: 'NOERROR', answer: ['dname.example.org. 300 A 192.0.2.70'] },
    { q: ['www.dname.example.org', 'A'], status: 'NOERROR',
      answer: [dname, 'www.dname.example.org. 300 CNAME www.target.example.org.', 'www.target.example.org. 300 A 192.0.2.90'] },
    { q: ['a.dname.example.org', 'A'], status: 'NXDOMAIN', answer: [dname, 'a.dname.example.org. 300 CNAME a.target.example.org.'] },
    // The synthesized CNAME comes from the lower-cased question, as CoreDNS's request.Name gives it.
    { q: ['Alias.dname.example.org', 'A'], status: 'NOERROR', answer: [dname, 'alias.dname.example.org. 300 CNAME alias.target.example.org.',
      // The chased record is the zone's, spelled as stored (compression keeps each name's own case).
      'alias.target.example.org. 300 CNAME www.target.example.org.', 'www.target.example.org. 300 A 192.0.2.90'] },
    // Asked before in lower case: names from the zone keep the zone's spelling (CoreDNS writes records as stored).
    { q: ['WWW.TARGET.EXAMPLE.ORG', 'A'], status: 'NOERROR', answer: ['www.target.example.org. 300 A 192.0.2.90'], authority: ['example.org. 300 NS ns1.example.org.'] },
    { q: ['alias.target.example.org', 'A'], status: 'NOERROR', answer: ['alias.target.example.org. 300 CNAME www.target.example.org.', 'www.target.example.org. 300 A 192.0.2.90'] },
    { q: ['ALIAS.Target.Example.ORG', 'A'], status: 'NOERROR', answer: ['alias.target.example.org. 300 CNAME www.target.example.org.', 'www.target.example.org. 300 A 192.0.2.90'] },
    { q: ['x.dname.example.org', 'CNAME'], status: 'NOERROR', answer: [dname, 'x.dname.example.org. 300 CNAME x.target.example.org.'] },
    { q: ['host.away.example.org', 'A'], status: 'NOERROR', answer: ['away.example.org. 300 DNAME example.net.', 'host.away.example.org. 300 CNAME host.example.net.'] },
    // Loops end in a bare SERVFAIL, not a chain of repeated CNAMEs.
    { q: ['host.loop.example.org', 'A'], status: 'SERVFAIL', answer: [] },
    { q: ['me.example.org', 'A'], status: 'SERVFAIL', answer: [] },
    { q: ['ping.example.org', 'A'], status: 'SERVFAIL', answer: [] },
    { q: ['x.self.example.org', 'A'], status: 'SERVFAIL', answer: [] },
    { q: ['me.example.org', 'CNAME'], status: 'NOERROR', answer: ['me.example.org. 300 CNAME me.example.org.'] },
    { q: ['example.org', 'AXFR'], status: 'REFUSED', answer: [] },
  ];
  for (const row of rows) {
    const r = await dig(srv.port, [...row.q, '+norec', ...(row.q[1] === 'AXFR' ? ['+comments'] : [])]);
    const label = row.q.join(' ');
    t.equal(r.status, row.status, `${label} status`);
    t.same(fmt(r.answer), row.answer, `${label} answer`);
    if (row.authority) t.same(fmt(r.authority), row.authority, `${label} authority`);
  }
});

t.test('file: fallthrough passes NXDOMAIN on to forward (a real knotd)', async (t) => {
  const up = await startKnot({ zones: { 'example.org.': '$TTL 60\n@ SOA ns hm 1 1 1 1 1\n@ NS ns\nns A 192.0.2.1\nonly-upstream A 198.51.100.1\nlocal A 198.51.100.2\nb.deep A 198.51.100.3\n' } });
  t.teardown(() => up.stop());
  const corefile = (fall: string) => `example.org {\n    file db {\n        ${fall}\n    }\n    forward . ${up.addr}\n}\n`;
  const files = { db: '$TTL 300\n@ SOA ns1 hostmaster 7 7200 900 1209600 300\n@ NS ns1\nns1 A 192.0.2.53\nlocal A 192.0.2.2\na.b.deep A 192.0.2.3\n' };
  const srv = await startServer(corefile('fallthrough'), { files });
  t.teardown(() => srv.stop());
  const short = async (port: number, name: string) => (await dig(port, [name, 'A'])).answer.map((a) => a.data);
  t.same(await short(srv.port, 'only-upstream.example.org'), ['198.51.100.1'], 'NXDOMAIN in the file: answered by the upstream');
  t.same(await short(srv.port, 'local.example.org'), ['192.0.2.2'], 'a name in the file is answered from it');
  t.same(await short(srv.port, 'b.deep.example.org'), ['198.51.100.3'], 'an empty non-terminal falls through too (CoreDNS)');
  t.equal((await dig(srv.port, ['local.example.org', 'MX'])).status, 'NOERROR', 'NODATA does not fall through');
  t.equal((await dig(srv.port, ['local.example.org', 'MX'])).flags.includes('aa'), true, 'NODATA comes from the file');

  const narrow = await startServer(corefile('fallthrough deep.example.org'), { files });
  t.teardown(() => narrow.stop());
  t.equal((await dig(narrow.port, ['only-upstream.example.org', 'A'])).status, 'NXDOMAIN', 'outside the fallthrough zones: NXDOMAIN');
  t.same(await short(narrow.port, 'b.deep.example.org'), ['198.51.100.3'], 'inside them: passed on');
});
