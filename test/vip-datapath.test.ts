import t, { type Test } from 'tap';
import { mkdirSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { NetnsLab, isRoot } from './helpers/netns.js';
import { tempDir } from './helpers/temp-dir.js';
import { waitFor } from './helpers/wait.js';

/*
 * The VIP programmer on a real kernel, in namespaces this test creates, once per mode (iptables, nftables),
 * the same scenarios against each:
 *
 *   client 10.0.1.2 ── 10.0.1.1 node ── 10.244.1.1 ── be1 10.244.1.2 (HTTP :8080, UDP :5353, dnsmasq :53)
 *                               │  └─── 10.244.2.1 ── be2 10.244.2.2 (HTTP :8080, UDP :5353)
 *                               └── 10.0.9.1 ── sink 10.0.9.2 (default route of node; does not forward)
 *
 * The sink gives VIP packets a route, as on a real node: without one they die at routing and fake a REJECT,
 * so assertions read rule counters, not only what the client sees.
 */

if (!isRoot()) {
  t.plan(0, 'data-path tests need root (network namespaces, iptables, nft): skipped');
  process.exit(0);
}
t.setTimeout(480_000);

const CLI = resolve('dist/src/cli.js');

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

type Mode = 'iptables' | 'nftables';

/**
 * How a scenario reads the kernel in one mode. `counted` is true when `traffic` moved the packet counters
 * of what `what` names: the ClusterIP dispatch of a VIP, or the reject of a VIP without endpoints.
 */
interface Kernel {
  counted(what: { dispatch: string } | { reject: string }, traffic: () => Promise<unknown>): Promise<boolean>;
  /** Per-service chains (iptables nat KUBE-SVC/SEP/...; nftables chains with a `/` in the name). */
  serviceChains(): Promise<string[]>;
  /** The chain a ClusterIP dispatches to. */
  chainOf(vip: string): Promise<string>;
  /** Endpoints a service chain spreads over. */
  endpointsIn(chain: string): Promise<number>;
  /** Whether the affinity state holds the client. */
  affinityHolds(client: string): Promise<boolean>;
  /** Someone else's rules in the node: must survive every sync and the cleanup. */
  addForeign(): Promise<void>;
  foreignIntact(): Promise<boolean>;
  /** Removes our rules behind the programmer's back. */
  sabotage(): Promise<void>;
  /** Everything we own, without counters: what "identical rules" means to the kernel. */
  dump(): Promise<string>;
  /** Checks dry-run output without applying it. */
  validates(text: string): Promise<{ code: number; stderr: string }>;
  /** Nothing of ours left after --cleanup. */
  nothingLeft(): Promise<boolean>;
}

function iptablesKernel(lab: NetnsLab): Kernel {
  /** Packets counted by the rules of a chain whose text contains `match`. */
  const packets = async (table: string, chain: string, match: string) => {
    const out = await lab.must('node', 'iptables', ['-w', '5', '-t', table, '-v', '-S', chain]);
    return out.split('\n').filter((l) => l.includes(match)).reduce((n, l) => n + Number(/ -c (\d+) /.exec(l)?.[1] ?? 0), 0);
  };
  const natChains = async () => (await lab.must('node', 'iptables-save', ['-t', 'nat'])).split('\n')
    .filter((l) => l.startsWith(':')).map((l) => l.slice(1, l.indexOf(' ')));
  const save = () => lab.must('node', 'iptables-save', []);
  return {
    async counted(what, traffic) {
      const [table, chain, vip] = 'dispatch' in what ? ['nat', 'KUBE-SERVICES', what.dispatch] : ['filter', what.reject.startsWith('192.') ? 'KUBE-EXTERNAL-SERVICES' : 'KUBE-SERVICES', what.reject];
      // Every sync rewrites (and so zeroes) the chains it declares: a drop means a sync came in between.
      for (let attempt = 0; attempt < 2; attempt++) {
        const before = await packets(table, chain, `${vip}/32`);
        await traffic();
        if ((await packets(table, chain, `${vip}/32`)) > before) return true;
      }
      return false;
    },
    serviceChains: async () => (await natChains()).filter((c) => /^KUBE-(SVC|SVL|EXT|FW|SEP)-/.test(c)),
    chainOf: async (vip) => (await lab.must('node', 'iptables', ['-t', 'nat', '-S', 'KUBE-SERVICES'])).split('\n')
      .find((l) => l.includes(`${vip}/32`))!.split(' -j ')[1]!,
    endpointsIn: async (chain) => (await lab.must('node', 'iptables', ['-t', 'nat', '-S', chain])).split('\n').filter((l) => l.includes('-j KUBE-SEP-')).length,
    affinityHolds: async (client) => (await lab.must('node', 'sh', ['-c', 'cat /proc/net/xt_recent/KUBE-SEP-*'])).includes(`src=${client}`),
    async addForeign() {
      await lab.must('node', 'iptables', ['-t', 'nat', '-N', 'FOREIGN']);
      await lab.must('node', 'iptables', ['-t', 'nat', '-A', 'FOREIGN', '-j', 'RETURN']);
      await lab.must('node', 'iptables', ['-t', 'nat', '-I', 'PREROUTING', '-j', 'FOREIGN']);
    },
    async foreignIntact() {
      const s = await save();
      return s.includes(':FOREIGN') && s.includes('-A PREROUTING -j FOREIGN');
    },
    async sabotage() {
      await lab.must('node', 'iptables', ['-t', 'nat', '-F', 'KUBE-SERVICES']);
      await lab.must('node', 'iptables', ['-t', 'mangle', '-X', 'KUBE-PROXY-CANARY']);
    },
    dump: async () => (await save()).split('\n').filter((l) => !l.startsWith('#')).map((l) => l.replace(/\[\d+:\d+\]/, '')).join('\n'),
    validates: (text) => lab.exec('node', 'iptables-restore', ['--test', '--noflush'], text.replace(/^#.*\n/gm, '')),
    nothingLeft: async () => !/KUBE-/.test(await save()),
  };
}

/** The foreign table of the nftables runs: another program's NAT, hooked before ours. */
const FOREIGN_NFT = `table inet foreign {
  chain pre { type nat hook prerouting priority -150 ; ip daddr 203.0.113.7 counter return ; }
  chain post { type filter hook forward priority 10 ; counter ; }
}
`;

function nftablesKernel(lab: NetnsLab): Kernel {
  const nft = (...args: string[]) => lab.must('node', 'nft', args);
  const counter = async (chain: string, match: string) => {
    const out = await nft('list', 'chain', 'ip', 'clusterdns', chain);
    return out.split('\n').filter((l) => l.includes(match)).reduce((n, l) => n + Number(/counter packets (\d+)/.exec(l)?.[1] ?? 0), 0);
  };
  const foreign = () => nft('-s', 'list', 'table', 'inet', 'foreign');
  let foreignBefore = '';
  return {
    async counted(what, traffic) {
      if ('dispatch' in what) {
        // Map lookups have no counters: the element is there and the traffic went through (checked by the caller).
        const map = await nft('list', 'map', 'ip', 'clusterdns', 'service-ips');
        await traffic();
        return map.includes(`${what.dispatch} . `);
      }
      const before = await counter('reject-chain', 'reject');
      await traffic();
      const map = await nft('list', 'map', 'ip', 'clusterdns', 'no-endpoint-services');
      return (await counter('reject-chain', 'reject')) > before && new RegExp(`${what.reject.replaceAll('.', '\\.')} \\. \\w+ \\. \\d+ : goto reject-chain`).test(map);
    },
    serviceChains: async () => (await nft('list', 'chains', 'ip')).split('\n')
      .map((l) => /^\s*chain (\S+)/.exec(l)?.[1]).filter((c): c is string => !!c && c.includes('/')),
    chainOf: async (vip) => new RegExp(`${vip.replaceAll('.', '\\.')} \\. tcp \\. 80 : goto (\\S+?)[,\\s]`).exec(await nft('list', 'map', 'ip', 'clusterdns', 'service-ips'))![1]!,
    endpointsIn: async (chain) => (await nft('list', 'chain', 'ip', 'clusterdns', chain)).split('\n').filter((l) => l.includes('dnat to')).length,
    affinityHolds: async (client) => {
      const sets = (await nft('list', 'sets', 'ip')).split('\n').map((l) => /set (affinity-\S+)/.exec(l)?.[1]).filter((s): s is string => !!s);
      for (const s of sets) if ((await nft('list', 'set', 'ip', 'clusterdns', s)).includes(client)) return true;
      return false;
    },
    async addForeign() {
      await lab.must('node', 'nft', ['-f', '-'], FOREIGN_NFT);
      foreignBefore = await foreign();
    },
    foreignIntact: async () => (await foreign()) === foreignBefore,
    sabotage: async () => void await nft('delete', 'table', 'ip', 'clusterdns'),
    // Dynamic affinity elements carry expiry times: only their sets' presence is compared.
    dump: async () => (await nft('-s', 'list', 'table', 'ip', 'clusterdns')).replace(/expires \S+/g, ''),
    validates: (text) => lab.exec('node', 'nft', ['--check', '-f', '-'], text),
    nothingLeft: async () => !(await nft('list', 'tables')).includes('clusterdns'),
  };
}

for (const mode of ['iptables', 'nftables'] as const) {
  t.test(`${mode} mode`, async (t) => scenarios(t, mode));
}

async function scenarios(t: Test, mode: Mode): Promise<void> {
  const lab = new NetnsLab(mode === 'iptables' ? 'vip' : 'vipnft');
  const kernel = mode === 'iptables' ? iptablesKernel(lab) : nftablesKernel(lab);
  const dir = tempDir(`vip-${mode}`);
  const manifests = join(dir, 'manifests');

  /** Manifests go one file per name, replaced atomically (the source polls the directory). */
  const put = (name: string, objs: Obj[]) => {
    const tmp = join(dir, `${name}.tmp`);
    writeFileSync(tmp, objs.map((o) => JSON.stringify(o)).join('\n---\n'));
    renameSync(tmp, join(manifests, `${name}.yaml`));
  };
  const remove = (name: string) => unlinkSync(join(manifests, `${name}.yaml`));
  const curl = async (url: string, maxTime = 2) => {
    const t0 = Date.now();
    const r = await lab.exec('client', 'curl', ['-s', '--max-time', String(maxTime), url]);
    return { code: r.code, body: r.stdout.trim(), ms: Date.now() - t0 };
  };
  const udp = async (host: string, port: number, sport: number) =>
    (await lab.must('client', 'node', [join(dir, 'udp-client.mjs'), host, String(port), String(sport)])).trim();

  const args = ['vip', '--mode', mode, '--manifests', manifests, '--cluster-cidr', '10.244.0.0/16', '--node-ip', '10.0.1.1',
    '--sync-period', '10s', '--min-sync-period', '100ms', '--hostname-override', 'node1'];
  const startProgrammer = () => {
    const child = lab.spawn('node', 'node', [CLI, ...args, '--metrics', '127.0.0.1:9101']);
    const log: string[] = [];
    child.stderr!.on('data', (b: Buffer) => log.push(...b.toString().split('\n').filter(Boolean)));
    return { child, log };
  };

  t.teardown(async () => {
    await lab.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  writeFileSync(join(dir, 'backend.mjs'), BACKEND);
  writeFileSync(join(dir, 'udp-client.mjs'), UDP_CLIENT);
  mkdirSync(manifests);
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
  await kernel.addForeign();

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

  let programmer: { child: ChildProcess; log: string[] };

  await t.test('programs the node and serves ClusterIPs spread over both endpoints', async (t) => {
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
    t.ok(await kernel.counted({ dispatch: '10.96.0.10' }, () => curl('http://10.96.0.10/')), 'ClusterIP dispatch counted');
    if (mode === 'iptables') {
      const jumps = (await lab.must('node', 'iptables', ['-t', 'nat', '-S', 'PREROUTING'])).split('\n');
      t.equal(jumps.filter((l) => l.includes('KUBE-SERVICES')).length, 1);
      t.match(jumps[1], /KUBE-SERVICES/, 'entry jump inserted first');
    }
    const metrics = await lab.must('node', 'curl', ['-s', 'http://127.0.0.1:9101/metrics']);
    t.match(metrics, /clusterdns_vip_rules\{family="IPv4"\} [1-9]\d*/);
    t.match(metrics, /clusterdns_vip_sync_duration_seconds_count\{family="IPv4",sync="full"\} [1-9]/);
    t.match(metrics, /clusterdns_vip_last_sync_timestamp_seconds\{family="IPv4"\} \d/);
  });

  await t.test('ClientIP affinity sticks to one endpoint', async (t) => {
    const bodies = new Set<string>();
    for (let i = 0; i < 15; i++) bodies.add((await curl('http://10.96.0.11/')).body.split(' ')[0]!);
    t.equal(bodies.size, 1, `one backend: ${[...bodies].join(',')}`);
    t.ok(await kernel.affinityHolds('10.0.1.2'), 'affinity state holds the client');
  });

  await t.test('NodePort on the node IP and externalIP are served', async (t) => {
    const np = await curl('http://10.0.1.1:30080/');
    t.equal(np.code, 0);
    t.match(np.body, /^be[12] (::ffff:)?10\.244\.[12]\.1$/, 'masqueraded to the node');
    let ext = { code: -1, body: '' };
    t.ok(await kernel.counted({ dispatch: '192.0.2.10' }, async () => (ext = await curl('http://192.0.2.10/'))), 'external IP dispatch counted');
    t.equal(ext.code, 0);
    t.match(ext.body, /^be[12] /);
    const other = await curl('http://192.0.2.10:81/', 1);
    t.not(other.code, 0, 'other ports of the external IP are not captured');
  });

  await t.test('no endpoints: refused within a second, by the reject rule', async (t) => {
    let r = { code: -1, body: '', ms: 0 };
    t.ok(await kernel.counted({ reject: '10.96.0.12' }, async () => (r = await curl('http://10.96.0.12/', 5))), 'TCP reject counted');
    t.equal(r.code, 7, 'curl: connection refused');
    t.ok(r.ms < 1000, `failed fast (${r.ms} ms)`);
    let d = { stdout: '' };
    t.ok(await kernel.counted({ reject: '10.96.0.13' }, async () => (d = await lab.exec('client', 'dig', ['@10.96.0.13', '+time=2', '+tries=1', 'x.example']))), 'UDP reject counted');
    t.match(d.stdout, /connection refused/i, 'dig: connection refused');
  });

  if (mode === 'nftables') {
    await t.test('unknown port on a ClusterIP is rejected (iptables mode routes it on)', async (t) => {
      const counter = async () => Number(/counter packets (\d+)/.exec(await lab.must('node', 'nft', ['list', 'chain', 'ip', 'clusterdns', 'cluster-ips-check']))?.[1]);
      const before = await counter();
      const r = await curl('http://10.96.0.10:81/', 5);
      t.equal(r.code, 7, 'curl: connection refused');
      t.ok(r.ms < 1000, `failed fast (${r.ms} ms)`);
      t.ok((await counter()) > before, 'cluster-ips-check reject counted');
      t.equal((await curl('http://10.96.0.10/')).code, 0, 'the service port still works');
    });
  }

  await t.test('UDP: a flow to a removed endpoint is flushed from conntrack', async (t) => {
    t.equal(await udp('10.96.0.53', 53, 40000), 'be1');
    t.match(await lab.must('node', 'conntrack', ['-L', '-p', 'udp', '--orig-port-src', '40000']), /10\.244\.1\.2/);
    put('echo', [service('echo', '10.96.0.53', [{ name: 'echo', port: 53, protocol: 'UDP', targetPort: 5353 }]),
      endpointSlice('echo', ['10.244.2.2'], [{ name: 'echo', port: 5353, protocol: 'UDP' }])]);
    // be1 still answers: without the flush the old entry would keep sending this client's packets to it.
    const t0 = Date.now();
    await waitFor('UDP answered by be2', async () => (await udp('10.96.0.53', 53, 40000)) === 'be2', 4000, 100);
    t.ok(Date.now() - t0 < 3000, `moved in ${Date.now() - t0} ms`);
  });

  await t.test('DNS through a kube-dns-like VIP with glibc getent, UDP and TCP', async (t) => {
    const dns = lab.spawn('be2', 'dnsmasq', ['-k', '-C', '/dev/null', '--no-resolv', '--no-hosts', '--bind-interfaces',
      '--listen-address=10.244.2.2', '-p', '53', '--pid-file=', '--user=root',
      '--address=/web.default.svc.cluster.local/10.96.0.10']);
    t.teardown(() => lab.kill(dns));
    await waitFor('dnsmasq', async () => (await lab.exec('node', 'dig', ['@10.244.2.2', '+short', '+time=1', 'web.default.svc.cluster.local'])).stdout.includes('10.96.0.10'), 5000, 100);
    for (const [proto, opts] of [['udp', ''], ['tcp', 'options use-vc\n']] as const) {
      const resolv = join(dir, `resolv-${proto}.conf`);
      writeFileSync(resolv, `nameserver 10.96.0.100\noptions timeout:2 attempts:1\n${opts}`);
      // A private mount namespace: the bind mount hides the host's resolv.conf from getent only.
      const out = await lab.must('client', 'unshare', ['--mount', 'sh', '-c',
        `mount --bind ${resolv} /etc/resolv.conf && getent ahostsv4 web.default.svc.cluster.local`]);
      t.match(out, /^10\.96\.0\.10\s/m, `getent over ${proto}`);
    }
  });

  await t.test('live endpoint change followed within 2 s; deleted service loses its chains', async (t) => {
    const webChain = await kernel.chainOf('10.96.0.10');
    put('web', [service('web', '10.96.0.10', [{ ...HTTP[0], nodePort: 30080 }], { type: 'NodePort', externalIPs: ['192.0.2.10'] }),
      endpointSlice('web', ['10.244.2.2'], HTTP_EP)]);
    const t0 = Date.now();
    await waitFor('one endpoint programmed', async () => (await kernel.endpointsIn(webChain)) === 1, 4000, 50);
    t.ok(Date.now() - t0 < 2000, `followed in ${Date.now() - t0} ms`);
    for (let i = 0; i < 6; i++) t.match((await curl('http://10.96.0.10/')).body, /^be2 /);

    const before = await kernel.serviceChains();
    const stickyChain = await kernel.chainOf('10.96.0.11');
    t.ok(before.includes(stickyChain));
    remove('sticky');
    // nftables deletes a flushed chain one transaction later (about a second).
    await waitFor('sticky chains gone', async () => !(await kernel.serviceChains()).includes(stickyChain), 5000);
    const after = await kernel.serviceChains();
    t.ok(after.length < before.length, `fewer service chains (${before.length} -> ${after.length})`);
    t.notOk(after.some((c) => c.includes('sticky')), 'none of the deleted service left');
    t.ok(await kernel.foreignIntact(), 'foreign rules intact');
  });

  await t.test('external removal is repaired within the sync period', async (t) => {
    await kernel.sabotage();
    await waitFor('rules back', async () => (await curl('http://10.96.0.10/', 1)).code === 0, 8000, 200);
    t.pass('served again');
  });

  await t.test('refuses to start without its tool or CAP_NET_ADMIN', async (t) => {
    const noCap = await lab.exec('node', 'setpriv', ['--bounding-set=-net_admin', process.execPath, CLI, 'vip', '--mode', mode, '--manifests', manifests, '--once']);
    t.equal(noCap.code, 1);
    t.match(noCap.stderr, /cannot start: missing CAP_NET_ADMIN/);
    const noTool = await lab.exec('node', 'env', ['PATH=/nonexistent', process.execPath, CLI, 'vip', '--mode', mode, '--manifests', manifests, '--once']);
    t.equal(noTool.code, 1);
    t.match(noTool.stderr, `cannot start: ${mode === 'iptables' ? 'iptables' : 'nft'} is not installed`);
  });

  await t.test('restart gives identical rules; --cleanup leaves nothing of ours', async (t) => {
    await waitFor('repair synced', async () => programmer.log.filter((l) => l.includes('IPv4 full sync')).length >= 2, 8000);
    const running = await kernel.dump();
    await lab.kill(programmer.child);
    t.equal(programmer.child.exitCode, 0, 'clean exit on SIGTERM');
    t.notMatch(programmer.log.join('\n'), /\[ERROR\]/, 'no errors logged');
    const once = await lab.exec('node', 'node', [CLI, ...args, '--once']);
    t.equal(once.code, 0, once.stderr);
    t.equal(await kernel.dump(), running, 'rules identical after a restart');
    if (mode === 'iptables') {
      t.equal((await lab.must('node', 'iptables', ['-t', 'nat', '-S', 'PREROUTING'])).split('\n').filter((l) => l.includes('KUBE-SERVICES')).length, 1);
    }

    const dry = await lab.exec('node', 'node', [CLI, ...args, '--dry-run']);
    t.equal(dry.code, 0);
    t.equal(await kernel.dump(), running, '--dry-run changes nothing');
    const check = await kernel.validates(dry.stdout);
    t.equal(check.code, 0, `dry-run output is valid input ${check.stderr}`);

    const clean = await lab.exec('node', 'node', [CLI, 'vip', '--mode', mode, '--cleanup']);
    t.equal(clean.code, 0, clean.stderr);
    t.ok(await kernel.nothingLeft(), 'nothing of ours left');
    t.ok(await kernel.foreignIntact(), 'foreign rules intact');
  });
}
