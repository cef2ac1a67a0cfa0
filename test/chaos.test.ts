import t from 'tap';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { startServer } from './helpers/server.js';
import { dig } from './helpers/dig.js';
import { makeQuery, startKnot } from './helpers/upstream.js';
import { serveCli } from './helpers/serve-cli.js';
import { CLASS, TYPE } from '../src/server/wire/constants.js';
import type { Reply } from '../src/server/types.js';
import { VERSION } from '../src/pkg/version.js';

const ZONE = readFileSync(new URL('../zones/example.org.zone', import.meta.url), 'utf8');
const cli = resolve('dist/src/cli.js');
const skip = !existsSync(cli) && 'dist/src/cli.js missing (run tsc -p . first)';

t.test("OpenShift's dns-operator Corefile (bufsize, chaos for hostname.bind) passes clusterdns check", { skip }, async (t) => {
  const file = resolve('test/fixtures/corefiles/openshift.Corefile');
  const r = await new Promise<{ code: number; stdout: string; stderr: string }>((done) => {
    execFile(process.execPath, [cli, 'check', '-conf', file], { env: { ...process.env, KUBERNETES_SERVICE_HOST: '' }, timeout: 30_000 },
      (err, stdout, stderr) => done({ code: err ? Number(err.code) : 0, stdout, stderr }));
  });
  t.equal(r.stderr, '');
  t.equal(r.stdout, `${file}: OK (3 server blocks)\n`);
  t.equal(r.code, 0);
});

t.test("OpenShift's Corefile served by clusterdns serve: hostname.bind, cluster names, CH and IN forwarded to knotd", { skip }, async (t) => {
  const knot = await startKnot({ zones: { 'example.org.': ZONE } });
  t.teardown(() => knot.stop());
  // Off-cluster stand-ins: manifests for the API, knotd for /etc/resolv.conf, free ports for the HTTP endpoints.
  const text = readFileSync('test/fixtures/corefiles/openshift.Corefile', 'utf8');
  const srv = await serveCli((port) => text.replaceAll(':5353', `:${port}`)
    .replace('forward . /etc/resolv.conf {', `forward . ${knot.addr} {`)
    .replaceAll('prometheus 127.0.0.1:9153', 'prometheus 127.0.0.1:0')
    .replace('health {', 'health 127.0.0.1:0 {')
    .replace(/^ {4}ready$/m, '    ready 127.0.0.1:0')
    .replace('        pods insecure', '        manifests cluster.yaml\n        pods insecure'),
  { files: { 'cluster.yaml': readFileSync('zones/cluster.yaml', 'utf8') }, probe: ['kubernetes.default.svc.cluster.local', 'A'] });
  t.teardown(() => srv.stop());
  t.same((await dig(srv.port, ['-c', 'CH', '-t', 'TXT', 'hostname.bind'])).answer.map((a) => a.data), [`"${hostname()}"`], 'hostname.bind from chaos');
  const svc = await dig(srv.port, ['kubernetes.default.svc.cluster.local', 'A']);
  t.equal(svc.status, 'NOERROR');
  t.equal(svc.answer.length, 1, 'a cluster name from the kubernetes block');
  const www = await dig(srv.port, ['www.example.org', 'A', '+bufsize=4096']);
  t.same(www.answer.map((a) => a.data).sort(), ['192.0.2.80', '192.0.2.81'], 'forwarded to knotd (bufsize 1232 on the way)');
  t.match((await dig(srv.port, ['-c', 'CH', '-t', 'TXT', 'version.server'])).answer, [{ class: 'CH', type: 'TXT' }], 'CH relayed to knotd');
});

t.test('chaos: CH TXT answers; other questions go on', async (t) => {
  const srv = await startServer('. {\n    chaos v1.2.3 bob alice bob\n}\n');
  t.teardown(() => srv.stop());
  const txt = async (name: string) => (await dig(srv.port, ['-c', 'CH', '-t', 'TXT', name])).answer.map((a) => `${a.name} ${a.ttl} ${a.class} ${a.type} ${a.data}`);
  t.same(await txt('version.bind'), ['version.bind. 0 CH TXT "v1.2.3"']);
  t.same(await txt('VERSION.server'), ['VERSION.server. 0 CH TXT "v1.2.3"'], 'question case kept');
  t.same((await txt('authors.bind')).sort(), ['authors.bind. 0 CH TXT "alice"', 'authors.bind. 0 CH TXT "bob"'], 'authors de-duplicated');
  t.same(await txt('hostname.bind'), [`hostname.bind. 0 CH TXT "${hostname()}"`]);
  t.same(await txt('id.server'), [`id.server. 0 CH TXT "${hostname()}"`]);
  // Nothing after chaos in this block: whatever it passes on ends in SERVFAIL, like CoreDNS's NextOrFailure.
  t.equal((await dig(srv.port, ['-c', 'CH', '-t', 'TXT', 'other.bind'])).status, 'SERVFAIL', 'another name: next plugin');
  t.equal((await dig(srv.port, ['-c', 'CH', '-t', 'A', 'version.bind'])).status, 'SERVFAIL', 'another type: next plugin');
  t.equal((await dig(srv.port, ['version.bind', 'TXT'])).status, 'SERVFAIL', 'class IN: next plugin');
});

