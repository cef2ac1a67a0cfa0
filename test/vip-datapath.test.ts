import t from 'tap';
import { mkdtempSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { NetnsLab, isRoot, waitFor } from './helpers/netns.js';

/*
 * The VIP programmer on a real kernel, in namespaces this test creates:
 *
 *   client 10.0.1.2 ── 10.0.1.1 node ── 10.244.1.1 ── be1 10.244.1.2 (HTTP :8080, UDP :5353, dnsmasq :53)
 *                               │  └─── 10.244.2.1 ── be2 10.244.2.2 (HTTP :8080, UDP :5353)
 *                               └── 10.0.9.1 ── sink 10.0.9.2 (default route of node; does not forward)
 *
 * The sink gives VIP packets a route, as on a real node: without one they die at routing and fake a REJECT,
 * so assertions read rule counters, not only what the client sees.
 */

if (!isRoot()) {
  t.plan(0, 'data-path tests need root (network namespaces, iptables): skipped');
  process.exit(0);
}
t.setTimeout(240_000);

const CLI = resolve('dist/src/cli.js');
const lab = new NetnsLab('vip');
const dir = mkdtempSync(join(tmpdir(), 'clusterdns-vip-'));
const manifests = join(dir, 'manifests');

const BACKEND = `
import http from 'node:http';
import dgram from 'node:dgram';
const name = process.argv[2];
http.createServer((req, res) => res.end(name + ' ' + req.socket.remoteAddress + '\\n')).listen(8080);
const u = dgram.createSocket('udp4');
u.on('message', (m, r) => u.send(name, r.port, r.address));
u.bind(5353);
`;
/** One UDP query from a fixed source port (what keeps a stale conntrack entry alive); prints the reply. */
const UDP_CLIENT = `
import dgram from 'node:dgram';
const [host, port, sport] = process.argv.slice(2);
const s = dgram.createSocket('udp4');
const timer = setTimeout(() => { console.log('timeout'); s.close(); }, 800);
s.on('message', (m) => { clearTimeout(timer); console.log(String(m)); s.close(); });
s.on('error', (e) => { clearTimeout(timer); console.log('error ' + e.code); s.close(); });
s.bind(Number(sport), () => { s.connect(Number(port), host, () => s.send('q')); });
`;

type Obj = Record<string, unknown>;

function service(name: string, clusterIP: string, ports: Obj[], spec: Obj = {}): Obj {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default' }, spec: { clusterIP, ports, ...spec } };
}

function endpointSlice(service: string, ips: string[], ports: Obj[], ready = true): Obj {
  return {
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', addressType: 'IPv4',
    metadata: { name: `${service}-1`, namespace: 'default', labels: { 'kubernetes.io/service-name': service } },
    endpoints: ips.map((ip) => ({ addresses: [ip], conditions: { ready }, nodeName: 'remote' })),
    ports,
  };
}

const HTTP = [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080 }];
const HTTP_EP = [{ name: 'http', port: 8080, protocol: 'TCP' }];
const BE = ['10.244.1.2', '10.244.2.2'];

/** Manifests go one file per name, replaced atomically (the source polls the directory). */
function put(name: string, objs: Obj[]): void {
  const tmp = join(dir, `${name}.tmp`);
  writeFileSync(tmp, objs.map((o) => JSON.stringify(o)).join('\n---\n'));
  renameSync(tmp, join(manifests, `${name}.yaml`));
}
function remove(name: string): void {
  unlinkSync(join(manifests, `${name}.yaml`));
}

async function curl(url: string, maxTime = 2): Promise<{ code: number; body: string; ms: number }> {
  const t0 = Date.now();
  const r = await lab.exec('client', 'curl', ['-s', '--max-time', String(maxTime), url]);
  return { code: r.code, body: r.stdout.trim(), ms: Date.now() - t0 };
}

async function udp(host: string, port: number, sport: number): Promise<string> {
  return (await lab.must('client', 'node', [join(dir, 'udp-client.mjs'), host, String(port), String(sport)])).trim();
}

/** Packets counted by the rules of a chain whose text contains `match`. */
async function packets(table: string, chain: string, match: string): Promise<number> {
  const out = await lab.must('node', 'iptables', ['-w', '5', '-t', table, '-v', '-S', chain]);
  return out.split('\n').filter((l) => l.includes(match))
    .reduce((n, l) => n + Number(/ -c (\d+) /.exec(l)?.[1] ?? 0), 0);
}

