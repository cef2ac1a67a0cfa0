import t from 'tap';
import { utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer } from './helpers/server.js';
import { dig } from './helpers/dig.js';
import { sleep } from './helpers/wait.js';

const HOSTS = `# comment line
10.0.0.1   alpha.example.org alpha2.example.org   # trailing comment
10.0.0.2   Beta.Example.Org
fd00::2    beta.example.org
::ffff:10.0.0.3 mapped.example.org
10.0.0.9   outside.example.net
not-an-ip  broken.example.org
`;

const COREFILE = `example.org in-addr.arpa ip6.arpa {
    hosts hosts.txt example.org {
        10.0.0.5 inline.example.org
        ttl 60
        reload 100ms
        fallthrough sub.example.org
    }
    whoami
}
`;

t.test('hosts: file, inline, PTR, NODATA, fallthrough, reload', async (t) => {
  const srv = await startServer(COREFILE, { files: { 'hosts.txt': HOSTS } });
  t.teardown(() => srv.stop());
  const rows: { q: string[]; status: string; answer: string[]; flags?: string }[] = [
    { q: ['alpha.example.org', 'A'], status: 'NOERROR', answer: ['alpha.example.org. 60 IN A 10.0.0.1'] },
    { q: ['ALPHA2.example.org', 'A'], status: 'NOERROR', answer: ['ALPHA2.example.org. 60 IN A 10.0.0.1'] },
    { q: ['beta.example.org', 'AAAA'], status: 'NOERROR', answer: ['beta.example.org. 60 IN AAAA fd00::2'] },
    { q: ['mapped.example.org', 'A'], status: 'NOERROR', answer: ['mapped.example.org. 60 IN A 10.0.0.3'] },
    { q: ['inline.example.org', 'A'], status: 'NOERROR', answer: ['inline.example.org. 60 IN A 10.0.0.5'] },
    { q: ['inline.example.org', 'AAAA'], status: 'NOERROR', answer: [], flags: 'aa' },
    { q: ['alpha.example.org', 'MX'], status: 'NOERROR', answer: [] },
    { q: ['1.0.0.10.in-addr.arpa', 'PTR'], status: 'NOERROR', answer: ['1.0.0.10.in-addr.arpa. 60 IN PTR alpha.example.org.', '1.0.0.10.in-addr.arpa. 60 IN PTR alpha2.example.org.'] },
    { q: ['-x', 'fd00::2'], status: 'NOERROR', answer: ['2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa. 60 IN PTR beta.example.org.'] },
    // CoreDNS answers SERVFAIL (not NXDOMAIN) for an unknown name without fallthrough.
    { q: ['missing.example.org', 'A'], status: 'SERVFAIL', answer: [] },
    { q: ['broken.example.org', 'A'], status: 'SERVFAIL', answer: [] },
  ];
  for (const row of rows) {
    const r = await dig(srv.port, [...row.q, '+norec']);
    t.equal(r.status, row.status, `${row.q.join(' ')} status`);
    t.same(r.answer.map((a) => `${a.name} ${a.ttl} ${a.class} ${a.type} ${a.data}`).sort(), row.answer.sort(), `${row.q.join(' ')} answer`);
    if (row.flags) t.ok(r.flags.includes(row.flags), `${row.q.join(' ')} has ${row.flags}`);
  }
  // Misses under the fallthrough zone reach whoami; unknown reverse names always pass on.
  const ft = await dig(srv.port, ['x.sub.example.org', 'A']);
  t.equal(ft.status, 'NOERROR');
  t.equal(ft.additional[0]?.data, '127.0.0.1', 'whoami answered the fallthrough');
  const ptrMiss = await dig(srv.port, ['9.9.9.10.in-addr.arpa', 'PTR']);
  t.equal(ptrMiss.additional[0]?.data, '127.0.0.1', 'whoami answered the unknown PTR');

  const metrics = await srv.server.registry.getSingleMetricAsString('coredns_hosts_entries');
  t.match(metrics, /coredns_hosts_entries\{hostsfile=".*hosts\.txt"\} 6/, 'entries = 5 file names + 1 inline');

  writeFileSync(join(srv.dir, 'hosts.txt'), HOSTS + '10.0.0.7 added.example.org\n');
  const later = new Date(Date.now() + 2000);
  utimesSync(join(srv.dir, 'hosts.txt'), later, later);
  let added = await dig(srv.port, ['added.example.org', 'A']);
  for (let i = 0; i < 30 && added.status !== 'NOERROR'; i++) {
    await sleep(100);
    added = await dig(srv.port, ['added.example.org', 'A']);
  }
  t.same(added.answer.map((a) => a.data), ['10.0.0.7'], 'reload picked up the new entry');
  t.equal((await dig(srv.port, ['alpha.example.org', 'A'])).answer[0]?.data, '10.0.0.1', 'old entries kept');
});

