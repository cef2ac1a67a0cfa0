import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import http from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { existsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createApiSource } from '../src/cluster/api-source.js';
import { logger } from '../src/pkg/log.js';
import { createRegistry } from '../src/pkg/metrics.js';
import { ClusterStore } from '../src/cluster/store.js';
import { FakeApiServer, namespace, service, writeKubeconfig } from './helpers/fake-apiserver.js';
import { tempDir } from './helpers/temp-dir.js';

/**
 * Credentials and transport from kubeconfig: tokens, token files and certificates by our own code on the
 * library's public Cluster/User shapes; exec plugins, proxy-url and the azure/gcp/oidc plugins through
 * the full KubeConfig (the package's public entry).
 */

const context = () => ({ log: logger('test'), registry: createRegistry() });

function kubeconfig(dir: string, cluster: string, user: string): string {
  const path = join(dir, `kubeconfig-${Math.random().toString(36).slice(2)}`);
  writeFileSync(path, `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
${cluster.replace(/^/gm, '    ')}
users:
- name: u
  user:
${user.replace(/^/gm, '    ')}
contexts:
- name: ctx
  context: {cluster: c, user: u}
current-context: ctx
`);
  return path;
}

async function syncOnce(t: Test, api: FakeApiServer, file: string): Promise<void> {
  const src = createApiSource({ kubeconfig: file, pods: 'disabled', startupTimeoutMs: 30_000 }, context());
  const store = new ClusterStore();
  await src.start(store);
  await src.stop();
  t.ok(src.synced(), `synced (${src.status().map((s) => s.lastError).filter(Boolean).join('; ')})`);
  t.same(store.service('default', 'web')?.clusterIPs, ['10.96.0.10']);
}

async function cluster(t: Test): Promise<FakeApiServer> {
  const api = await new FakeApiServer().start();
  t.teardown(() => api.stop());
  api.apply('namespaces', namespace('default'));
  api.apply('services', service('default', 'web', '10.96.0.10'));
  return api;
}

/** Each case against its own API server: a stopped source's last request may still be in flight. */
async function authorizations(t: Test, user: (dir: string) => string): Promise<string[]> {
  const api = await cluster(t);
  const dir = tempDir('kubeconfig');
  await syncOnce(t, api, kubeconfig(dir, `server: ${api.url}\ninsecure-skip-tls-verify: true`, user(dir)));
  return [...new Set(api.requests.map((r) => r.authorization ?? ''))];
}

t.test('credentials: token, token-file, exec plugin, tokenFile auth provider', async (t) => {
  t.same(await authorizations(t, () => 'token: plain-token'), ['Bearer plain-token']);

  t.same(await authorizations(t, (dir) => {
    writeFileSync(join(dir, 'token'), 'file-token');
    return `token-file: ${join(dir, 'token')}`;
  }), ['Bearer file-token']);

  // A real credential plugin process, as kubectl runs it. Exec kubeconfigs load the full client library;
  // imported here first so the sync below waits for credentials, not for the test loader's coverage hooks
  // over the library's generated code (tens of seconds on a busy machine, ~2 s in production).
  await import('@kubernetes/client-node');
  t.same(await authorizations(t, (dir) => {
    const plugin = join(dir, 'plugin.mjs');
    writeFileSync(plugin, `process.stdout.write(JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential',
  status: { token: 'exec-' + process.env.WHO, expirationTimestamp: new Date(Date.now() + 3600e3).toISOString() } }));\n`);
    return `exec:\n  apiVersion: client.authentication.k8s.io/v1\n  command: ${process.execPath}\n  args: [${plugin}]\n  env: [{name: WHO, value: plugin}]\n  interactiveMode: Never`;
  }), ['Bearer exec-plugin']);

  // The in-cluster service account's shape: a token file re-read as it rotates.
  t.same(await authorizations(t, (dir) => {
    writeFileSync(join(dir, 'sa-token'), 'sa-token');
    return `auth-provider:\n  name: tokenFile\n  config: {tokenFile: ${join(dir, 'sa-token')}}`;
  }), ['Bearer sa-token']);
});