/**
 * True when `traffic` moved the counters of matching rules. Every sync rewrites (and so zeroes) the chains
 * it declares, so a drop means a sync came in between: try once more.
 */
async function counted(table: string, chain: string, match: string, traffic: () => Promise<unknown>): Promise<boolean> {
  for (let attempt = 0; attempt < 2; attempt++) {
    const before = await packets(table, chain, match);
    await traffic();
    if ((await packets(table, chain, match)) > before) return true;
  }
  return false;
}

async function natChains(): Promise<string[]> {
  const out = await lab.must('node', 'iptables-save', ['-t', 'nat']);
  return out.split('\n').filter((l) => l.startsWith(':')).map((l) => l.slice(1, l.indexOf(' ')));
}

/** iptables-save without counters and timestamps: what "identical rules" means to the kernel. */
async function rules(): Promise<string> {
  const out = await lab.must('node', 'iptables-save', []);
  return out.split('\n').filter((l) => !l.startsWith('#')).map((l) => l.replace(/\[\d+:\d+\]/, '')).join('\n');
}

const PROGRAMMER_ARGS = ['vip', '--manifests', manifests, '--cluster-cidr', '10.244.0.0/16', '--node-ip', '10.0.1.1',
  '--sync-period', '10s', '--min-sync-period', '100ms', '--hostname-override', 'node1'];

function startProgrammer(): { child: ChildProcess; log: string[] } {
  const child = lab.spawn('node', 'node', [CLI, ...PROGRAMMER_ARGS, '--metrics', '127.0.0.1:9101']);
  const log: string[] = [];
  child.stderr!.on('data', (b: Buffer) => log.push(...b.toString().split('\n').filter(Boolean)));
  return { child, log };
}

t.teardown(async () => {
  await lab.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

t.before(async () => {
  writeFileSync(join(dir, 'backend.mjs'), BACKEND);
  writeFileSync(join(dir, 'udp-client.mjs'), UDP_CLIENT);
  rmSync(manifests, { recursive: true, force: true });
  await import('node:fs').then((fs) => fs.mkdirSync(manifests));
  for (const n of ['client', 'node', 'be1', 'be2', 'sink']) await lab.addNamespace(n, n === 'node' ? { 'net.ipv4.ip_forward': '1' } : {});
  await lab.link({ ns: 'client', ifname: 'eth0', addr: ['10.0.1.2/24'] }, { ns: 'node', ifname: 'eth0', addr: ['10.0.1.1/24'] });
  await lab.link({ ns: 'node', ifname: 'be1', addr: ['10.244.1.1/24'] }, { ns: 'be1', ifname: 'eth0', addr: ['10.244.1.2/24'] });
  await lab.link({ ns: 'node', ifname: 'be2', addr: ['10.244.2.1/24'] }, { ns: 'be2', ifname: 'eth0', addr: ['10.244.2.2/24'] });
  await lab.link({ ns: 'node', ifname: 'sink', addr: ['10.0.9.1/24'] }, { ns: 'sink', ifname: 'eth0', addr: ['10.0.9.2/24'] });
  await lab.route('client', 'default', 'via', '10.0.1.1');
  await lab.route('be1', 'default', 'via', '10.244.1.1');
  await lab.route('be2', 'default', 'via', '10.244.2.1');
  await lab.route('node', 'default', 'via', '10.0.9.2');
  for (const be of ['be1', 'be2']) lab.spawn(be, 'node', [join(dir, 'backend.mjs'), be]);
  await waitFor('backends', async () => (await lab.exec('node', 'curl', ['-s', 'http://10.244.1.2:8080/'])).code === 0
    && (await lab.exec('node', 'curl', ['-s', 'http://10.244.2.2:8080/'])).code === 0, 10_000);
  // Someone else's rules: must survive every sync and the cleanup.
  await lab.must('node', 'iptables', ['-t', 'nat', '-N', 'FOREIGN']);
  await lab.must('node', 'iptables', ['-t', 'nat', '-A', 'FOREIGN', '-j', 'RETURN']);
  await lab.must('node', 'iptables', ['-t', 'nat', '-I', 'PREROUTING', '-j', 'FOREIGN']);

  put('web', [service('web', '10.96.0.10', [{ ...HTTP[0], nodePort: 30080 }], { type: 'NodePort', externalIPs: ['192.0.2.10'] }),
    endpointSlice('web', BE, HTTP_EP)]);
  put('sticky', [service('sticky', '10.96.0.11', HTTP, { sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 600 } } }),
    endpointSlice('sticky', BE, HTTP_EP)]);
  put('empty', [service('empty', '10.96.0.12', HTTP), service('empty-udp', '10.96.0.13', [{ name: 'dns', port: 53, protocol: 'UDP', targetPort: 53 }])]);
  put('echo', [service('echo', '10.96.0.53', [{ name: 'echo', port: 53, protocol: 'UDP', targetPort: 5353 }]),
    endpointSlice('echo', ['10.244.1.2'], [{ name: 'echo', port: 5353, protocol: 'UDP' }])]);
  put('kube-dns', [service('kube-dns', '10.96.0.100', [
    { name: 'dns', port: 53, protocol: 'UDP', targetPort: 53 }, { name: 'dns-tcp', port: 53, protocol: 'TCP', targetPort: 53 }]),
  endpointSlice('kube-dns', ['10.244.2.2'], [{ name: 'dns', port: 53, protocol: 'UDP' }, { name: 'dns-tcp', port: 53, protocol: 'TCP' }])]);
});

