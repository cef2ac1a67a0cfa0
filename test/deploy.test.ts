import t from 'tap';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { loadPlugins } from '../src/plugins/registry.js';
import { closePlugins, loadConfig } from '../src/server/config.js';
import { createRegistry } from '../src/pkg/metrics.js';
import type { SharedServices } from '../src/server/types.js';
import { parseVipArgs } from '../src/vip/cli.js';
import { FakeApiServer, namespace, writeKubeconfig } from './helpers/fake-apiserver.js';
import { tempDir } from './helpers/temp-dir.js';

/**
 * Every manifest under deploy/ parses, and what it promises matches the program: the ConfigMap's Corefile
 * sets up with the real plugins, the ports those plugins really open are the ones the Deployment, probes
 * and Service name, and the flags passed to `clusterdns` / `clusterdns vip` are accepted by their parsers.
 */
type Doc = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> }; [k: string]: any };

const DEPLOY = resolve('deploy');
const docs: Doc[] = [];
for (const f of readdirSync(DEPLOY).filter((f) => f.endsWith('.yaml')).sort()) {
  for (const d of parseAllDocuments(readFileSync(join(DEPLOY, f), 'utf8'))) {
    if (d.errors.length) throw new Error(`deploy/${f}: ${d.errors.map((e) => e.message).join('; ')}`);
    const js = d.toJS() as Doc | null;
    if (js) docs.push(js);
  }
}
const find = (kind: string, name: string): Doc => {
  const d = docs.find((x) => x.kind === kind && x.metadata.name === name);
  if (!d) throw new Error(`deploy/: no ${kind} ${name}`);
  return d;
};

const deployment = find('Deployment', 'clusterdns');
const pod = deployment.spec.template.spec;
const container = pod.containers[0];
const corefile: string = find('ConfigMap', 'clusterdns').data.Corefile;

t.test('every manifest is a well-formed object in kube-system (cluster-scoped ones excepted)', async (t) => {
  t.ok(docs.length >= 12, `${docs.length} objects`);
  for (const d of docs) {
    t.ok(d.apiVersion && d.kind && d.metadata?.name, `${d.kind} ${d.metadata?.name}`);
    if (!['ClusterRole', 'ClusterRoleBinding'].includes(d.kind)) t.equal(d.metadata.namespace, 'kube-system', `${d.kind} ${d.metadata.name} namespace`);
  }
});

t.test('RBAC: list/watch exactly what the informers read', async (t) => {
  const rules = find('ClusterRole', 'system:clusterdns').rules as { apiGroups: string[]; resources: string[]; verbs: string[] }[];
  const can = (group: string, resource: string) => rules.some((r) => r.apiGroups.includes(group) && r.resources.includes(resource) && ['list', 'watch'].every((v) => r.verbs.includes(v)));
  for (const [g, r] of [['', 'services'], ['', 'namespaces'], ['', 'pods'], ['discovery.k8s.io', 'endpointslices']] as const) t.ok(can(g, r), `${g || 'core'}/${r}`);
  t.ok(rules.every((r) => r.verbs.every((v) => v === 'list' || v === 'watch')), 'read-only');
  const binding = find('ClusterRoleBinding', 'system:clusterdns');
  t.equal(binding.roleRef.name, 'system:clusterdns');
  t.same(binding.subjects, [{ kind: 'ServiceAccount', name: 'clusterdns', namespace: 'kube-system' }]);
  t.equal(pod.serviceAccountName, 'clusterdns');
  find('ServiceAccount', 'clusterdns');
});

