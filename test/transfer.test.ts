import t from 'tap';
import { execFile, spawn } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { dig, parseDig, type DigRR } from './helpers/dig.js';
import { inProcessServer } from './helpers/in-process.js';
import { startServer } from './helpers/server.js';
import { tempDir } from './helpers/temp-dir.js';
import { freePort, startKnot } from './helpers/upstream.js';
import { waitFor } from './helpers/wait.js';
import { EXTERNAL_LB_FIXTURE, externalCases, externalCorefile } from './fixtures/kubernetes/external-cases.js';

/* The transfer plugin: AXFR/IXFR out of kubernetes, k8s_external and file zones with real dig, and a real knotd as a secondary. */

const run = promisify(execFile);
const root = join(import.meta.dirname, '..');
const snapshot = join(root, 'zones', 'cluster.yaml');
const line = (rr: DigRR) => `${rr.name} ${rr.ttl} IN ${rr.type} ${rr.data}`;

/** `dig AXFR` (or `IXFR=N`): every record of every message, and dig's XFR summary. */
async function axfr(port: number, zone: string, type = 'AXFR'): Promise<{ records: DigRR[]; raw: string }> {
  const { stdout } = await run('dig', ['@127.0.0.1', '-p', String(port), '+time=5', '+tries=1', zone, type], { timeout: 30_000, maxBuffer: 64 << 20 });
  const records = stdout.split('\n').filter((l) => l && !l.startsWith(';')).map((l) => {
    const [name, ttl, klass, rtype, ...data] = l.split(/\s+/);
    return { name: name!, ttl: Number(ttl), class: klass!, type: rtype!, data: data.join(' ') };
  });
  return { records, raw: stdout };
}

const corefile = (manifests: string, transfer = '  transfer {\n    to *\n  }\n') => `cluster.local example.com {
${transfer}  kubernetes cluster.local {
    manifests ${manifests}
  }
  k8s_external example.com {
    headless
  }
}
`;

const s = await startServer(corefile(snapshot));
t.teardown(() => s.stop());

t.test('AXFR of the kubernetes zone: CoreDNS xfr.go records, SOA first and last', async (t) => {
  const { records } = await axfr(s.port, 'cluster.local');
  const lines = records.map(line);
  t.equal(records[0]!.type, 'SOA', 'starts with the SOA');
  t.equal(records.at(-1)!.type, 'SOA', 'ends with the SOA');
  t.equal(records[1]!.type, 'NS', 'NS next');
  for (const want of [
    'myweb-svc-ses.default.svc.cluster.local. 5 IN A 10.233.24.46',
    'redis.default.svc.cluster.local. 5 IN A 10.103.50.52',
    'my-service.prod.svc.cluster.local. 5 IN CNAME my.database.example.com.',
    'web-0.web.default.svc.cluster.local. 5 IN A 10.233.90.70',
    'web.default.svc.cluster.local. 5 IN A 10.233.90.70',
  ]) t.ok(lines.includes(want), want);
  t.ok(lines.includes('_https._tcp.kubernetes.default.svc.cluster.local. 5 IN SRV 0 100 443 kubernetes.default.svc.cluster.local.'), 'named port SRV');
  t.ok(lines.includes('kubernetes.default.svc.cluster.local. 5 IN SRV 0 100 443 kubernetes.default.svc.cluster.local.'), 'bare SRV at the service name (peer-finder)');
  t.ok(lines.includes('_http._tcp.web.default.svc.cluster.local. 5 IN SRV 0 50 80 web-1.web.default.svc.cluster.local.'), 'headless: SRV per endpoint, weight 100 / endpoints');
  t.notOk(lines.some((l) => l.startsWith('_') && l.includes('myweb-svc-named.')), 'an unnamed port has no _port._proto SRV');
  // Every address record the transfer holds is what a query for it answers.
  const addresses = records.filter((r) => r.type === 'A' && r.name.endsWith('.svc.cluster.local.'));
  t.ok(addresses.length > 10, `${addresses.length} A records`);
  for (const name of new Set(addresses.map((r) => r.name))) {
    const want = [...new Set(addresses.filter((r) => r.name === name).map((r) => r.data))].sort();
    t.same((await dig(s.port, [name, 'A'])).answer.map((r) => r.data).sort(), want, `${name} A as queried`);
  }

  const soa = records[0]!.data.split(' ');
  const serial = Number(soa[2]);
  const current = await axfr(s.port, 'cluster.local', `IXFR=${serial}`);
  t.same(current.records.map((r) => r.type), ['SOA'], 'IXFR at the current serial: the SOA alone');
  const older = await axfr(s.port, 'cluster.local', `IXFR=${serial - 1}`);
  t.equal(older.records.length, records.length, 'IXFR from an older serial: the whole zone (AXFR fallback)');
});