let programmer: { child: ChildProcess; log: string[] };

t.test('programs the node and serves ClusterIPs spread over both endpoints', async (t) => {
  programmer = startProgrammer();
  await waitFor('first sync', async () => programmer.log.some((l) => l.includes('IPv4 full sync')), 10_000);
  const seen = new Map<string, number>();
  for (let i = 0; i < 40; i++) {
    const r = await curl('http://10.96.0.10/');
    t.equal(r.code, 0, 'served');
    const name = r.body.split(' ')[0]!;
    seen.set(name, (seen.get(name) ?? 0) + 1);
  }
  t.same([...seen.keys()].sort(), ['be1', 'be2'], `both endpoints used (${JSON.stringify([...seen])})`);
  t.ok(await counted('nat', 'KUBE-SERVICES', '10.96.0.10/32', () => curl('http://10.96.0.10/')), 'ClusterIP rule counted');
  const jumps = (await lab.must('node', 'iptables', ['-t', 'nat', '-S', 'PREROUTING'])).split('\n');
  t.equal(jumps.filter((l) => l.includes('KUBE-SERVICES')).length, 1);
  t.match(jumps[1], /KUBE-SERVICES/, 'entry jump inserted first');
  const metrics = await lab.must('node', 'curl', ['-s', 'http://127.0.0.1:9101/metrics']);
  t.match(metrics, /clusterdns_vip_rules\{family="IPv4"\} [1-9]\d*/);
  t.match(metrics, /clusterdns_vip_sync_duration_seconds_count\{family="IPv4",sync="full"\} [1-9]/);
  t.match(metrics, /clusterdns_vip_last_sync_timestamp_seconds\{family="IPv4"\} \d/);
});

t.test('ClientIP affinity sticks to one endpoint', async (t) => {
  const bodies = new Set<string>();
  for (let i = 0; i < 15; i++) bodies.add((await curl('http://10.96.0.11/')).body.split(' ')[0]!);
  t.equal(bodies.size, 1, `one backend: ${[...bodies].join(',')}`);
  const recent = await lab.must('node', 'sh', ['-c', 'cat /proc/net/xt_recent/KUBE-SEP-*']);
  t.match(recent, 'src=10.0.1.2', 'xt_recent list holds the client');
});

t.test('NodePort on the node IP and externalIP are served', async (t) => {
  let np = { code: -1, body: '' };
  t.ok(await counted('nat', 'KUBE-NODEPORTS', '30080', async () => (np = await curl('http://10.0.1.1:30080/'))), 'NodePort rule counted');
  t.equal(np.code, 0);
  t.match(np.body, /^be[12] (::ffff:)?10\.244\.[12]\.1$/, 'masqueraded to the node');
  let ext = { code: -1, body: '' };
  t.ok(await counted('nat', 'KUBE-SERVICES', '192.0.2.10/32', async () => (ext = await curl('http://192.0.2.10/'))), 'external IP rule counted');
  t.equal(ext.code, 0);
  t.match(ext.body, /^be[12] /);
  const other = await curl('http://192.0.2.10:81/', 1);
  t.not(other.code, 0, 'other ports of the external IP are not captured');
});