t.test('hosts: bad config', async (t) => {
  const rows: [string, RegExp][] = [
    ['hosts {\n  ttl 0\n}', /Corefile:3 - Error during setup: plugin\/hosts: ttl must be in range \[1, 65535\]: 0/],
    ['hosts {\n  ttl x\n}', /Corefile:3 - Error during setup: plugin\/hosts: ttl must be in range \[1, 65535\]: x/],
    ['hosts {\n  ttl\n}', /Corefile:3 - Error during setup: plugin\/hosts: ttl: wrong argument count: want SECONDS, got 0/],
    ['hosts {\n  reload 5x\n}', /Corefile:3 - Error during setup: plugin\/hosts: reload: invalid duration '5x'/],
    ['hosts {\n  reload -1s\n}', /Corefile:3 - Error during setup: plugin\/hosts: reload: duration must not be negative, got '-1s'/],
    ['hosts {\n  no_reverse yes\n}', /Corefile:3 - Error during setup: plugin\/hosts: no_reverse: takes no arguments, got 'yes'/],
    ['hosts {\n  fallthrough ::/0\n}', /Corefile:3 - Error during setup: plugin\/hosts: fallthrough: invalid CIDR ::\/0/],
    ['hosts {\n  fallthrogh\n}', /Corefile:3 - Error during setup: plugin\/hosts: unknown property 'fallthrogh'/],
    ['hosts {\n  10.0.0.1\n}', /Corefile:3 - Error during setup: plugin\/hosts: inline entry '10.0.0.1' has no host name/],
    ['hosts {\n  fallthrough\n  10.0.0.1 a.example.org\n}', /Corefile:4 - Error during setup: plugin\/hosts: inline entry '10.0.0.1' after fallthrough/],
    ['hosts {\n  ttl 5\n  ttl 6\n}', /Corefile:4 - Error during setup: plugin\/hosts: 'ttl' given more than once/],
  ];
  for (const [block, want] of rows) {
    await t.rejects(startServer(`example.org {\n${block}\n}\n`), want, block.replace(/\n/g, ' '));
  }
});

t.test('hosts: fallthrough CIDRs are reverse zones (CoreDNS plugin/pkg/fall)', async (t) => {
  const srv = await startServer('. {\n    hosts {\n        10.0.0.1 one.example.org\n        fallthrough 10.0.0.0/8\n    }\n    whoami\n}\n');
  t.teardown(() => srv.stop());
  // A known address under the zone is still answered by hosts.
  const known = await dig(srv.port, ['-x', '10.0.0.1']);
  t.same(known.answer.map((a) => a.data), ['one.example.org.'], 'hosts answers its own PTR');
  // Misses for names under 10.in-addr.arpa. reach whoami; the same miss outside it is hosts' SERVFAIL.
  for (const [name, type] of [['9.9.9.10.in-addr.arpa', 'A'], ['9.9.9.10.in-addr.arpa', 'TXT'], ['10.in-addr.arpa', 'AAAA']]) {
    const r = await dig(srv.port, [name!, type!]);
    t.equal(r.status, 'NOERROR', `${name} ${type} passed on`);
    t.equal(r.additional[0]?.data, '127.0.0.1', `${name} ${type}: whoami answered`);
  }
  for (const [name, type] of [['9.9.9.11.in-addr.arpa', 'A'], ['missing.example.org', 'A'], ['10.0.0.0/8', 'A']]) {
    const r = await dig(srv.port, [name!, type!]);
    t.equal(r.status, 'SERVFAIL', `${name} ${type}: no fallthrough outside 10.in-addr.arpa.`);
  }
  // PTR misses pass on whatever the zones (CoreDNS hosts: reverse lookups are never final here).
  const ptr = await dig(srv.port, ['-x', '10.9.9.9']);
  t.equal(ptr.additional[0]?.data, '127.0.0.1', 'unknown PTR under the zone: whoami');
});