t.test('AXFR of the k8s_external zone holds exactly what its queries answer', async (t) => {
  // The answer table's own setup (its manifests, kubernetes TTL, the balancer hostname's block) plus transfer.
  const dir = tempDir('xfr-external');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  copyFileSync(snapshot, join(dir, 'cluster.yaml'));
  copyFileSync(join(root, 'test', 'fixtures', 'kubernetes', EXTERNAL_LB_FIXTURE), join(dir, EXTERNAL_LB_FIXTURE));
  const xs = await startServer(externalCorefile(dir, '  transfer {\n    to *\n  }\n'));
  t.teardown(() => xs.stop());
  const { records } = await axfr(xs.port, 'example.com');
  t.equal(records[0]!.type, 'SOA');
  t.equal(records.at(-1)!.type, 'SOA');
  t.same(records.filter((r) => r.type === 'NS').map(line), ['example.com. 5 IN NS ns1.dns.example.com.'], 'apex NS');
  const body = records.slice(1, -1).filter((r) => r.type !== 'NS' && r.name !== 'ns1.dns.example.com.');
  const got = new Set(body.map(line));
  // CoreDNS's transfer test: every positive forward answer of the answer table is in the transfer...
  for (const c of externalCases) {
    if (c.rcode !== 'NOERROR' || !['A', 'AAAA', 'SRV'].includes(c.type) || c.q !== c.q.toLowerCase()) continue;
    // (a balancer hostname's records belong to its own zone, not this one)
    for (const a of c.an ?? []) if (a.split(' ')[0]!.endsWith('.example.com.')) t.ok(got.has(a), `in the transfer: ${a}`);
  }
  // ...and every record of the transfer is an answer.
  for (const key of new Set(body.map((r) => `${r.name} ${r.type}`))) {
    const [name, type] = key.split(' ') as [string, string];
    // A balancer hostname's CNAME is what an A query answers (k8s_external has no CNAME queries, as CoreDNS).
    const answer = (await dig(xs.port, [name, type === 'CNAME' ? 'A' : type])).answer
      .filter((r) => r.name.endsWith('.example.com.') && r.type === type).map(line).sort();
    t.same(body.filter((r) => `${r.name} ${r.type}` === key).map(line).sort(), answer, `${key} as queried`);
  }
});

t.test('who may transfer: to hosts, CIDRs, *; TCP only; nothing without transfer; a second file line', async (t) => {
  const db = '$TTL 60\n@ SOA ns hm 3 1 1 1 1\n@ NS ns\nns A 192.0.2.1\nwww A 192.0.2.80\n';
  const srv = await inProcessServer([
    'example.org {\n  transfer {\n    to 192.0.2.7 [2001:db8::7]:5300 10.1.0.0/16\n  }\n  file db\n}',
    'example.net example.com {\n  transfer example.com {\n    to *\n  }\n  file db example.net\n  file db example.com\n}',
    'cluster.local {\n  transfer {\n    to *\n  }\n  kubernetes {\n    manifests ' + snapshot + '\n  }\n}',
    '',
  ].join('\n'), { files: { db } });
  t.teardown(() => srv.close());
  const rows: [string, string, { from?: string; proto?: 'udp' | 'tcp' }, string, number?][] = [
    ['example.org.', 'AXFR', { from: '192.0.2.7', proto: 'tcp' }, 'NOERROR', 5],
    ['example.org.', 'AXFR', { from: '2001:db8::7', proto: 'tcp' }, 'NOERROR', 5],
    ['example.org.', 'AXFR', { from: '10.1.200.3', proto: 'tcp' }, 'NOERROR', 5],
    ['example.org.', 'AXFR', { from: '10.2.0.1', proto: 'tcp' }, 'REFUSED', 0],
    ['example.org.', 'AXFR', { from: '127.0.0.1', proto: 'tcp' }, 'REFUSED', 0],
    ['example.org.', 'AXFR', { from: '192.0.2.7', proto: 'udp' }, 'REFUSED', 0],
    ['www.example.org.', 'AXFR', { from: '192.0.2.7', proto: 'tcp' }, 'REFUSED', 0],
    ['example.net.', 'AXFR', { from: '192.0.2.7', proto: 'tcp' }, 'REFUSED', 0],
    ['example.com.', 'AXFR', { from: '192.0.2.7', proto: 'tcp' }, 'NOERROR', 5],
    ['cluster.local.', 'AXFR', { from: '198.51.100.9', proto: 'tcp' }, 'NOERROR'],
    ['svc.cluster.local.', 'AXFR', { from: '198.51.100.9', proto: 'tcp' }, 'REFUSED', 0],
    ['example.org.', 'A', { from: '10.2.0.1', proto: 'udp' }, 'NOERROR', 0],
  ];
  for (const [name, type, opts, rcode, count] of rows) {
    const r = await srv.ask(name, type, opts);
    const label = `${name} ${type} from ${opts.from} over ${opts.proto}`;
    t.equal(r.rcode, rcode, label);
    if (count !== undefined) t.equal(r.answer.length, count, `${label}: ${count} records`);
  }
});

