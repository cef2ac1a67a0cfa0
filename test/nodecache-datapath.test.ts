import t, { type Test } from 'tap';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { parseAllDocuments } from 'yaml';
import { NetnsLab, isRoot } from './helpers/netns.js';
import { sleep, waitFor } from './helpers/wait.js';
import { tempDir } from './helpers/temp-dir.js';

/*
 * `clusterdns nodecache` on a real kernel, in namespaces this test creates, once per mode:
 *
 *   pod 10.0.1.2 ── 10.0.1.1 node ── 10.244.1.1 ── dns 10.244.1.2 (clusterdns serve, cluster.local)
 *                    │                                10.244.1.3 (dnsmasq: the node's upstream resolver)
 *                    ├ clusterdns vip: kube-dns 10.96.0.10 and kube-dns-upstream 10.96.0.11 -> 10.244.1.2:53
 *                    └ clusterdns nodecache -localip 169.254.20.10,10.96.0.10 (the transparent setup)
 *
 * The pod's resolv.conf names 169.254.20.10; the kube-dns ClusterIP is answered by the cache too, because
 * its NOTRACK rules keep those packets away from the VIP's DNAT. The cache reaches the cluster DNS through
 * the kube-dns-upstream VIP, over TCP (force_tcp in the Corefile of deploy/nodelocaldns.yaml).
 */

if (!isRoot()) {
  t.plan(0, 'data-path tests need root (network namespaces, iptables, nft): skipped');
  process.exit(0);
}
t.setTimeout(120_000);
// The two modes use separate namespaces and share nothing: run side by side to keep the file under a minute.
t.jobs = 2;

const CLI = resolve('dist/src/cli.js');
const LOCAL_IP = '169.254.20.10';
const KUBE_DNS = '10.96.0.10';
const UPSTREAM_SVC = '10.96.0.11';
const SYNC_MS = 1000;

/** The Corefile the DaemonSet ships, unchanged. */
const NODE_COREFILE: string = parseAllDocuments(readFileSync('deploy/nodelocaldns.yaml', 'utf8'))
  .map((d) => d.toJS() as { kind: string; data?: Record<string, string> })
  .find((d) => d.kind === 'ConfigMap')!.data!.Corefile!;

const CLUSTER_COREFILE = (manifests: string) => `.:53 {
    errors
    bind 10.244.1.2
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        manifests ${manifests} 1s
    }
    prometheus 127.0.0.1:9153
}
`;

type Obj = Record<string, unknown>;
const DNS_PORTS = [{ name: 'dns', port: 53, protocol: 'UDP', targetPort: 53 }, { name: 'dns-tcp', port: 53, protocol: 'TCP', targetPort: 53 }];

function service(name: string, namespace: string, clusterIP: string, ports: Obj[]): Obj {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace }, spec: { clusterIP, ports } };
}

function slice(svc: string, namespace: string, ips: string[], ports: Obj[]): Obj {
  return {
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', addressType: 'IPv4',
    metadata: { name: `${svc}-1`, namespace, labels: { 'kubernetes.io/service-name': svc } },
    endpoints: ips.map((ip) => ({ addresses: [ip], conditions: { ready: true }, nodeName: 'node1' })),
    ports: ports.map((p) => ({ name: p.name, port: p.targetPort, protocol: p.protocol })),
  };
}

const OBJECTS = [
  { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } },
  { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'kube-system' } },
  service('kube-dns', 'kube-system', KUBE_DNS, DNS_PORTS), slice('kube-dns', 'kube-system', ['10.244.1.2'], DNS_PORTS),
  service('kube-dns-upstream', 'kube-system', UPSTREAM_SVC, DNS_PORTS), slice('kube-dns-upstream', 'kube-system', ['10.244.1.2'], DNS_PORTS),
  service('web', 'default', '10.96.5.5', [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080 }]),
];

/** How a scenario reads and damages our rules in one mode. */
interface Kernel {
  /** Comments of our rules, one per rule (duplicates show twice). */
  ours(): Promise<string[]>;
  /** Deletes some of our rules behind the agent's back. */
  sabotage(): Promise<void>;
}