t.test('proxy-url goes through the full client library', async (t) => {
  const api = await cluster(t);
  // A CONNECT proxy (what the library's proxy agents speak) that records targets and tunnels to the fake.
  const targets: string[] = [];
  const proxy = http.createServer();
  proxy.on('connect', (req: http.IncomingMessage, client: Socket) => {
    targets.push(req.url ?? '');
    const upstream = connect(Number(new URL(api.url).port), '127.0.0.1', () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.pipe(client).pipe(upstream);
    });
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => {
    proxy.closeAllConnections();
    proxy.close();
  });
  const dir = tempDir('kubeconfig');
  // The server address is a closed port: only the tunnel reaches the fake.
  const port = (proxy.address() as AddressInfo).port;
  await syncOnce(t, api, kubeconfig(dir, `server: http://127.0.0.1:1\ninsecure-skip-tls-verify: true\nproxy-url: http://127.0.0.1:${port}`, 'token: via-proxy'));
  t.ok(targets.length > 0 && targets.every((x) => x === '127.0.0.1:1'), `tunnels to the configured server (${targets.length})`);
  t.ok(api.requests.every((r) => r.authorization === 'Bearer via-proxy'), 'credentials through the tunnel');
});

t.test('config errors name the kubeconfig', async (t) => {
  const dir = tempDir('kubeconfig');
  t.throws(() => createApiSource({ kubeconfig: kubeconfig(dir, 'server: http://127.0.0.1:1', 'token: x'), pods: 'disabled' }, context()),
    /kubeconfig .*: cluster "c": http:\/\/127\.0\.0\.1:1 is plain http, which needs insecure-skip-tls-verify: true/);
  t.throws(() => createApiSource({ kubeconfig: kubeconfig(dir, 'insecure-skip-tls-verify: true', 'token: x'), pods: 'disabled' }, context()),
    /kubeconfig .*: clusters\[0\]\.cluster\.server is missing/);
});

const API_SOURCE = resolve('dist/src/cluster/api-source.js');

t.test('the client library is never loaded for a token kubeconfig', { skip: !existsSync(API_SOURCE) && 'dist missing (run tsc -p . first)' }, async (t) => {
  const api = await new FakeApiServer().start();
  t.teardown(() => api.stop());
  api.apply('namespaces', namespace('default'));
  const dir = tempDir('kubeconfig');
  // A resolve hook that fails any import of client-node: its public entry loads the generated API client
  // (~75 MB of RSS, seconds of start-up), which a token kubeconfig never needs.
  writeFileSync(join(dir, 'hook.mjs'), `export async function resolve(spec, ctx, next) {
  const r = await next(spec, ctx);
  if (r.url.includes('/@kubernetes/client-node/')) throw new Error('client library imported: ' + r.url);
  return r;
}\n`);
  writeFileSync(join(dir, 'register.mjs'), `import { register } from 'node:module';\nregister(${JSON.stringify('file://' + join(dir, 'hook.mjs'))});\n`);
  writeFileSync(join(dir, 'main.mjs'), `const { createApiSource } = await import(${JSON.stringify('file://' + API_SOURCE)});
const { logger } = await import(${JSON.stringify('file://' + resolve('dist/src/pkg/log.js'))});
const { createRegistry } = await import(${JSON.stringify('file://' + resolve('dist/src/pkg/metrics.js'))});
const { ClusterStore } = await import(${JSON.stringify('file://' + resolve('dist/src/cluster/store.js'))});
const src = createApiSource({ kubeconfig: ${JSON.stringify(writeKubeconfig(dir, api.url))}, pods: 'disabled', startupTimeoutMs: 5000 }, { log: logger('test'), registry: createRegistry() });
await src.start(new ClusterStore());
await src.stop();
console.log(src.synced() ? 'synced' : 'not synced');\n`);
  const child = spawn(process.execPath, ['--import', join(dir, 'register.mjs'), join(dir, 'main.mjs')],
    { env: { PATH: process.env.PATH ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const code = await new Promise((r) => child.once('exit', r));
  t.equal(code, 0, out);
  t.match(out, /^synced$/m);
});
