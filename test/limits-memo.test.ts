import t from 'tap';
import { spawn } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MEMO_ENTRIES as K8S_MEMO_ENTRIES, type KubernetesPlugin } from '../src/plugins/kubernetes/handler.js';
import { MEMO_ENTRIES as REWRITE_MEMO_ENTRIES, type Rewrite } from '../src/plugins/rewrite/handler.js';
import { MEMO_BYTES as FILE_MEMO_BYTES, type FilePlugin } from '../src/plugins/file/handler.js';
import { MEMO_BYTES as HOSTS_MEMO_BYTES, type Hosts } from '../src/plugins/hosts/handler.js';
import { RCODE, TYPE } from '../src/server/wire/constants.js';
import { bigHeadlessManifest } from './helpers/big-headless.js';
import { dig } from './helpers/dig.js';
import { inProcessServer } from './helpers/in-process.js';
import { tempDir } from './helpers/temp-dir.js';
import { udpLoad } from './helpers/udp-load.js';
import { freePort } from './helpers/upstream.js';
import { sleep, waitFor } from './helpers/wait.js';

/**
 * Memos of answers that askers can fill with names of their choosing (issue 14, findings 1 and 10, and
 * random-case SRV): each stays bounded while the answers stay right.
 */

const CLI = new URL('../dist/src/cli.js', import.meta.url).pathname;
const CLUSTER_YAML = join(import.meta.dirname, '..', 'zones', 'cluster.yaml');

function rssMb(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
}