function iptablesKernel(lab: NetnsLab): Kernel {
  return {
    ours: async () => (await lab.must('node', 'iptables-save', [])).split('\n').filter((l) => l.includes('clusterdns nodecache:')),
    sabotage: async () => {
      const first = (await lab.must('node', 'iptables', ['-t', 'raw', '-S', 'PREROUTING'])).split('\n').find((l) => l.includes('clusterdns'))!;
      await lab.must('node', 'sh', ['-c', `iptables -t raw ${first.replace(/^-A/, '-D')}`]);
      await lab.must('node', 'iptables', ['-t', 'filter', '-F', 'INPUT']);
    },
  };
}

function nftablesKernel(lab: NetnsLab): Kernel {
  return {
    ours: async () => {
      const r = await lab.exec('node', 'nft', ['list', 'table', 'inet', 'clusterdns-nodecache']);
      return r.code === 0 ? r.stdout.split('\n').filter((l) => l.includes('comment "clusterdns nodecache:')) : [];
    },
    sabotage: async () => void await lab.must('node', 'nft', ['flush', 'chain', 'inet', 'clusterdns-nodecache', 'raw-prerouting']),
  };
}

for (const mode of ['iptables', 'nftables'] as const) {
  t.test(`${mode} mode`, async (t) => scenarios(t, mode));
}

