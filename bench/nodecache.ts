/**
 * `clusterdns nodecache` against the path it replaces, in scratch namespaces on this machine, same run:
 *
 *   pod 10.0.1.2 ── 10.0.1.1 node ── 10.244.1.1 ── dns 10.244.1.2 (clusterdns serve: the cluster DNS)
 *                     ├ clusterdns vip: kube-dns 10.96.0.10 and kube-dns-upstream 10.96.0.11 -> 10.244.1.2:53
 *                     └ clusterdns nodecache -localip 169.254.20.10 (deploy/nodelocaldns.yaml's Corefile)
 *
 * dnsperf in the pod asks the same cluster names through the local IP (cache hits) and through the
 * kube-dns VIP (DNAT to the cluster server, answering from memory), alternating; both servers on the
 * server core. Then latency and conntrack: N queries, each from a fresh socket as glibc sends them,
 * counting the node's conntrack entries, with the agent's rules, without them, and through the VIP.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { runCommand } from '../src/pkg/command.js';
import { alternate, dnsperf, median, medianQps, NODE_FLAGS, rcodeShares, Scope, SERVER_CORE, sleep, startPinned, table, CLIENT_CORE, type Proc } from './lib.js';

export interface NodecacheBenchOptions {
  /** Cluster Services asked for (A of `svc-N.default.svc.cluster.local`). */
  names: number;
  seconds: number;
  rounds: number;
  /** Fresh-socket queries per path for the latency and conntrack rows. */
  queries: number;
}

const CLI = new URL('../src/cli.js', import.meta.url).pathname;
const LOCAL_IP = '169.254.20.10';
const KUBE_DNS = '10.96.0.10';

/** N queries from fresh sockets (a new source port each), `conc` at a time; prints latencies in ms as JSON. */
const PROBE = `
import dgram from 'node:dgram';
const [server, namesFile, count, conc] = process.argv.slice(2);
const names = (await import('node:fs')).readFileSync(namesFile, 'utf8').split('\\n').filter(Boolean);
function query(name, id) {
  const labels = name.split('.');
  const q = Buffer.concat([Buffer.from([id >> 8, id & 255, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]),
    ...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])), Buffer.from([0, 0, 1, 0, 1])]);
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    const t0 = performance.now();
    const timer = setTimeout(() => { s.close(); resolve(-1); }, 1000);
    s.on('message', () => { clearTimeout(timer); s.close(); resolve(performance.now() - t0); });
    s.send(q, 53, server);
  });
}
const ms = [];
let next = 0;
await Promise.all(Array.from({ length: Number(conc) }, async () => {
  while (next < Number(count)) { const i = next++; ms.push(await query(names[i % names.length], i & 0xffff)); }
}));
console.log(JSON.stringify(ms));
`;

type Obj = Record<string, unknown>;
const DNS_PORTS = [{ name: 'dns', port: 53, protocol: 'UDP', targetPort: 53 }, { name: 'dns-tcp', port: 53, protocol: 'TCP', targetPort: 53 }];

function clusterObjects(names: number): Obj[] {
  const svc = (name: string, namespace: string, clusterIP: string, ports: Obj[]) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace }, spec: { clusterIP, ports } });
  const slice = (name: string) => ({
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', addressType: 'IPv4',
    metadata: { name: `${name}-1`, namespace: 'kube-system', labels: { 'kubernetes.io/service-name': name } },
    endpoints: [{ addresses: ['10.244.1.2'], conditions: { ready: true } }], ports: DNS_PORTS.map((p) => ({ name: p.name, port: 53, protocol: p.protocol })),
  });
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } },
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'kube-system' } },
    svc('kube-dns', 'kube-system', KUBE_DNS, DNS_PORTS), slice('kube-dns'),
    svc('kube-dns-upstream', 'kube-system', '10.96.0.11', DNS_PORTS), slice('kube-dns-upstream'),
    ...Array.from({ length: names }, (_, i) => svc(`svc-${i}`, 'default', `10.100.${i >> 8}.${i & 255}`, [{ name: 'http', port: 80, protocol: 'TCP' }])),
  ];
}