t.test('no endpoints: refused within a second, by the REJECT rule', async (t) => {
  let r = { code: -1, body: '', ms: 0 };
  t.ok(await counted('filter', 'KUBE-SERVICES', '10.96.0.12/32', async () => (r = await curl('http://10.96.0.12/', 5))), 'TCP REJECT rule counted');
  t.equal(r.code, 7, 'curl: connection refused');
  t.ok(r.ms < 1000, `failed fast (${r.ms} ms)`);
  let d = { stdout: '' };
  t.ok(await counted('filter', 'KUBE-SERVICES', '10.96.0.13/32', async () => (d = await lab.exec('client', 'dig', ['@10.96.0.13', '+time=2', '+tries=1', 'x.example']))), 'UDP REJECT rule counted');
  t.match(d.stdout, /connection refused/i, 'dig: connection refused');
});

t.test('UDP: a flow to a removed endpoint is flushed from conntrack', async (t) => {
  t.equal(await udp('10.96.0.53', 53, 40000), 'be1');
  t.match(await lab.must('node', 'conntrack', ['-L', '-p', 'udp', '--orig-port-src', '40000']), /10\.244\.1\.2/);
  put('echo', [service('echo', '10.96.0.53', [{ name: 'echo', port: 53, protocol: 'UDP', targetPort: 5353 }]),
    endpointSlice('echo', ['10.244.2.2'], [{ name: 'echo', port: 5353, protocol: 'UDP' }])]);
  // be1 still answers: without the flush the old entry would keep sending this client's packets to it.
  const t0 = Date.now();
  await waitFor('UDP answered by be2', async () => (await udp('10.96.0.53', 53, 40000)) === 'be2', 4000, 100);
  t.ok(Date.now() - t0 < 3000, `moved in ${Date.now() - t0} ms`);
});

t.test('DNS through a kube-dns-like VIP with glibc getent, UDP and TCP', async (t) => {
  const dns = lab.spawn('be2', 'dnsmasq', ['-k', '-C', '/dev/null', '--no-resolv', '--no-hosts', '--bind-interfaces',
    '--listen-address=10.244.2.2', '-p', '53', '--pid-file=', '--user=root',
    '--address=/web.default.svc.cluster.local/10.96.0.10']);
  t.teardown(() => lab.kill(dns));
  await waitFor('dnsmasq', async () => (await lab.exec('node', 'dig', ['@10.244.2.2', '+short', '+time=1', 'web.default.svc.cluster.local'])).stdout.includes('10.96.0.10'), 5000, 100);
  for (const [proto, opts] of [['udp', ''], ['tcp', 'options use-vc\n']] as const) {
    const resolv = join(dir, `resolv-${proto}.conf`);
    writeFileSync(resolv, `nameserver 10.96.0.100\noptions timeout:2 attempts:1\n${opts}`);
    let out = '';
    // A private mount namespace: the bind mount hides the host's resolv.conf from getent only.
    const lookup = async () => (out = await lab.must('client', 'unshare', ['--mount', 'sh', '-c',
      `mount --bind ${resolv} /etc/resolv.conf && getent ahostsv4 web.default.svc.cluster.local`]));
    t.ok(await counted('nat', 'KUBE-SERVICES', `10.96.0.100/32 -p ${proto}`, lookup), `${proto} VIP rule counted`);
    t.match(out, /^10\.96\.0\.10\s/m, `getent over ${proto}`);
  }
});

