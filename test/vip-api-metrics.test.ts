import t from 'tap';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { join, resolve } from 'node:path';
import { FakeApiServer, endpointSlice, namespace, service, writeKubeconfig } from './helpers/fake-apiserver.js';
import { NetnsLab, isRoot } from './helpers/netns.js';
import { waitFor } from './helpers/wait.js';
import { tempDir } from './helpers/temp-dir.js';

/*
 * `clusterdns vip` (the built CLI) watching a fake API server shows the API source's health on its own
 * /metrics and logs it under its own tag. It runs in a network namespace this test creates (it programs
 * iptables there); the fake API server runs in this process, reached through a Unix socket (paths cross
 * network namespaces) and a small forwarder on the namespace's loopback.
 */

const CLI = resolve('dist/src/cli.js');

if (!isRoot()) {
  t.plan(0, 'needs root (a network namespace for the iptables it programs): skipped');
  process.exit(0);
}
if (!existsSync(CLI)) {
  t.plan(0, 'dist missing (run tsc -p . first): skipped');
  process.exit(0);
}
t.setTimeout(90_000);

const API_PORT = 6443;
const METRICS = '127.0.0.1:9101';

/** Inside the namespace: 127.0.0.1:PORT -> the Unix socket of this process. */
const FORWARDER = `
import net from 'node:net';
const [port, path] = process.argv.slice(2);
net.createServer((c) => {
  const u = net.connect(path);
  c.pipe(u).pipe(c);
  c.on('error', () => u.destroy());
  u.on('error', () => c.destroy());
}).listen(Number(port), '127.0.0.1', () => console.log('listening'));
`;

/** One sample of a metric in the Prometheus text format, or undefined. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = (m[2] ?? '').split(',');
    if (want.every((w) => have.includes(w))) return Number(m[3]);
  }
  return undefined;
}

t.test('clusterdns vip: API source metrics on its /metrics, its logs tagged vip', async (t) => {
  const lab = new NetnsLab('vipm');
  const dir = tempDir('vip-api');
  const api = await new FakeApiServer().start();
  const apiPort = Number(new URL(api.url).port);
  const socketPath = join(dir, 'api.sock');
  const bridge: Server = createServer((c: Socket) => {
    const u = connect(apiPort, '127.0.0.1');
    c.pipe(u).pipe(c);
    c.on('error', () => u.destroy());
    u.on('error', () => c.destroy());
  });
  await new Promise<void>((r) => bridge.listen(socketPath, () => r()));
  t.teardown(async () => {
    await lab.cleanup();
    bridge.close();
    await api.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  api.apply('namespaces', namespace('default'));
  api.apply('services', service('default', 'web', '10.96.0.10'));
  api.apply('endpointslices', endpointSlice('default', 'web', 'web-1', [{ ip: '10.244.1.2' }]));

  await lab.addNamespace('node');
  writeFileSync(join(dir, 'forward.mjs'), FORWARDER);
  const fwd = lab.spawn('node', 'node', [join(dir, 'forward.mjs'), String(API_PORT), socketPath]);
  await new Promise<void>((r) => fwd.stdout!.once('data', () => r()));
  const kubeconfig = writeKubeconfig(dir, `http://127.0.0.1:${API_PORT}`);

  const vip = lab.spawn('node', 'node', [CLI, 'vip', '--mode', 'iptables', '--kubeconfig', kubeconfig, '--metrics', METRICS,
    '--sync-period', '10s', '--min-sync-period', '100ms', '--hostname-override', 'node1']);
  const log: string[] = [];
  vip.stderr!.on('data', (b: Buffer) => log.push(...b.toString().split('\n').filter(Boolean)));
  vip.stdout!.on('data', (b: Buffer) => log.push(...b.toString().split('\n').filter(Boolean)));
  await waitFor('first sync', async () => log.some((l) => l.includes('IPv4 full sync')), 20_000);
  const scrape = () => lab.must('node', 'curl', ['-s', `http://${METRICS}/metrics`]);

  let text = await scrape();
  for (const resource of ['services', 'endpointslices', 'namespaces']) {
    t.equal(sample(text, 'clusterdns_kubernetes_sync_state', { resource }), 1, `${resource}: synced and watching`);
    const age = sample(text, 'clusterdns_kubernetes_last_event_age_seconds', { resource });
    t.ok(age !== undefined && age >= 0 && age < 60, `${resource}: last event ${age} s ago`);
  }
  t.match(text, /^# TYPE clusterdns_kubernetes_restarts_total counter$/m, 'restarts counter defined');
  t.match(text, /^clusterdns_vip_rules\{family="IPv4"\} [1-9]/m, 'the programmer\'s own metrics beside them');
  t.notMatch(text, /^coredns_/m, 'no DNS server metrics in the VIP registry');

  // History compacted and the watches cut: a relist counted as `gone`. A broken object: warned once.
  api.expireWatches();
  const bad = service('default', 'web', '10.96.0.10');
  (bad.spec as Record<string, unknown>).type = 'Bogus';
  api.apply('services', bad);
  text = await waitFor('gone restart', async () => {
    const m = await scrape();
    return (sample(m, 'clusterdns_kubernetes_restarts_total', { resource: 'services', reason: 'gone' }) ?? 0) >= 1 && m;
  }, 10_000);
  t.equal(sample(text, 'clusterdns_kubernetes_sync_state', { resource: 'services' }), 1, 'still synced after the relist');
  await waitFor('invalid object warning', async () => log.some((l) => l.includes('ignoring invalid services object')), 5000);

  const sourceLines = log.filter((l) => l.includes('ignoring invalid services object'));
  t.ok(sourceLines.every((l) => l.startsWith('[WARNING] vip: ')), `source lines tagged vip: ${sourceLines.join(' | ')}`);
  t.same(log.filter((l) => l.includes('plugin/kubernetes')), [], 'nothing claims to be the kubernetes plugin');
  await lab.kill(vip);
});