async function must(cmd: string, args: string[]): Promise<string> {
  const r = await runCommand(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr.trim()}`);
  return r.stdout;
}

export async function benchNodecache(o: NodecacheBenchOptions): Promise<string> {
  const scope = new Scope();
  const prefix = `ncbench${process.pid}`;
  const ns = (n: string) => `${prefix}-${n}`;
  const inNs = (n: string, cmd: string, args: string[]) => must('ip', ['netns', 'exec', ns(n), cmd, ...args]);
  try {
    const dir = scope.dir('nodecache');
    for (const n of ['pod', 'node', 'dns']) {
      await must('ip', ['netns', 'add', ns(n)]);
      scope.defer(async () => void await runCommand('ip', ['netns', 'del', ns(n)]));
      await must('ip', ['-n', ns(n), 'link', 'set', 'lo', 'up']);
    }
    await inNs('node', 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    const link = async (a: string, aIf: string, aAddr: string, b: string, bIf: string, bAddrs: string[]) => {
      await must('ip', ['-n', ns(a), 'link', 'add', aIf, 'type', 'veth', 'peer', 'name', bIf, 'netns', ns(b)]);
      await must('ip', ['-n', ns(a), 'addr', 'add', aAddr, 'dev', aIf]);
      for (const addr of bAddrs) await must('ip', ['-n', ns(b), 'addr', 'add', addr, 'dev', bIf]);
      await must('ip', ['-n', ns(a), 'link', 'set', aIf, 'up']);
      await must('ip', ['-n', ns(b), 'link', 'set', bIf, 'up']);
    };
    await link('node', 'eth0', '10.0.1.1/24', 'pod', 'eth0', ['10.0.1.2/24']);
    await link('node', 'dns0', '10.244.1.1/24', 'dns', 'eth0', ['10.244.1.2/24']);
    await must('ip', ['-n', ns('pod'), 'route', 'add', 'default', 'via', '10.0.1.1']);
    await must('ip', ['-n', ns('dns'), 'route', 'add', 'default', 'via', '10.244.1.1']);
    await must('ip', ['-n', ns('node'), 'route', 'add', 'default', 'via', '10.244.1.2']);

    const manifests = join(dir, 'manifests');
    await must('mkdir', [manifests]);
    writeFileSync(join(manifests, 'cluster.yaml'), clusterObjects(o.names).map((x) => JSON.stringify(x)).join('\n---\n'));
    writeFileSync(join(dir, 'Corefile.cluster'), `.:53 {\n    bind 10.244.1.2\n    kubernetes cluster.local in-addr.arpa ip6.arpa {\n        manifests ${manifests}\n    }\n}\n`);
    const nodeCorefile = parseAllDocuments(readFileSync(new URL('../../deploy/nodelocaldns.yaml', import.meta.url), 'utf8'))
      .map((d) => d.toJS() as { kind: string; data?: Record<string, string> }).find((d) => d.kind === 'ConfigMap')!.data!.Corefile!;
    writeFileSync(join(dir, 'Corefile.node'), nodeCorefile);
    writeFileSync(join(dir, 'node-resolv.conf'), 'nameserver 10.244.1.2\n');
    const names = Array.from({ length: o.names }, (_, i) => `svc-${i}.default.svc.cluster.local`);
    writeFileSync(join(dir, 'names'), names.join('\n') + '\n');
    writeFileSync(join(dir, 'queries'), names.map((n) => `${n} A`).join('\n') + '\n');
    writeFileSync(join(dir, 'probe.mjs'), PROBE);

    const inNsPinned = (name: string, n: string, args: string[], core: number) => startPinned(scope, name, 'ip', ['netns', 'exec', ns(n), ...args], core);
    inNsPinned('clusterdns serve', 'dns', [process.execPath, ...NODE_FLAGS, CLI, 'serve', '-conf', join(dir, 'Corefile.cluster')], SERVER_CORE);
    inNsPinned('clusterdns vip', 'node', [process.execPath, CLI, 'vip', '--manifests', manifests, '--hostname-override', 'node1'], CLIENT_CORE);
    const answers = async (server: string) => (await runCommand('ip', ['netns', 'exec', ns('pod'), 'dig', `@${server}`, '+short', '+time=1', '+tries=1', names[0]!])).stdout.trim() !== '';
    const waitAnswer = async (server: string, proc?: Proc) => {
      for (const deadline = Date.now() + 60_000; !(await answers(server));) {
        if (proc?.exited() || Date.now() > deadline) throw new Error(`no answer from ${server}${proc ? `: ${proc.stderr()}` : ''}`);
        await sleep(200);
      }
    };
    await waitAnswer(KUBE_DNS);

    const startCache = async (...extra: string[]) => {
      const p = inNsPinned('clusterdns nodecache', 'node', ['env', 'KUBE_DNS_UPSTREAM_SERVICE_HOST=10.96.0.11', process.execPath, ...NODE_FLAGS, CLI, 'nodecache',
        '-localip', LOCAL_IP, '-conf', join(dir, 'Corefile.node'), '-upstreamsvc', 'kube-dns-upstream', '-resolvconf', join(dir, 'node-resolv.conf'), ...extra], SERVER_CORE);
      await waitAnswer(LOCAL_IP, p);
      return p;
    };
    let cache = await startCache();
    const at = (server: string) => ({ server, netns: ns('pod') });
    // Fill the cache (and warm both servers) before timing.
    await dnsperf(53, join(dir, 'queries'), 2, [], at(LOCAL_IP));
    await dnsperf(53, join(dir, 'queries'), 2, [], at(KUBE_DNS));
    const paths = { local: LOCAL_IP, vip: KUBE_DNS } as const;
    const load = await alternate(o.rounds, ['local', 'vip'] as const, (k) => dnsperf(53, join(dir, 'queries'), o.seconds, [], at(paths[k])));

    /** Latency of `o.queries` sequential fresh-socket queries and the conntrack entries they left in the node. */
    const probe = async (server: string) => {
      const run = async (n: number) => JSON.parse(await inNs('pod', process.execPath, [join(dir, 'probe.mjs'), server, join(dir, 'names'), String(n), '1'])) as number[];
      // Unmeasured first: the probe's own start-up and the first answers' page faults are not the path's cost.
      await run(100);
      await inNs('node', 'conntrack', ['-F']).catch(() => '');
      const ms = await run(o.queries);
      const entries = Number((await runCommand('ip', ['netns', 'exec', ns('node'), 'conntrack', '-C'])).stdout.trim());
      const ok = ms.filter((x) => x >= 0).sort((a, b) => a - b);
      return { p50: ok[Math.floor(ok.length / 2)]!, p99: ok[Math.floor(ok.length * 0.99)]!, lost: ms.length - ok.length, entries };
    };
    const withRules = await probe(LOCAL_IP);
    const viaVip = await probe(KUBE_DNS);
    await cache.stop();
    cache = await startCache('-setupiptables=false');
    await dnsperf(53, join(dir, 'queries'), 1, [], at(LOCAL_IP));
    const noRules = await probe(LOCAL_IP);
    await cache.stop();

    const med = (k: 'local' | 'vip', f: (r: (typeof load)['local'][number]) => number) => median(load[k].map(f));
    const ratio = medianQps(load.local) / medianQps(load.vip);
    const f2 = (x: number) => x.toFixed(2);
    return [
      `nodecache: ${o.names} cluster names, dnsperf -c 4 in a pod namespace, ${o.rounds} x ${o.seconds} s alternating, medians`,
      table([
        ['path', 'QPS', 'avg latency ms (load)', 'rcodes'],
        [`local IP ${LOCAL_IP} (nodecache, cache hits)`, medianQps(load.local).toFixed(0), f2(med('local', (r) => r.avgLatencyMs)), rcodeShares(load.local.at(-1)!)],
        [`kube-dns VIP ${KUBE_DNS} -> clusterdns serve`, medianQps(load.vip).toFixed(0), f2(med('vip', (r) => r.avgLatencyMs)), rcodeShares(load.vip.at(-1)!)],
      ]),
      `local IP / VIP: ${ratio.toFixed(2)}x QPS`,
      '',
      `${o.queries} sequential queries, each from a fresh source port (as glibc sends them):`,
      table([
        ['path', 'p50 ms', 'p99 ms', 'lost', 'node conntrack entries after'],
        ['local IP, nodecache with its NOTRACK rules', f2(withRules.p50), f2(withRules.p99), withRules.lost, withRules.entries],
        ['local IP, -setupiptables=false', f2(noRules.p50), f2(noRules.p99), noRules.lost, noRules.entries],
        ['kube-dns VIP -> clusterdns serve', f2(viaVip.p50), f2(viaVip.p99), viaVip.lost, viaVip.entries],
      ]),
    ].join('\n');
  } finally {
    await scope.close();
  }
}