t.test('unique non-existent names under the cluster zone: the server stays small and keeps answering (finding 1)', async (t) => {
  const dir = tempDir('memo-nx');
  const port = await freePort();
  copyFileSync(CLUSTER_YAML, join(dir, 'cluster.yaml'));
  // The kubeadm Corefile's shape: cache in front, but not for the cluster zone.
  writeFileSync(join(dir, 'Corefile'), `cluster.local:${port} in-addr.arpa:${port} {\n  bind 127.0.0.1\n  errors\n` +
    `  kubernetes cluster.local in-addr.arpa {\n    manifests cluster.yaml\n    fallthrough in-addr.arpa\n    ttl 30\n  }\n` +
    `  cache 30 {\n    disable success cluster.local\n    disable denial cluster.local\n  }\n}\n`);
  // Before the memo was bounded, the server died of this heap limit after ~42k unique names.
  const child = spawn(process.execPath, ['--max-old-space-size=48', CLI, '-conf', join(dir, 'Corefile')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => { stderr = (stderr + d).slice(-2000); });
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL'); });
  await waitFor('the server', async () => (await dig(port, ['redis.default.svc.cluster.local']).catch(() => undefined))?.status === 'NOERROR', 15_000);
  await udpLoad({ port, count: 2000, maxMs: 20_000, query: (i) => ({ name: `warm${i}.default.svc.cluster.local.`, type: TYPE.A }) });
  const before = rssMb(child.pid!);

  const r = await udpLoad({ port, count: 60_000, maxMs: 60_000, window: 100, query: (i) => ({ name: `u${i}-x.default.svc.cluster.local.`, type: TYPE.A }) });
  await sleep(200);
  const alive = child.exitCode === null && child.signalCode === null;
  t.ok(alive, `the server is alive after ${r.sent} unique names${alive ? '' : `: ${stderr}`}`);
  if (!alive) return;
  t.equal(r.sent, 60_000, 'every name was sent');
  t.ok(r.lost <= r.sent / 100, `at most 1 % unanswered (${r.lost})`);
  t.same(Object.keys(r.rcodes), [String(RCODE.NXDOMAIN)], 'every answer is NXDOMAIN');
  const grew = rssMb(child.pid!) - before;
  // The heap may fill up to its limit before V8 collects: the bound is that limit, not the memo.
  t.ok(grew < 64, `RSS grew ${grew.toFixed(0)} MB (< 64) after 60k unique names`);

  const nx = await dig(port, ['u59999-x.default.svc.cluster.local']);
  t.match(nx, { status: 'NXDOMAIN', authority: [{ name: 'cluster.local.', type: 'SOA' }] }, 'a name of the flood: NXDOMAIN with the SOA');
  const ok = await dig(port, ['redis.default.svc.cluster.local']);
  t.same(ok.answer.map((a) => a.data), ['10.103.50.52'], 'a Service still answers its ClusterIP');
});

t.test('the kubernetes memo holds at most MEMO_ENTRIES replies, whatever the names asked', async (t) => {
  const srv = await inProcessServer(`cluster.local {\n  kubernetes cluster.local {\n    manifests cluster.yaml\n  }\n}\n`,
    { files: { 'cluster.yaml': readFileSync(CLUSTER_YAML, 'utf8') } });
  t.teardown(() => srv.close());
  const k8s = srv.plugin<KubernetesPlugin>('kubernetes');
  let wrong = 0;
  for (let i = 0; i < K8S_MEMO_ENTRIES + 1000; i++) {
    const r = await srv.ask(`n${i}.default.svc.cluster.local.`, i % 2 ? 'A' : 'AAAA');
    if (r.rcode !== 'NXDOMAIN' || r.ns.length !== 1) wrong++;
  }
  t.equal(wrong, 0, 'every made-up name: NXDOMAIN with the SOA');
  t.equal(k8s.memoised, K8S_MEMO_ENTRIES, `memo full at ${K8S_MEMO_ENTRIES}, not ${K8S_MEMO_ENTRIES + 1000}`);
  t.same((await srv.ask('redis.default.svc.cluster.local.', 'A')).answer, ['redis.default.svc.cluster.local. 5 IN A 10.103.50.52'], 'names that exist still answer');
});

t.test('rewrite mapping many names onto one cluster name: its memo stays bounded (finding 10)', async (t) => {
  const srv = await inProcessServer(`cluster.local example.test {\n` +
    `  rewrite name regex (.*)\\.alias\\.example\\.test redis.default.svc.cluster.local answer auto\n` +
    `  kubernetes cluster.local {\n    manifests cluster.yaml\n  }\n}\n`,
  { files: { 'cluster.yaml': readFileSync(CLUSTER_YAML, 'utf8') } });
  t.teardown(() => srv.close());
  const names = REWRITE_MEMO_ENTRIES + 6000;
  let wrong = 0;
  for (let i = 0; i < names; i++) {
    const name = `host${i}.alias.example.test.`;
    const r = await srv.ask(name, 'A');
    if (r.rcode !== 'NOERROR' || r.answer.join() !== `${name} 5 IN A 10.103.50.52`) wrong++;
  }
  t.equal(wrong, 0, `${names} names rewritten onto redis: each answered under its own name`);
  t.equal(srv.plugin<Rewrite>('rewrite').memoised, REWRITE_MEMO_ENTRIES, `rewrite memo full at ${REWRITE_MEMO_ENTRIES}, not ${names}`);
  t.equal(srv.plugin<KubernetesPlugin>('kubernetes').memoised, 1, 'kubernetes memoised the one cluster name');
});

t.test('a big headless SRV answer asked in random letter case (0x20): one memo entry, CoreDNS case rules', async (t) => {
  const endpoints = 3000;
  const srv = await inProcessServer(`cluster.local {\n  kubernetes cluster.local {\n    manifests big.yaml\n  }\n}\n`,
    { files: { 'big.yaml': bigHeadlessManifest('big', 'default', endpoints) } });
  t.teardown(() => srv.close());
  const k8s = srv.plugin<KubernetesPlugin>('kubernetes');
  const entries = k8s.memoised;

  const base = 'big.default.svc.cluster.local.';
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) >> 16) & 1;
  const randomCase = (s: string) => [...s].map((c) => (rnd() ? c.toUpperCase() : c)).join('');
  let lowerTargets: string | undefined;
  const problems: string[] = [];
  for (let i = 0; i < 200; i++) {
    const name = randomCase(base);
    const zone = name.slice(-'cluster.local.'.length);
    const tcp = i % 2 === 0;
    const r = await srv.ask(name, 'SRV', tcp ? { proto: 'tcp' } : { bufsize: 1232 });
    const m = r.msg;
    const srvs = m.answer.map((a) => a.data as { target: string; port: number; weight: number });
    const bad = (why: string) => problems.push(`${name} ${tcp ? 'TCP' : 'UDP'}: ${why}`);
    if (r.rcode !== 'NOERROR' || !r.tc) bad(`rcode ${r.rcode}, tc ${r.tc}: want NOERROR with TC (${endpoints * 2} records do not fit)`);
    if (m.question?.name !== name) bad(`question ${m.question?.name}`);
    if (!m.answer.every((a) => a.name === name)) bad('an owner name is not the question as asked');
    // CoreDNS: SRV targets are the endpoint, service and namespace in lower case, then the zone as asked.
    if (!srvs.every((s) => /^10-100-\d+-\d+\.big\.default\.svc\.$/.test(s.target.slice(0, -zone.length)) && s.target.endsWith(zone))) bad('an SRV target is not <ep>.big.default.svc.<zone as asked>');
    if (!srvs.every((s) => s.weight === 1 && (s.port === 8080 || s.port === 8443))) bad('weight or port');
    const targets = new Set(srvs.map((s) => s.target));
    if (!m.additional.every((a) => a.type === TYPE.A && targets.has(a.name))) bad('glue not named exactly as a target');
    if (tcp) {
      if (srvs.length < 1000) bad(`only ${srvs.length} SRV records over TCP`);
      const lower = srvs.map((s) => `${s.target.toLowerCase()} ${s.port}`).join();
      if (lowerTargets !== undefined && lower !== lowerTargets) bad('not the same records as the first TCP answer');
      lowerTargets ??= lower;
    } else if (srvs.length === 0 || srvs.length > 40) {
      bad(`${srvs.length} SRV records in a 1232-byte UDP answer`);
    }
  }
  t.same(problems, [], '200 spellings, TCP and UDP: right answers in the asker\'s case');
  t.equal(k8s.memoised, entries + 1, 'one memo entry for every spelling (no answer built or kept per spelling)');
});

