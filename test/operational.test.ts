import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dig, digShort } from './helpers/dig.js';
import { FakeApiServer, service, namespace, writeKubeconfig } from './helpers/fake-apiserver.js';
import { startServer } from './helpers/server.js';
import { setLogSink } from '../src/pkg/log.js';
import { captureQueryLog } from './helpers/query-log.js';
import { sleep } from './helpers/wait.js';

const manifests = fileURLToPath(new URL('../zones/cluster.yaml', import.meta.url));
const HTTP = '127.0.0.1:0';

async function get(port: number, path: string): Promise<{ status: number; body: string; type: string | null }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, body: await res.text(), type: res.headers.get('content-type') };
}

async function until<T>(what: string, fn: () => Promise<T>, ok: (v: T) => boolean, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(v)}`);
    await sleep(100);
  }
}

function metric(text: string, name: string, labels: Record<string, string>): number | undefined {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{') && !line.startsWith(name + ' ')) continue;
    const body = /\{(.*)\}/.exec(line)?.[1] ?? '';
    if (want.every((w) => body.split(/,(?=\w+=")/).includes(w))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

t.test('health, ready, metrics and query log against a running server', async (t) => {
  const out = captureQueryLog(t);
  const s = await startServer(`. {
  health ${HTTP}
  ready ${HTTP}
  prometheus ${HTTP}
  errors
  log
  kubernetes cluster.local {
    manifests ${manifests}
  }
  whoami
}
`);
  t.teardown(() => s.stop());
  const hp = s.server.http.port(HTTP)!;
  t.ok(hp, 'health, ready and prometheus share the 127.0.0.1:0 listener');

  t.same(await get(hp, '/health'), { status: 200, body: 'OK', type: 'text/plain; charset=utf-8' });
  t.same(await get(hp, '/ready'), { status: 200, body: 'OK', type: 'text/plain; charset=utf-8' });
  t.equal((await get(hp, '/nope')).status, 404);

  t.equal((await dig(s.port, ['myweb-svc-ses.default.svc.cluster.local', 'A'])).status, 'NOERROR');
  t.equal((await dig(s.port, ['nope.default.svc.cluster.local', 'A'])).status, 'NXDOMAIN');
  t.equal((await dig(s.port, ['example.org', 'A', '+tcp'])).status, 'NOERROR');
  t.equal((await dig(s.port, ['example.org', 'CAA', '+dnssec'])).status, 'NOERROR');

  const m = await get(hp, '/metrics');
  t.equal(m.status, 200);
  t.equal(m.type, 'text/plain; version=0.0.4; charset=utf-8');
  const server = 'dns://:0';
  t.match(m.body, `coredns_dns_requests_total{server="${server}",zone=".",view="",proto="udp",family="1",type="A"} 2`);
  t.equal(metric(m.body, 'coredns_dns_requests_total', { proto: 'tcp', type: 'A' }), 1, 'TCP counted apart');
  t.equal(metric(m.body, 'coredns_dns_requests_total', { proto: 'udp', type: 'other' }), 1, 'CAA is "other"');
  t.equal(metric(m.body, 'coredns_dns_do_requests_total', { server, zone: '.' }), 1);
  t.equal(metric(m.body, 'coredns_dns_responses_total', { rcode: 'NOERROR', plugin: 'kubernetes' }), 1);
  t.equal(metric(m.body, 'coredns_dns_responses_total', { rcode: 'NXDOMAIN', plugin: 'kubernetes' }), 1);
  t.equal(metric(m.body, 'coredns_dns_responses_total', { rcode: 'NOERROR', plugin: 'whoami' }), 2);
  t.equal(metric(m.body, 'coredns_dns_request_duration_seconds_count', { server, zone: '.', type: 'A' }), 3);
  t.equal(metric(m.body, 'coredns_dns_request_duration_seconds_bucket', { type: 'A', le: '+Inf' }), 3);
  t.equal(metric(m.body, 'coredns_dns_request_size_bytes_count', { proto: 'udp' }), 3);
  t.equal(metric(m.body, 'coredns_dns_response_size_bytes_count', { proto: 'tcp' }), 1);
  t.ok(metric(m.body, 'coredns_dns_response_size_bytes_sum', { proto: 'udp' })! > 100, 'response sizes summed');
  t.match(m.body, new RegExp(`coredns_build_info\\{version="[^"]+",revision="[^"]*",goversion="${process.version.replaceAll('.', '\\.')}"\\} 1`), 'goversion: the running node');
  t.equal(metric(m.body, 'coredns_plugin_enabled', { zone: '.', name: 'prometheus' }), 1);
  t.match(m.body, /\nprocess_cpu_user_seconds_total \d/);
  t.match(m.body, /\nnodejs_heap_size_used_bytes \d/);

  // The next scrape adds only what happened in between.
  await dig(s.port, ['example.org', 'A']);
  const m2 = await get(hp, '/metrics');
  t.equal(metric(m2.body, 'coredns_dns_responses_total', { rcode: 'NOERROR', plugin: 'whoami' }), 3);
  t.equal(metric(m2.body, 'coredns_dns_request_duration_seconds_count', { type: 'A' }), 4);

  // health requests its own /health once a second and records how long that took.
  const probed = await until('a health self-probe', async () => (await get(hp, '/metrics')).body,
    (b) => (metric(b, 'coredns_health_request_duration_seconds_count', {}) ?? 0) >= 1);
  t.equal(metric(probed, 'coredns_health_request_failures_total', {}), 0);

  const line = /^\[INFO\] 127\.0\.0\.1:\d+ - \d+ "(\w+) IN (\S+) (udp|tcp) \d+ (true|false) (\d+)" (\w+) ([a-z,]+) (\d+) \d+(\.\d+)?s$/;
  const logged = out.map((l) => line.exec(l));
  t.equal(out.length, 5, out.join('\n'));
  t.ok(logged.every(Boolean), `Common Log Format:\n${out.join('\n')}`);
  t.same(logged.slice(0, 4).map((x) => x && [x[1], x[2], x[3], x[4], x[5], x[6], x[7]]), [
    ['A', 'myweb-svc-ses.default.svc.cluster.local.', 'udp', 'false', '1232', 'NOERROR', 'qr,aa,rd'],
    ['A', 'nope.default.svc.cluster.local.', 'udp', 'false', '1232', 'NXDOMAIN', 'qr,aa,rd'],
    ['A', 'example.org.', 'tcp', 'false', '65535', 'NOERROR', 'qr,aa,rd'],
    ['CAA', 'example.org.', 'udp', 'true', '1232', 'NOERROR', 'qr,aa,rd'],
  ]);
});

t.test('log classes against a running server: denial only', async (t) => {
  const out = captureQueryLog(t);
  const s = await startServer(`cluster.local {\n  log . {\n    class denial\n  }\n  kubernetes {\n    manifests ${manifests}\n  }\n}\n`);
  t.teardown(() => s.stop());
  await dig(s.port, ['myweb-svc-ses.default.svc.cluster.local', 'A']);
  await dig(s.port, ['nope.default.svc.cluster.local', 'A']);
  await dig(s.port, ['myweb-svc-ses.default.svc.cluster.local', 'TXT']);
  t.equal(out.length, 2, out.join('\n'));
  t.match(out[0], /"A IN nope\.default\.svc\.cluster\.local\. udp .* NXDOMAIN /);
  t.match(out[1], /"TXT IN myweb-svc-ses\.default\.svc\.cluster\.local\. udp .* NOERROR /, 'NODATA is a denial');
});

t.test('/ready is 503 with the plugin names until the kubernetes informers synced', async (t) => {
  const logs: string[] = [];
  t.teardown(setLogSink((l) => logs.push(l)));
  const api = await new FakeApiServer().start();
  t.teardown(() => api.stop());
  api.seed('namespaces', [namespace('default')]);
  api.seed('services', [service('default', 'web', '10.96.0.10')]);
  api.listDelayMs = 1500;
  const s = await startServer(`cluster.local {\n  ready ${HTTP}\n  kubernetes {\n    kubeconfig KC\n    startup_timeout 100ms\n  }\n}\n`
    .replace('KC', writeKubeconfig(process.env.TMPDIR ?? '/tmp', api.url, `kubeconfig-ready-${process.pid}`)));
  t.teardown(() => s.stop());
  const port = s.server.http.port(HTTP)!;
  t.same(await get(port, '/ready'), { status: 503, body: 'kubernetes', type: 'text/plain; charset=utf-8' });
  t.ok(logs.includes('[INFO] plugin/ready: Plugins not ready: "kubernetes"'), 'logged like CoreDNS');
  const ok = await until('ready', () => get(port, '/ready'), (r) => r.status === 200);
  t.equal(ok.body, 'OK');
  t.same(await digShort(s.port, ['web.default.svc.cluster.local', 'A']), ['10.96.0.10']);
});

t.test('reload plugin: a changed Corefile is applied, a broken one is logged and counted, the old config keeps serving', async (t) => {
  const logs: string[] = [];
  t.teardown(setLogSink((l) => logs.push(l)));
  const v1 = `. {\n  reload 2s 1s\n  prometheus ${HTTP}\n  whoami\n}\n`;
  const s = await startServer(v1);
  t.teardown(() => s.stop());
  t.match(logs, [/^\[INFO\] plugin\/reload: Running configuration SHA512 = [0-9a-f]{128}$/]);
  const failedBefore = metric((await get(s.server.http.port(HTTP)!, '/metrics')).body, 'coredns_reload_failed_total', {}) ?? 0;
  t.same(await digShort(s.port, ['example.org', 'A']), []);

  writeFileSync(s.corefile, `. {\n  reload 2s 1s\n  prometheus ${HTTP}\n  hosts {\n    10.1.2.3 example.org\n  }\n  whoami\n}\n`);
  await until('the new config', () => digShort(s.port, ['example.org', 'A']), (a) => a[0] === '10.1.2.3');
  t.ok(logs.includes('[INFO] Reloading'));

  writeFileSync(s.corefile, `. {\n  reload 2s 1s\n  prometheus ${HTTP}\n  errors {\n    bogus\n  }\n  whoami\n}\n`);
  const err = await until('the failed reload', async () => logs.find((l) => l.includes('reload failed')), Boolean);
  t.equal(err, `[ERROR] plugin/reload: Corefile changed but reload failed: ${join(s.dir, 'Corefile')}:5 - Error during setup: plugin/errors: unknown field 'bogus'`);
  t.same(await digShort(s.port, ['example.org', 'A']), ['10.1.2.3'], 'the old config keeps serving');
  const after = metric((await get(s.server.http.port(HTTP)!, '/metrics')).body, 'coredns_reload_failed_total', {});
  t.equal(after, failedBefore + 1);
  await sleep(2600);
  t.equal(logs.filter((l) => l.includes('reload failed')).length, 1, 'the broken file is tried once');
});
