import t from 'tap';
import { copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dig, type DigRR } from './helpers/dig.js';
import { startServer, type RunningServer } from './helpers/server.js';
import { localAddresses } from '../src/plugins/kubernetes/setup.js';
import { sleep } from './helpers/wait.js';
import { tempDir } from './helpers/temp-dir.js';
import type { DnsCase } from './helpers/in-process.js';
import {
  answerCases as cases, defaultNs, mainCorefile, normaliseSerial, NX, optionCases, optionsCorefile, svc, Z,
} from './fixtures/kubernetes/cases.js';

/*
 * Every answer of the kubernetes plugin, asked with real dig against a running server over real
 * manifests (zones/cluster.yaml + test/fixtures/kubernetes/edge-cases.yaml). The answer table is shared
 * with test/kubernetes-answers.test.ts, which asks the same questions in-process in milliseconds.
 */

const root = join(import.meta.dirname, '..');
const dir = tempDir('k8s');
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
copyFileSync(join(root, 'zones', 'cluster.yaml'), join(dir, 'cluster.yaml'));
copyFileSync(join(root, 'test', 'fixtures', 'kubernetes', 'edge-cases.yaml'), join(dir, 'edge-cases.yaml'));

const servers: RunningServer[] = [];
t.teardown(async () => { for (const s of servers) await s.stop(); });
async function serve(corefile: string): Promise<number> {
  const s = await startServer(corefile);
  servers.push(s);
  return s.port;
}

const main = await serve(mainCorefile(dir));

/** dig lines normalised: one space between fields, SOA serial replaced by SERIAL. */
const line = (rr: DigRR) => normaliseSerial(`${rr.name} ${rr.ttl} IN ${rr.type} ${rr.data}`);

t.test(`kubernetes answers (${cases.length} cases, real dig)`, async (t) => {
  t.ok(cases.length >= 120, 'at least 120 cases');
  const run = async (c: DnsCase) => {
    const r = await dig(main, [c.q, c.type, '+norec']);
    const label = `${c.q} ${c.type}`;
    const rcode = c.rcode ?? 'NOERROR';
    const an = c.an ?? [];
    const ns = c.ns ?? defaultNs(c);
    t.equal(r.status, rcode, `${label}: rcode`);
    t.ok(r.flags.includes('aa'), `${label}: AA`);
    t.same(r.answer.map(line).sort(), [...an].sort(), `${label}: answer`);
    t.same(r.authority.map(line).sort(), [...ns].sort(), `${label}: authority`);
    if (c.ar) t.same(r.additional.map(line).sort(), [...c.ar].sort(), `${label}: additional`);
  };
  for (let i = 0; i < cases.length; i += 8) await Promise.all(cases.slice(i, i + 8).map(run));
});

t.test('apex NS and ns.dns name: the server\'s own addresses', async (t) => {
  const ips = localAddresses({ peers: new Map() });
  const ns = await dig(main, [Z, 'NS']);
  const a = await dig(main, [`ns.dns.${Z}`, 'A']);
  const v4 = ips.filter((ip) => ip.includes('.'));
  if (ips.length === 0) {
    t.same(ns.answer, [], 'no non-loopback address: no NS record');
  } else {
    t.same(ns.answer.map(line), [`${Z} 30 IN NS ns.dns.${Z}`]);
    t.same(ns.additional.map((r) => r.data).sort(), [...ips].sort());
  }
  t.same(a.answer.map((r) => r.data).sort(), v4.sort());
  t.equal(a.status, 'NOERROR');
});

t.test('options: namespaces, endpoint_pod_names, pods verified, ignore empty_service, ttl, CIDR zone', async (t) => {
  const port = await serve(optionsCorefile(dir));
  const b = optionCases;
  for (const c of b) {
    const r = await dig(port, [c.q, c.type]);
    t.equal(r.status, c.rcode ?? 'NOERROR', `${c.q} ${c.type}: rcode`);
    t.same(r.answer.map(line).sort(), (c.an ?? []).sort(), `${c.q} ${c.type}: answer`);
    t.same(r.authority.map(line), c.ns ?? [], `${c.q} ${c.type}: authority`);
  }
});

t.test('options: noendpoints, namespace_labels, fallthrough to the next plugin', async (t) => {
  const port = await serve(`cluster.local in-addr.arpa {
  kubernetes {
    manifests ${dir}
    noendpoints
    namespace_labels team=dns
    fallthrough in-addr.arpa
  }
  whoami
}
`);
  const q = async (name: string, type: string) => dig(port, [name, type]);
  t.equal((await q(svc('multi.testns'), 'A')).status, NX, 'headless without endpoint watch');
  t.equal((await q(svc('alpha.multi.testns'), 'A')).status, NX, 'endpoint names without endpoint watch');
  t.same((await q(svc('empty.testns'), 'A')).answer.map((r) => r.data), ['10.0.0.9'], 'ClusterIP still answers');
  t.equal((await q(svc('redis.default'), 'A')).status, NX, 'namespace without the label');
  t.same((await q('9.0.0.10.in-addr.arpa.', 'PTR')).answer.map((r) => r.data), [svc('empty.testns')]);
  const fell = await q('1.0.9.10.in-addr.arpa.', 'PTR');
  t.equal(fell.status, 'NOERROR', 'reverse miss falls through');
  t.ok(fell.additional.some((r) => r.type === 'A' && r.data === '127.0.0.1'), 'whoami answered');
  const nx = await q(svc('nosuch.testns'), 'A');
  t.equal(nx.status, NX, 'forward miss outside the fallthrough zones');
});