t.test('file and hosts: a big RRset asked in many letter cases stays within the memo byte budget', async (t) => {
  const ips = Array.from({ length: 250 }, (_, i) => `10.9.${i >> 8}.${i & 255}`);
  const zone = ['$TTL 300', '@ SOA ns1 admin 1 3600 600 86400 300', '@ NS ns1', 'ns1 A 192.0.2.1', ...ips.map((ip) => `big A ${ip}`)].join('\n') + '\n';
  const hosts = ips.map((ip) => `${ip} big.hosts.test`).join('\n') + '\n';
  const srv = await inProcessServer(`example.org {\n  file db.example.org\n}\nhosts.test {\n  hosts hosts.txt\n}\n`,
    { files: { 'db.example.org': zone, 'hosts.txt': hosts } });
  t.teardown(() => srv.close());
  // Each spelling is kept apart (zone names keep the zone's case), so 0x20 randomisation makes new entries.
  const spellings = 600;
  let wrong = 0;
  for (let i = 0; i < spellings; i++) {
    const mix = (name: string) => [...name].map((c, k) => ((i >> (k % 10)) & 1 ? c.toUpperCase() : c)).join('');
    const [f, h] = await Promise.all([srv.ask(mix('big.example.org.'), 'A', { proto: 'tcp' }), srv.ask(mix('big.hosts.test.'), 'A', { proto: 'tcp' })]);
    if (f.answer.length !== ips.length || h.answer.length !== ips.length) wrong++;
  }
  t.equal(wrong, 0, `${spellings} spellings, every answer whole`);
  for (const [name, memo, budget] of [['file', srv.plugin<FilePlugin>('file').memoised, FILE_MEMO_BYTES], ['hosts', srv.plugin<Hosts>('hosts').memoised, HOSTS_MEMO_BYTES]] as const) {
    t.ok(memo.bytes <= budget, `${name}: ${memo.bytes} estimated bytes within ${budget}`);
    t.ok(memo.entries < spellings, `${name}: ${memo.entries} entries, fewer than the ${spellings} spellings asked`);
    t.ok(memo.entries > 0, `${name}: answers are memoised`);
  }
});
