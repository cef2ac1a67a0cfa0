import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer } from './helpers/server.js';
import { dig } from './helpers/dig.js';
import { parseTTL, parseZoneFile } from '../src/plugins/file/zonefile.js';
import { sleep } from './helpers/wait.js';

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
    ['$TTL 60\na CAA 0 issue "x"', /^db:2: unknown type 'CAA'/],
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
    ['file db {\n  upstream\n}', { db: ZONE }, /Corefile:3 - Error during setup: plugin\/file: unknown property 'upstream' \(want reload\)/],
    ['file db', { db: '$TTL 60\nwww A 192.0.2.1\n' }, /Corefile:2 - Error during setup: plugin\/file: .*db: zone example\.org\. needs exactly one SOA record at its apex, found 0/],
    ['file db', { db: '$TTL 60\n@ SOA a b 1 2 3 4 5\nwww A 192.0.2.1\nwww CNAME x\n' }, /www\.example\.org\. has a CNAME and other data/],
  ];
  for (const [block, files, want] of rows) {
    await t.rejects(startServer(`example.org {\n${block}\n}\n`, { files }), want, block.replace(/\n/g, ' '));
  }
});