t.test('live endpoint change followed within 2 s; deleted service loses its chains', async (t) => {
  put('web', [service('web', '10.96.0.10', [{ ...HTTP[0], nodePort: 30080 }], { type: 'NodePort', externalIPs: ['192.0.2.10'] }),
    endpointSlice('web', ['10.244.2.2'], HTTP_EP)]);
  const t0 = Date.now();
  const webSvc = (await lab.must('node', 'iptables', ['-t', 'nat', '-S', 'KUBE-SERVICES'])).split('\n')
    .find((l) => l.includes('10.96.0.10/32'))!.split(' -j ')[1]!;
  await waitFor('one endpoint programmed', async () =>
    (await lab.must('node', 'iptables', ['-t', 'nat', '-S', webSvc])).split('\n').filter((l) => l.includes('-j KUBE-SEP-')).length === 1, 4000, 50);
  t.ok(Date.now() - t0 < 2000, `followed in ${Date.now() - t0} ms`);
  for (let i = 0; i < 6; i++) t.match((await curl('http://10.96.0.10/')).body, /^be2 /);

  const before = await natChains();
  const stickySvc = (await lab.must('node', 'iptables', ['-t', 'nat', '-S', 'KUBE-SERVICES'])).split('\n')
    .find((l) => l.includes('10.96.0.11/32'))!.split(' -j ')[1]!;
  t.ok(before.includes(stickySvc));
  remove('sticky');
  await waitFor('sticky chains gone', async () => !(await natChains()).includes(stickySvc), 4000);
  const after = await natChains();
  t.equal(after.filter((c) => c.startsWith('KUBE-SEP-')).length, before.filter((c) => c.startsWith('KUBE-SEP-')).length - 2, 'its SEP chains gone too');
  t.ok(after.includes('FOREIGN'), 'foreign chain intact');
  t.match(await lab.must('node', 'iptables', ['-t', 'nat', '-S', 'PREROUTING']), '-j FOREIGN');
});

t.test('external flush is repaired within the sync period', async (t) => {
  await lab.must('node', 'iptables', ['-t', 'nat', '-F', 'KUBE-SERVICES']);
  await lab.must('node', 'iptables', ['-t', 'mangle', '-X', 'KUBE-PROXY-CANARY']);
  await waitFor('rules back', async () => (await curl('http://10.96.0.10/', 1)).code === 0, 8000, 200);
  t.ok((await lab.exec('node', 'iptables', ['-t', 'mangle', '-S', 'KUBE-PROXY-CANARY'])).code === 0, 'canary recreated');
});

t.test('refuses to start without iptables or CAP_NET_ADMIN', async (t) => {
  const noCap = await lab.exec('node', 'setpriv', ['--bounding-set=-net_admin', process.execPath, CLI, 'vip', '--manifests', manifests, '--once']);
  t.equal(noCap.code, 1);
  t.match(noCap.stderr, /cannot start: missing CAP_NET_ADMIN/);
  const noIptables = await lab.exec('node', 'env', ['PATH=/nonexistent', process.execPath, CLI, 'vip', '--manifests', manifests, '--once']);
  t.equal(noIptables.code, 1);
  t.match(noIptables.stderr, /cannot start: iptables is not installed/);
});

t.test('restart gives identical rules; --cleanup leaves no KUBE- chain', async (t) => {
  await waitFor('quiet', async () => true);
  const running = await rules();
  await lab.kill(programmer.child);
  t.equal(programmer.child.exitCode, 0, 'clean exit on SIGTERM');
  t.notMatch(programmer.log.join('\n'), /\[ERROR\]/, 'no errors logged');
  const once = await lab.exec('node', 'node', [CLI, ...PROGRAMMER_ARGS, '--once']);
  t.equal(once.code, 0, once.stderr);
  t.equal(await rules(), running, 'iptables-save identical after a restart');
  t.equal((await lab.must('node', 'iptables', ['-t', 'nat', '-S', 'PREROUTING'])).split('\n').filter((l) => l.includes('KUBE-SERVICES')).length, 1);

  const dry = await lab.exec('node', 'node', [CLI, ...PROGRAMMER_ARGS, '--dry-run']);
  t.equal(dry.code, 0);
  t.equal(await rules(), running, '--dry-run changes nothing');
  const restore = await lab.exec('node', 'iptables-restore', ['--test', '--noflush'], dry.stdout);
  t.equal(restore.code, 0, `dry-run output is valid restore input ${restore.stderr}`);

  const clean = await lab.exec('node', 'node', [CLI, 'vip', '--cleanup']);
  t.equal(clean.code, 0, clean.stderr);
  const left = await lab.must('node', 'iptables-save', []);
  t.notMatch(left, /KUBE-/, 'no KUBE- chain or rule left');
  t.match(left, ':FOREIGN', 'foreign chain intact');
  t.match(left, '-A PREROUTING -j FOREIGN');
});
