import t from 'tap';
import { join } from 'node:path';
import { dig, type DigRR } from './helpers/dig.js';
import { startServer } from './helpers/server.js';

/* k8s_external over the embedded snapshot, asked with real dig. */

const snapshot = join(import.meta.dirname, '..', 'zones', 'cluster.yaml');
const s = await startServer(`example.com 80.11.12.0/24 cluster.local {
  k8s_external example.com 80.11.12.0/24 {
    headless
  }
  kubernetes cluster.local {
    manifests ${snapshot}
  }
}
`);
t.teardown(() => s.stop());

const line = (rr: DigRR) => `${rr.name} ${rr.ttl} IN ${rr.type} ${rr.type === 'SOA' ? rr.data.replace(/^(\S+ \S+) \d+/, '$1 SERIAL') : rr.data}`;
const SOA = 'example.com. 5 IN SOA ns1.dns.example.com. hostmaster.dns.example.com. SERIAL 7200 1800 86400 5';
const E = 'example.com.';

const cases: [string, string, string, string[], string[]?, string[]?][] = [
  [`external-web.default.${E}`, 'A', 'NOERROR', [`external-web.default.${E} 5 IN A 80.11.12.10`]],
  [`External-Web.Default.Example.COM.`, 'A', 'NOERROR', [`External-Web.Default.Example.COM. 5 IN A 80.11.12.10`]],
  [`test-lb.default.${E}`, 'A', 'NOERROR', [`test-lb.default.${E} 5 IN A 192.168.64.4`]],
  [`external-web.default.${E}`, 'AAAA', 'NOERROR', [], [SOA]],
  [`external-web.default.${E}`, 'TXT', 'NOERROR', [], [SOA]],
  [`_http._tcp.external-web.default.${E}`, 'SRV', 'NOERROR', [`_http._tcp.external-web.default.${E} 5 IN SRV 0 100 80 external-web.default.${E}`], [], [`external-web.default.${E} 5 IN A 80.11.12.10`]],
  [`_ftp._tcp.external-web.default.${E}`, 'SRV', 'NXDOMAIN', [], [SOA]],
  [`redis.default.${E}`, 'A', 'NXDOMAIN', [], [SOA]],
  [`default.${E}`, 'A', 'NOERROR', [], [SOA]],
  [`nosuchns.${E}`, 'A', 'NXDOMAIN', [], [SOA]],
  [`a.b.c.external-web.default.${E}`, 'A', 'NXDOMAIN', [], [SOA]],
  [`web.default.${E}`, 'A', 'NOERROR', [`web.default.${E} 5 IN A 10.233.90.70`, `web.default.${E} 5 IN A 10.233.92.240`]],
  [`web-0.web.default.${E}`, 'A', 'NOERROR', [`web-0.web.default.${E} 5 IN A 10.233.90.70`]],
  [E, 'SOA', 'NOERROR', [SOA], []],
  [E, 'A', 'NOERROR', [], [SOA]],
  [`dns.${E}`, 'A', 'NOERROR', [], [SOA]],
  [`x.dns.${E}`, 'A', 'NXDOMAIN', [], [SOA]],
  ['10.12.11.80.in-addr.arpa.', 'PTR', 'NOERROR', [`10.12.11.80.in-addr.arpa. 5 IN PTR external-web.default.${E}`]],
  ['11.12.11.80.in-addr.arpa.', 'PTR', 'NXDOMAIN', [], ['12.11.80.in-addr.arpa. 5 IN SOA ns1.dns.12.11.80.in-addr.arpa. hostmaster.dns.12.11.80.in-addr.arpa. SERIAL 7200 1800 86400 5']],
];

t.test('k8s_external answers', async (t) => {
  for (const [name, type, rcode, an, ns = an.length ? [] : [SOA], ar] of cases) {
    const r = await dig(s.port, [name, type]);
    t.equal(r.status, rcode, `${name} ${type}: rcode`);
    t.ok(r.flags.includes('aa'), `${name} ${type}: AA`);
    t.same(r.answer.map(line).sort(), [...an].sort(), `${name} ${type}: answer`);
    t.same(r.authority.map(line), ns, `${name} ${type}: authority`);
    if (ar) t.same(r.additional.map(line), ar, `${name} ${type}: additional`);
  }
  const nsr = await dig(s.port, [E, 'NS']);
  t.same(nsr.answer.map(line), [`${E} 5 IN NS ns1.dns.${E}`], 'apex NS');
  t.ok(nsr.additional.every((rr) => rr.name === `ns1.dns.${E}`), 'NS glue owner');
});

t.test('k8s_external setup errors', async (t) => {
  await t.rejects(startServer(`example.com {\n k8s_external {\n  bogus\n }\n kubernetes cluster.local {\n  manifests ${snapshot}\n }\n}\n`),
    /plugin\/k8s_external: unknown property 'bogus'/);
  await t.rejects(startServer('example.com {\n k8s_external\n}\n'), /kubernetes plugin not loaded/);
});
