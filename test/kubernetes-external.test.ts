import t from 'tap';
import { join } from 'node:path';
import { dig, type DigRR } from './helpers/dig.js';
import { startServer } from './helpers/server.js';
import { E, externalCases as cases, externalCorefile } from './fixtures/kubernetes/external-cases.js';

/* k8s_external over the embedded snapshot, asked with real dig (test/kubernetes-answers.test.ts asks the same table in-process). */

const snapshot = join(import.meta.dirname, '..', 'zones', 'cluster.yaml');
const s = await startServer(externalCorefile(snapshot));
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

t.test('k8s_external setup errors', async (t) => {
  await t.rejects(startServer(`example.com {\n k8s_external {\n  bogus\n }\n kubernetes cluster.local {\n  manifests ${snapshot}\n }\n}\n`),
    /plugin\/k8s_external: unknown property 'bogus'/);
  await t.rejects(startServer('example.com {\n k8s_external\n}\n'), /kubernetes plugin not loaded/);
});