async function scenarios(t: Test, mode: 'iptables' | 'nftables'): Promise<void> {
  const lab = new NetnsLab(mode === 'iptables' ? 'ncipt' : 'ncnft');
  const kernel = mode === 'iptables' ? iptablesKernel(lab) : nftablesKernel(lab);
  const dir = tempDir(`nodecache-${mode}`);
  t.teardown(async () => {
    await lab.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });
  const manifests = join(dir, 'manifests');
  mkdirSync(manifests);
  writeFileSync(join(manifests, 'cluster.yaml'), OBJECTS.map((o) => JSON.stringify(o)).join('\n---\n'));
  writeFileSync(join(dir, 'Corefile.cluster'), CLUSTER_COREFILE(manifests));
  writeFileSync(join(dir, 'Corefile'), NODE_COREFILE);
  writeFileSync(join(dir, 'node-resolv.conf'), 'nameserver 10.244.1.3\n');
  writeFileSync(join(dir, 'pod-resolv.conf'), `nameserver ${LOCAL_IP}\nsearch default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5 timeout:2 attempts:2\n`);

  for (const n of ['pod', 'node', 'dns']) await lab.addNamespace(n, n === 'node' ? { 'net.ipv4.ip_forward': '1' } : {});
  await lab.link({ ns: 'pod', ifname: 'eth0', addr: ['10.0.1.2/24'] }, { ns: 'node', ifname: 'eth0', addr: ['10.0.1.1/24'] });
  await lab.link({ ns: 'node', ifname: 'dns0', addr: ['10.244.1.1/24'] }, { ns: 'dns', ifname: 'eth0', addr: ['10.244.1.2/24', '10.244.1.3/24'] });
  await lab.route('pod', 'default', 'via', '10.0.1.1');
  await lab.route('dns', 'default', 'via', '10.244.1.1');
  // VIPs need a route before the DNAT (see the vip data-path test): the default one, to the DNS side.
  await lab.route('node', 'default', 'via', '10.244.1.2');

  const logOf = (child: ChildProcess) => {
    const lines: string[] = [];
    child.stderr!.on('data', (b: Buffer) => lines.push(...b.toString().split('\n').filter(Boolean)));
    return lines;
  };
  lab.spawn('dns', process.execPath, [CLI, 'serve', '-conf', join(dir, 'Corefile.cluster')]);
  lab.spawn('dns', 'dnsmasq', ['-k', '-C', '/dev/null', '--no-resolv', '--no-hosts', '--bind-interfaces', '--listen-address=10.244.1.3',
    '-p', '53', '--pid-file=', '--user=root', '--address=/www.example.org/192.0.2.80']);
  const vip = lab.spawn('node', process.execPath, [CLI, 'vip', '--mode', mode, '--manifests', manifests, '--sync-period', '10s',
    '--min-sync-period', '100ms', '--hostname-override', 'node1']);
  const vipLog = logOf(vip);
  await waitFor('vip first sync', async () => vipLog.some((l) => l.includes('IPv4 full sync')), 30_000);
  await waitFor('cluster DNS through the kube-dns VIP', async () =>
    (await lab.exec('pod', 'dig', [`@${KUBE_DNS}`, '+short', '+time=1', '+tries=1', 'web.default.svc.cluster.local'])).stdout.includes('10.96.5.5'), 15_000, 200);
  await waitFor('dnsmasq', async () => (await lab.exec('node', 'dig', ['@10.244.1.3', '+short', '+time=1', 'www.example.org'])).stdout.includes('192.0.2.80'), 5000, 100);

  const startCache = (...extra: string[]) => {
    const child = lab.spawn('node', 'env', [`KUBE_DNS_UPSTREAM_SERVICE_HOST=${UPSTREAM_SVC}`, process.execPath, CLI, 'nodecache',
      '-localip', `${LOCAL_IP},${KUBE_DNS}`, '-conf', join(dir, 'Corefile'), '-upstreamsvc', 'kube-dns-upstream', '-mode', mode,
      '-resolvconf', join(dir, 'node-resolv.conf'), '-syncinterval', `${SYNC_MS}ms`, ...extra]);
    return { child, log: logOf(child) };
  };
  const ready = async (c: { log: string[] }) => waitFor('cache serving', async () => c.log.some((l) => /nodecache: serving/.test(l)), 20_000);
  const stop = async (c: { child: ChildProcess; log: string[] }) => {
    // Teardown runs a few iptables/nft/ip commands: seconds when the machine is loaded.
    await lab.kill(c.child, 'SIGTERM', 20_000);
    return c.child.exitCode;
  };
  /** One query from the pod with glibc's resolver and the pod's resolv.conf (private mount namespace). */
  const getent = (name: string) => lab.exec('pod', 'unshare', ['--mount', 'sh', '-c',
    `mount --bind ${join(dir, 'pod-resolv.conf')} /etc/resolv.conf && getent ahostsv4 ${name}`]);
  const podDig = (server: string, name: string, ...opts: string[]) =>
    lab.exec('pod', 'dig', [`@${server}`, '+short', '+time=2', '+tries=1', ...opts, name]);
  const tracked = async (dst: string) => (await lab.exec('node', 'conntrack', ['-L', '-p', 'udp', '--orig-dst', dst])).stdout.split('\n').filter(Boolean).length;
  /** Queries the cluster DNS server has seen, per transport. */
  const clusterRequests = async () => {
    const lines = (await lab.must('dns', 'curl', ['-s', 'http://127.0.0.1:9153/metrics'])).split('\n').filter((l) => l.startsWith('coredns_dns_requests_total{'));
    const sum = (proto: string) => lines.filter((l) => l.includes(`proto="${proto}"`)).reduce((n, l) => n + Number(l.split(' ').at(-1)), 0);
    return { udp: sum('udp'), tcp: sum('tcp') };
  };
  const addresses = async () => (await lab.must('node', 'ip', ['-o', 'addr'])).split('\n').filter((l) => l.includes(LOCAL_IP) || l.includes(`${KUBE_DNS}/32`)).length;

  await t.test('without the agent\'s rules the pod\'s UDP DNS to the local IP is tracked', async (t) => {
    const c = startCache('-setupiptables=false');
    await ready(c);
    t.equal((await podDig(LOCAL_IP, 'web.default.svc.cluster.local')).stdout.trim(), '10.96.5.5');
    t.ok(await tracked(LOCAL_IP) >= 1, 'conntrack entry for the query');
    t.equal(await stop(c), 0);
    t.equal(await addresses(), 0, 'addresses removed on SIGTERM');
  });

  let cache = startCache();
  await t.test('answers cluster and external names for the pod, untracked, cache misses over TCP', async (t) => {
    await ready(cache);
    await waitFor('rules in place', async () => (await kernel.ours()).length === 24, 5000);
    await lab.must('node', 'conntrack', ['-F']);
    const before = await clusterRequests();
    const cluster = await getent('web');
    t.match(cluster.stdout, /^10\.96\.5\.5\s/m, `getent through the search path: ${cluster.stderr}`);
    t.match((await getent('www.example.org')).stdout, /^192\.0\.2\.80\s/m, 'external name from the node\'s upstream');
    t.equal((await podDig(LOCAL_IP, 'web.default.svc.cluster.local')).stdout.trim(), '10.96.5.5', 'dig, cache hit');
    t.equal((await podDig(KUBE_DNS, 'web.default.svc.cluster.local')).stdout.trim(), '10.96.5.5', 'transparent: the kube-dns ClusterIP');
    t.equal((await podDig(LOCAL_IP, 'web.default.svc.cluster.local', '+tcp')).stdout.trim(), '10.96.5.5', 'dig over TCP');
    t.equal(await tracked(LOCAL_IP), 0, 'no conntrack entry for the local IP');
    t.equal(await tracked(KUBE_DNS), 0, 'none for the kube-dns ClusterIP either (no DNAT by the VIP)');

    const after = await clusterRequests();
    t.ok(after.tcp > before.tcp, `cluster DNS got the cache misses over TCP (${after.tcp - before.tcp})`);
    t.equal(after.udp, before.udp, 'and nothing over UDP');

    t.equal((await lab.must('node', 'curl', ['-s', `http://${LOCAL_IP}:8080/health`])).trim(), 'OK', 'health on the local IP');
    const metrics = await lab.must('node', 'curl', ['-s', 'http://127.0.0.1:9253/metrics']);
    t.match(metrics, new RegExp(`clusterdns_nodecache_rules\\{mode="${mode}"\\} 24`));
    t.match(metrics, /clusterdns_nodecache_last_setup_error_timestamp_seconds 0/);
    t.match(metrics, /coredns_cache_hits_total\{[^}]*\} [1-9]/);
    t.match(metrics, /coredns_proxy_request_duration_seconds_count\{proxy_name="forward",to="10\.96\.0\.11:53"[^}]*\} [1-9]/);
  });

  await t.test('rules deleted by hand are back within one sync interval', async (t) => {
    await kernel.sabotage();
    const t0 = Date.now();
    t.ok((await kernel.ours()).length < 24, 'sabotaged');
    await waitFor('rules repaired', async () => (await kernel.ours()).length === 24, 5 * SYNC_MS, 50);
    // One interval, plus the check itself on this loaded 2-core machine.
    t.ok(Date.now() - t0 <= SYNC_MS + 2000, `repaired in ${Date.now() - t0} ms`);
    t.match(cache.log.join('\n'), /added \d+ rules? \(\d+ of 24 were in place\)/);
  });

  await t.test('SIGTERM removes rules and addresses; the kube-dns ClusterIP goes back to the VIP', async (t) => {
    t.equal(await stop(cache), 0, 'clean exit');
    t.same(await kernel.ours(), [], 'no rule left');
    t.equal(await addresses(), 0, 'no address left');
    t.equal((await podDig(KUBE_DNS, 'web.default.svc.cluster.local')).stdout.trim(), '10.96.5.5', 'answered by the cluster DNS through the VIP');
  });

  await t.test('-skipteardown keeps rules and addresses; a restart finds them and adds no duplicates', async (t) => {
    cache = startCache('-skipteardown');
    await ready(cache);
    await waitFor('rules in place', async () => (await kernel.ours()).length === 24, 5000);
    t.equal(await stop(cache), 0);
    t.equal((await kernel.ours()).length, 24, 'rules kept on exit');
    t.equal(await addresses(), 2, 'addresses kept');

    cache = startCache();
    await ready(cache);
    // One more sync after start-up: it too must find everything in place.
    await sleep(SYNC_MS + 200);
    t.equal((await kernel.ours()).length, 24, '24 rules, no duplicates');
    t.notOk(cache.log.some((l) => /added \d+ rule|added .* to /.test(l)), 'nothing had to be added');
    t.equal((await podDig(LOCAL_IP, 'web.default.svc.cluster.local')).stdout.trim(), '10.96.5.5');
    t.equal(await stop(cache), 0);
    t.same(await kernel.ours(), [], 'SIGTERM without -skipteardown removes everything');
    t.equal(await addresses(), 0);
  });
}