t.test('chaos: defaults and bad config', async (t) => {
  const srv = await startServer('hostname.bind version.bind authors.bind {\n    chaos\n}\n');
  t.teardown(() => srv.stop());
  t.same((await dig(srv.port, ['-c', 'CH', '-t', 'TXT', 'version.bind'])).answer.map((a) => a.data), [`"clusterdns-${VERSION}"`]);
  t.same((await dig(srv.port, ['-c', 'CH', '-t', 'TXT', 'authors.bind'])).answer.map((a) => a.data), ['"clusterdns"']);
  await t.rejects(startServer('. {\n    chaos v1 {\n        foo\n    }\n}\n'), /Corefile:3 - Error during setup: plugin\/chaos: unknown property 'foo'/);
});

t.test('classes: a listener with forward or chaos routes every class; rewrite class turns CH into IN', async (t) => {
  const knot = await startKnot({ zones: { 'example.org.': ZONE } });
  t.teardown(() => knot.stop());
  const fwd = await startServer(`. {\n    forward . ${knot.addr}\n}\nhostname.bind {\n    chaos\n}\n`);
  t.teardown(() => fwd.stop());
  // knotd answers version.server/id.server in class CH itself: the question reached it unchanged.
  const ver = await dig(fwd.port, ['-c', 'CH', '-t', 'TXT', 'version.server']);
  t.equal(ver.status, 'NOERROR', 'CH relayed by forward');
  t.match(ver.answer, [{ name: 'version.server.', class: 'CH', type: 'TXT' }], 'knotd\'s own CH answer');
  t.same((await dig(fwd.port, ['-c', 'CH', '-t', 'TXT', 'hostname.bind'])).answer.map((a) => a.data), [`"${hostname()}"`], 'chaos block on the same port');
  const hs = await dig(fwd.port, ['-c', 'HS', '-t', 'A', 'www.example.org']);
  t.not(hs.status, 'NONE', 'class HS reaches the upstream too');
  t.notMatch(hs.raw, /Question section mismatch/);

  const plain = await startServer('example.org {\n    file db\n}\n', { files: { db: ZONE } });
  t.teardown(() => plain.stop());
  t.equal((await dig(plain.port, ['-c', 'CH', '-t', 'A', 'www.example.org'])).status, 'REFUSED', 'no forward/chaos on the port: REFUSED');
  t.equal((await dig(plain.port, ['www.example.org', 'A'])).status, 'NOERROR', 'IN as before');

  const rw = await startServer(`. {\n    rewrite class CH IN\n    forward . ${knot.addr}\n}\n`);
  t.teardown(() => rw.stop());
  const r = await dig(rw.port, ['-c', 'CH', '-t', 'A', 'www.example.org']);
  t.equal(r.status, 'NOERROR');
  t.match(r.raw, /;www\.example\.org\.\s+CH\s+A/, 'the CH question is echoed');
  t.same(r.answer.map((a) => `${a.class} ${a.data}`).sort(), ['IN 192.0.2.80', 'IN 192.0.2.81'], 'answered from the IN zone');
});

t.test('classes: answers memoised by file, hosts and kubernetes are kept per class', async (t) => {
  const cluster = readFileSync(new URL('../zones/cluster.yaml', import.meta.url), 'utf8');
  const srv = await startServer(`cluster.local {
    kubernetes cluster.local {
        manifests cluster.yaml
    }
}
example.org {
    file db
}
hosts.test {
    hosts {
        192.0.2.1 a.hosts.test
    }
}
. {
    forward . 127.0.0.1:9
}
`, { files: { db: ZONE, 'cluster.yaml': cluster } });
  t.teardown(() => srv.stop());
  for (const [name, i] of [['kubernetes.default.svc.cluster.local.', 0], ['www.example.org.', 1], ['a.hosts.test.', 2]] as const) {
    const block = srv.server.config!.blocks[i]!;
    const ask = async (klass: number) => (await block.handler({ ...makeQuery(name, TYPE.A, { class: klass }), zone: block.zones[0]! })) as Reply;
    const ch = await ask(CLASS.CH);
    const inet = await ask(CLASS.IN);
    t.equal(ch.msg?.question?.class, CLASS.CH, `${name}: the CH reply echoes CH`);
    t.equal(inet.msg?.question?.class, CLASS.IN, `${name}: the IN reply after it is IN's own (the server's fast path applies)`);
    t.equal((await ask(CLASS.IN)).msg, inet.msg, `${name}: and memoised`);
  }
});
