import t from 'tap';
import { copyFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { dig, type DigRR } from './helpers/dig.js';
import { startServer } from './helpers/server.js';
import { tempDir } from './helpers/temp-dir.js';
import { startKnot } from './helpers/upstream.js';
import { E, EXTERNAL_LB_FIXTURE, externalCases as cases, externalCorefile } from './fixtures/kubernetes/external-cases.js';

/*
 * k8s_external over the embedded snapshot plus cloud LoadBalancers, asked with real dig
 * (test/kubernetes-answers.test.ts asks the same table in-process).
 */

const root = join(import.meta.dirname, '..');
const snapshot = join(root, 'zones', 'cluster.yaml');
const dir = tempDir('k8s-external');
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
copyFileSync(snapshot, join(dir, 'cluster.yaml'));
copyFileSync(join(root, 'test', 'fixtures', 'kubernetes', EXTERNAL_LB_FIXTURE), join(dir, EXTERNAL_LB_FIXTURE));
const s = await startServer(externalCorefile(dir));
t.teardown(() => s.stop());

const line = (rr: DigRR) => `${rr.name} ${rr.ttl} IN ${rr.type} ${rr.type === 'SOA' ? rr.data.replace(/^(\S+ \S+) \d+/, '$1 SERIAL') : rr.data}`;

t.test('k8s_external answers', async (t) => {
  for (const { q: name, type, rcode, an = [], ns, ar } of cases) {
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

t.test('a LoadBalancer hostname resolved through forward to knotd, as in a `.:53` block', async (t) => {
  const up = await startKnot({ zones: { 'elb.example.net.': `$ORIGIN elb.example.net.
$TTL 120
@ SOA ns hostmaster 1 3600 600 86400 60
@ NS ns
ns A 127.0.0.1
a1b2-123 A 198.51.100.7
a1b2-123 A 198.51.100.8
` } });
  t.teardown(up.stop);
  const srv = await startServer(`. {
  k8s_external example.com
  kubernetes cluster.local {
    manifests ${dir}
    ttl 30
  }
  forward . ${up.addr}
}
`);
  t.teardown(srv.stop);
  const a = await dig(srv.port, [`Aws-Lb.Default.${E}`, 'A']);
  t.equal(a.status, 'NOERROR');
  t.same(a.answer.map(line).sort(), [
    `Aws-Lb.Default.${E} 30 IN CNAME a1b2-123.elb.example.net.`,
    'a1b2-123.elb.example.net. 120 IN A 198.51.100.7',
    'a1b2-123.elb.example.net. 120 IN A 198.51.100.8',
  ], 'CNAME with the kubernetes TTL, then the upstream\'s records and TTL');
  const aaaa = await dig(srv.port, [`aws-lb.default.${E}`, 'AAAA']);
  t.same(aaaa.answer.map(line), [`aws-lb.default.${E} 30 IN CNAME a1b2-123.elb.example.net.`], 'no AAAA upstream: the CNAME alone');
  const srvr = await dig(srv.port, [`_http._tcp.aws-lb.default.${E}`, 'SRV']);
  t.same(srvr.answer.map(line), [`_http._tcp.aws-lb.default.${E} 30 IN SRV 0 100 80 a1b2-123.elb.example.net.`]);
  t.same(srvr.additional.map(line).sort(), ['a1b2-123.elb.example.net. 120 IN A 198.51.100.7', 'a1b2-123.elb.example.net. 120 IN A 198.51.100.8']);
});

t.test('k8s_external setup errors', async (t) => {
  await t.rejects(startServer(`example.com {\n k8s_external {\n  bogus\n }\n kubernetes cluster.local {\n  manifests ${snapshot}\n }\n}\n`),
    /plugin\/k8s_external: unknown property 'bogus'/);
  await t.rejects(startServer('example.com {\n k8s_external\n}\n'), /kubernetes plugin not loaded/);
});