t.test('a zone larger than one message goes out in several, as the connection drains', async (t) => {
  const dir = tempDir('xfr-big');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const services = 3000;
  const docs = ['apiVersion: v1\nkind: Namespace\nmetadata:\n  name: big\n'];
  for (let i = 0; i < services; i++) {
    docs.push(`apiVersion: v1\nkind: Service\nmetadata:\n  name: svc-${i}\n  namespace: big\nspec:\n  clusterIP: 10.96.${i >> 8}.${i & 255}\n  ports:\n  - name: http\n    port: 80\n    protocol: TCP\n`);
  }
  writeFileSync(join(dir, 'big.yaml'), docs.join('---\n'));
  const big = await startServer(corefile(join(dir, 'big.yaml')));
  t.teardown(() => big.stop());
  const { records, raw } = await axfr(big.port, 'cluster.local');
  // SOA, NS and its glue, three records a service, SOA.
  t.equal(records.filter((r) => r.name.endsWith('.big.svc.cluster.local.')).length, 3 * services, 'every service record');
  const messages = Number(/XFR size: \d+ records \(messages (\d+)/.exec(raw)?.[1]);
  t.ok(messages > 3, `${messages} messages`);
  t.equal(records.at(-1)!.type, 'SOA', 'the last message ends with the SOA');
  t.equal((await dig(big.port, ['svc-2999.big.svc.cluster.local', 'A'])).answer[0]?.data, '10.96.11.183', 'the server answers on after the transfer');
});

const cli = join(root, 'dist', 'src', 'cli.js');

t.test('knotd as a secondary of a spawned clusterdns: transfers the kubernetes zone, then a manifest change arrives by NOTIFY',
  { skip: !existsSync(cli) && 'dist/src/cli.js missing (run tsc -p . first)' }, async (t) => {
  const dir = tempDir('xfr-knot');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const manifests = join(dir, 'cluster.yaml');
  writeFileSync(manifests, readFileSync(snapshot, 'utf8'));
  const [port, knotPort] = [await freePort(), await freePort()];
  writeFileSync(join(dir, 'Corefile'), `cluster.local:${port} {
  bind 127.0.0.1
  transfer {
    to 127.0.0.1:${knotPort}
  }
  kubernetes {
    manifests ${manifests} 200ms
  }
}
`);
  const child = spawn(process.execPath, [cli, '-conf', join(dir, 'Corefile')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (d: Buffer) => { log += d.toString(); });
  t.teardown(() => { if (child.exitCode === null) process.kill(child.pid!, 'SIGKILL'); });
  await waitFor('clusterdns to answer', async () => (await dig(port, ['cluster.local', 'SOA']).catch(() => undefined))?.status === 'NOERROR', 15_000, 100);
  const knot = await startKnot({ zones: { 'cluster.local.': '' }, primary: `127.0.0.1@${port}`, port: knotPort });
  t.teardown(() => knot.stop());
  const fromKnot = async (name: string) => (await dig(knotPort, [name, 'A', '+norec']).catch(() => parseDig(''))).answer.map((r) => r.data);
  await waitFor('knotd to serve the transferred zone', async () => (await fromKnot('myweb-svc-ses.default.svc.cluster.local')).includes('10.233.24.46'), 20_000, 200);
  t.pass('knotd serves myweb-svc-ses from the transfer');
  const before = (await dig(knotPort, ['cluster.local', 'SOA'])).answer[0]!.data.split(' ')[2];

  // SOA refresh is 7200 s: only the NOTIFY makes knotd look again within the test.
  writeFileSync(manifests, readFileSync(snapshot, 'utf8') + `---
apiVersion: v1
kind: Service
metadata:
  name: added-by-test
  namespace: default
spec:
  clusterIP: 10.233.77.77
  ports:
  - name: http
    port: 80
    protocol: TCP
`);
  await waitFor('knotd to serve the new Service', async () => (await fromKnot('added-by-test.default.svc.cluster.local')).includes('10.233.77.77'), 20_000, 200);
  const after = (await dig(knotPort, ['cluster.local', 'SOA'])).answer[0]!.data.split(' ')[2];
  t.ok(Number(after) > Number(before), `knotd took the new serial (${before} -> ${after})`);
  t.match(log, /plugin\/transfer: Outgoing transfer of \d+ records of zone "cluster\.local\." to 127\.0\.0\.1/, 'clusterdns logged the transfers');
});

t.test('knotd as a secondary of a file zone: a reload with a new serial arrives by NOTIFY', async (t) => {
  const zone = (serial: number, ip: string) => `$TTL 60\n@ SOA ns hostmaster ${serial} 7200 900 1209600 60\n@ NS ns\nns A 192.0.2.53\nwww A ${ip}\n`;
  const knotPort = await freePort();
  const primary = await startServer(`example.org {\n  file db {\n    reload 200ms\n  }\n  transfer {\n    to 127.0.0.1:${knotPort}\n    source 127.0.0.1\n  }\n}\n`,
    { files: { db: zone(1, '192.0.2.80') } });
  t.teardown(() => primary.stop());
  const knot = await startKnot({ zones: { 'example.org.': '' }, primary: `127.0.0.1@${primary.port}`, port: knotPort });
  t.teardown(() => knot.stop());
  const www = async () => (await dig(knotPort, ['www.example.org', 'A', '+norec']).catch(() => parseDig(''))).answer.map((r) => r.data);
  await waitFor('knotd to serve the transferred zone', async () => (await www()).includes('192.0.2.80'), 20_000, 200);
  writeFileSync(join(primary.dir, 'db'), zone(2, '192.0.2.81'));
  await waitFor('knotd to serve the reloaded zone', async () => (await www()).includes('192.0.2.81'), 20_000, 200);
  t.pass('the new record reached the secondary');
});

t.test('transfer: bad config', async (t) => {
  const rows: [string, RegExp][] = [
    ['transfer', /Corefile:2 - Error during setup: plugin\/transfer: 'to' is required/],
    ['transfer {\n  to\n}', /Corefile:3 - Error during setup: plugin\/transfer: to: wrong argument count: want ADDRESS\.\.\., got 0/],
    ['transfer {\n  to example.net\n}', /Corefile:3 - Error during setup: plugin\/transfer: to: not an IP address, IP:PORT, CIDR or '\*': 'example\.net'/],
    ['transfer {\n  to 10.0.0.1:99999\n}', /not an IP address, IP:PORT, CIDR or '\*': '10\.0\.0\.1:99999'/],
    ['transfer {\n  to *\n  source 10.0.0.1\n  source 10.0.0.2\n}', /Corefile:5 - Error during setup: plugin\/transfer: 'source' given more than once/],
    ['transfer {\n  to *\n  source nowhere\n}', /Corefile:4 - Error during setup: plugin\/transfer: invalid source address 'nowhere'/],
    ['transfer {\n  to *\n  tsig x\n}', /Corefile:4 - Error during setup: plugin\/transfer: unknown property 'tsig'/],
  ];
  for (const [block, want] of rows) {
    await t.rejects(startServer(`example.org {\n${block}\n  file db\n}\n`, { files: { db: '$TTL 60\n@ SOA ns hm 1 1 1 1 1\n' } }), want, block.replace(/\n/g, ' '));
  }
});