t.test('option: labels selects Services and EndpointSlices', async (t) => {
  const port = await serve(`cluster.local {
  kubernetes {
    manifests ${dir}
    labels dns=yes-please
  }
}
`);
  const r = await dig(port, [svc('multi.testns'), 'A']);
  t.same(r.answer.map((x) => x.data).sort(), ['10.9.0.1', '10.9.0.2'], 'only the labelled slice');
  t.equal((await dig(port, [svc('redis.default'), 'A'])).status, NX, 'unlabelled service does not exist');
});

t.test('live update: editing the manifests changes answers within 2 s', async (t) => {
  const live = tempDir('live');
  t.teardown(() => rmSync(live, { recursive: true, force: true }));
  const file = join(live, 'cluster.yaml');
  writeFileSync(file, readFileSync(join(root, 'zones', 'cluster.yaml'), 'utf8'));
  const port = await serve(`cluster.local {\n  kubernetes {\n    manifests ${file}\n  }\n}\n`);
  const name = svc('redis.default');
  t.same((await dig(port, [name, 'A'])).answer.map((r) => r.data), ['10.103.50.52']);
  const before = (await dig(port, [`${Z}`, 'SOA'])).answer[0]!.data.split(' ')[2];
  writeFileSync(file, readFileSync(file, 'utf8').replace('clusterIP: 10.103.50.52', 'clusterIP: 10.103.50.53')
    + '---\napiVersion: v1\nkind: Service\nmetadata: {name: brand-new, namespace: fresh}\nspec: {clusterIP: 10.1.1.1, ports: [{port: 80}]}\n');
  const start = Date.now();
  let got: string[] = [];
  while (Date.now() - start < 2000) {
    got = (await dig(port, [name, 'A'])).answer.map((r) => r.data);
    if (got[0] === '10.103.50.53') break;
    await sleep(50);
  }
  t.same(got, ['10.103.50.53'], `changed within ${Date.now() - start} ms`);
  t.same((await dig(port, [svc('brand-new.fresh'), 'A'])).answer.map((r) => r.data), ['10.1.1.1'], 'new service in an implicit namespace');
  const after = (await dig(port, [`${Z}`, 'SOA'])).answer[0]!.data.split(' ')[2];
  t.ok(Number(after) > Number(before), 'SOA serial moved');
  // A broken edit keeps the last good answers.
  writeFileSync(file, readFileSync(file, 'utf8').replace('clusterIP: 10.103.50.53', 'clusterIP: not-an-ip'));
  await sleep(1500);
  t.same((await dig(port, [name, 'A'])).answer.map((r) => r.data), ['10.103.50.53'], 'bad document: last good object stays');
});

t.test('setup errors name the option', async (t) => {
  const bad: [string, RegExp][] = [
    [`kubernetes {\n manifests ${dir}\n bogus 1\n }`, /Corefile:4 - Error during setup: plugin\/kubernetes: unknown property 'bogus'/],
    [`kubernetes {\n manifests ${dir}\n ttl 3601\n }`, /ttl must be in range \[0, 3600\]: 3601/],
    [`kubernetes {\n manifests ${dir}\n pods sometimes\n }`, /wrong value for pods: sometimes/],
    [`kubernetes {\n manifests ${dir}\n namespaces a\n namespace_labels x=y\n }`, /namespaces and namespace_labels cannot both be set/],
    [`kubernetes {\n manifests ${dir}\n ignore everything\n }`, /unable to parse ignore value/],
    [`kubernetes {\n manifests ${dir}\n tls a b\n }`, /tls: wrong argument count/],
    [`kubernetes {\n manifests ${dir}\n startup_timeout soon\n }`, /Corefile:4 .*startup_timeout: invalid duration 'soon'/],
    [`kubernetes {\n manifests ${dir}\n labels a b c\n }`, /unable to parse labels selector/],
    [`kubernetes {\n manifests /nonexistent/path\n }`, /manifests: \/nonexistent\/path does not exist/],
    [`kubernetes {\n manifests ${dir}\n zonal\n }`, /'zonal' is not supported/],
    [`kubernetes in-addr.arpa {\n manifests ${dir}\n }`, /non-reverse zone name must be used/],
  ];
  for (const [body, re] of bad) {
    await t.rejects(startServer(`cluster.local in-addr.arpa {\n${body}\n}\n`), re, String(re));
  }
});