t.test('the ConfigMap Corefile sets up with the real plugins; their ports match the Deployment and Service', async (t) => {
  // The kubernetes block would use the in-cluster account; point it at a fake API server instead.
  const api = await new FakeApiServer().start();
  api.apply('namespaces', namespace('default'));
  t.teardown(() => api.stop());
  const dir = tempDir('deploy');
  const kc = writeKubeconfig(dir, api.url);
  const text = corefile.replace(/^(\s*kubernetes [^{\n]*\{)$/m, `$1\n       kubeconfig ${kc}`);
  t.not(text, corefile, 'kubernetes block found');
  const file = join(dir, 'Corefile');
  writeFileSync(file, text);
  const routes: { address: string; path: string; owner: string }[] = [];
  const shared: SharedServices = {
    http: { route: (address, path, _h, owner) => void routes.push({ address, path, owner }) }, registry: createRegistry(),
    readiness: () => [], shuttingDown: () => false, setLameduck: () => {}, requestReload: () => {},
    resolve: () => Promise.reject(new Error('no queries in this test')),
  };
  const config = await loadConfig({ file, plugins: await loadPlugins(), shared });
  t.teardown(() => closePlugins(config.blocks));
  const port = (address: string) => Number(/:(\d+)$/.exec(address)?.[1]);
  const route = (path: string) => routes.find((r) => r.path === path);

  t.same(config.ports.map((p) => p.port), [53], 'DNS on 53');
  const cport = (name: string) => container.ports.find((p: { name: string }) => p.name === name);
  t.equal(cport('dns').containerPort, 53);
  t.equal(cport('dns').protocol, 'UDP');
  t.equal(cport('dns-tcp').containerPort, 53);
  t.equal(cport('dns-tcp').protocol, 'TCP');

  t.ok(route('/health'), 'health plugin serves /health');
  t.equal(container.livenessProbe.httpGet.path, '/health');
  t.equal(container.livenessProbe.httpGet.port, port(route('/health')!.address), 'liveness probe port = health plugin port');
  t.ok(route('/ready'), 'ready plugin serves /ready');
  t.equal(container.readinessProbe.httpGet.path, '/ready');
  t.equal(container.readinessProbe.httpGet.port, port(route('/ready')!.address), 'readiness probe port = ready plugin port');
  t.ok(route('/metrics'), 'prometheus plugin serves /metrics');
  const metricsPort = port(route('/metrics')!.address);
  t.equal(cport('metrics').containerPort, metricsPort);
  t.same(container.ports.map((p: { containerPort: number }) => p.containerPort).sort(), [53, 53, 8080, 8181, 9153]);

  const svc = find('Service', 'kube-dns');
  t.equal(svc.metadata.labels?.['k8s-app'], 'kube-dns');
  t.same(svc.spec.selector, { 'k8s-app': 'kube-dns' });
  t.equal(deployment.spec.template.metadata.labels['k8s-app'], 'kube-dns', 'Service selects the Deployment pods');
  t.same(svc.spec.ports.map((p: { port: number; protocol: string }) => `${p.port}/${p.protocol}`).sort(), ['53/TCP', '53/UDP', `${metricsPort}/TCP`]);
  t.equal(svc.metadata.annotations?.['prometheus.io/port'], String(metricsPort));
});

t.test('Deployment: CoreDNS-style hardening and the config mount', async (t) => {
  t.same(container.args, ['-conf', '/etc/coredns/Corefile']);
  const mount = container.volumeMounts.find((m: { name: string }) => m.name === 'config-volume');
  t.equal(mount.mountPath, '/etc/coredns');
  t.equal(pod.volumes.find((v: { name: string }) => v.name === 'config-volume').configMap.name, 'clusterdns');
  t.same(container.securityContext.capabilities.add, ['NET_BIND_SERVICE']);
  t.same(container.securityContext.capabilities.drop, ['ALL']);
  t.equal(container.securityContext.readOnlyRootFilesystem, true);
  t.equal(container.securityContext.allowPrivilegeEscalation, false);
  t.equal(pod.securityContext.runAsNonRoot, true);
  t.ok(pod.securityContext.runAsUser > 0);
  t.equal(pod.dnsPolicy, 'Default', 'the DNS server does not resolve through itself');
  t.ok(container.resources.requests.cpu && container.resources.requests.memory && container.resources.limits.memory);
  t.ok(pod.topologySpreadConstraints.length > 0, 'topology spread');
  // Preferred anti-affinity on clusterdns's own label: pods may share a node with CoreDNS (side-by-side
  // migration) or with each other (one-node clusters); nothing required keys on k8s-app: kube-dns.
  const anti = pod.affinity.podAntiAffinity;
  t.notOk(anti.requiredDuringSchedulingIgnoredDuringExecution, 'no required anti-affinity');
  t.same(anti.preferredDuringSchedulingIgnoredDuringExecution.map((p: any) => p.podAffinityTerm.labelSelector.matchLabels),
    [{ 'app.kubernetes.io/name': 'clusterdns' }]);
  for (const c of pod.topologySpreadConstraints) {
    t.same(c.labelSelector.matchLabels, { 'app.kubernetes.io/name': 'clusterdns' }, `spread over ${c.topologyKey} counts clusterdns pods only`);
    t.equal(c.whenUnsatisfiable, 'ScheduleAnyway');
  }
  const pdb = find('PodDisruptionBudget', 'clusterdns');
  t.same(pdb.spec.selector.matchLabels, deployment.spec.selector.matchLabels, 'PDB selects the Deployment');
});

const cli = resolve('dist/src/cli.js');
t.test('clusterdns serve accepts the Deployment args, and the image runs them', { skip: !existsSync(cli) && 'dist/src/cli.js missing (run tsc -p . first)' }, async (t) => {
  const { stdout } = await promisify(execFile)(process.execPath, [cli, '--help']);
  for (const a of container.args.filter((a: string) => a.startsWith('-'))) t.match(stdout, new RegExp(`\\[${a}[ \\]]`), `--help lists ${a}`);
  const dockerfile = readFileSync('Dockerfile', 'utf8');
  t.match(dockerfile, /ENTRYPOINT \["node", "--max-semi-space-size=2", "\/app\/dist\/src\/cli\.js"\]\nCMD \["-conf", "\/etc\/coredns\/Corefile"\]\s*$/, 'default target runs serve with the Deployment args and the shebang\'s node flag');
  for (const p of ['53/udp', '53/tcp', '9153', '8080', '8181']) t.match(dockerfile, new RegExp(`EXPOSE .*\\b${p.replace('/', '\\/')}\\b`), `EXPOSE ${p}`);
  t.match(dockerfile, /FROM runtime AS vip[\s\S]*iptables nftables conntrack[\s\S]*ENTRYPOINT \["node", "\/app\/dist\/src\/cli\.js", "vip"\]/);
});

t.test('vip DaemonSet: flags accepted by clusterdns vip, host network, NET_ADMIN, xtables lock', async (t) => {
  const ds = find('DaemonSet', 'clusterdns-vip');
  const spec = ds.spec.template.spec;
  const c = spec.containers[0];
  // Kubernetes expands $(VAR) from the container env; do the same with plausible values.
  const env: Record<string, string> = { NODE_IP: '192.0.2.7', NODE_NAME: 'node-1' };
  const args = (c.args as string[]).map((a) => a.replace(/\$\((\w+)\)/g, (_, v: string) => env[v] ?? `$(${v})`));
  const o = parseVipArgs(args);
  t.same(o.nodeIPs, ['192.0.2.7']);
  t.equal(o.nodeName, 'node-1');
  t.notOk(o.kubeconfig, 'in-cluster service account');
  t.notOk(o.manifests);
  t.equal(c.env.find((e: { name: string }) => e.name === 'NODE_IP').valueFrom.fieldRef.fieldPath, 'status.hostIP');
  t.equal(spec.hostNetwork, true);
  t.ok(c.securityContext.capabilities.add.includes('NET_ADMIN'));
  const lock = c.volumeMounts.find((m: { mountPath: string }) => m.mountPath === '/run/xtables.lock');
  t.equal(spec.volumes.find((v: { name: string }) => v.name === lock.name).hostPath.path, '/run/xtables.lock');
  t.equal(spec.serviceAccountName, 'clusterdns', 'reads Services and EndpointSlices with the same read-only role');
});

t.test('autoscaler: linear ladder targeting the Deployment', async (t) => {
  const linear = JSON.parse(find('ConfigMap', 'clusterdns-autoscaler').data.linear);
  t.ok(linear.coresPerReplica > 0 && linear.nodesPerReplica > 0 && linear.min >= 1);
  t.equal(linear.preventSinglePointFailure, true);
  const cmd = find('Deployment', 'clusterdns-autoscaler').spec.template.spec.containers[0].command as string[];
  t.ok(cmd.includes('--target=Deployment/clusterdns'));
  t.ok(cmd.includes('--configmap=clusterdns-autoscaler'));
});
