import t from 'tap';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CommandResult } from '../src/pkg/command.js';
import { NodecacheAgent } from '../src/nodecache/agent.js';
import { IptablesRules, NftablesRules, type RuleBackend } from '../src/nodecache/apply.js';
import { parseNodecacheArgs } from '../src/nodecache/cli.js';
import { LocalInterface } from '../src/nodecache/link.js';
import { NodecacheMetrics } from '../src/nodecache/metrics.js';
import { fillPlaceholders, serviceHostVar } from '../src/nodecache/placeholders.js';
import { buildRules, iptablesArgs, nftComments, NFT_TABLE, ourSavedRules, renderIptablesInsert, renderNftables } from '../src/nodecache/rules.js';
import { loadPlugins } from '../src/plugins/registry.js';
import { closePlugins, loadConfig } from '../src/server/config.js';
import { createRegistry } from '../src/pkg/metrics.js';
import type { SharedServices } from '../src/server/types.js';
import { tempDir } from './helpers/temp-dir.js';

/** Fast tables for `clusterdns nodecache`: rules, placeholders, flags and the appliers against a fake runner. */

const SPEC = { localIPs: ['169.254.20.10'], dnsPort: 53, healthPort: 8080 };

/** A runner answering from a table of `cmd args` prefixes; records every call with its input. */
function fakeRun(answers: Record<string, Partial<CommandResult>>) {
  const calls: { cmd: string; input: string }[] = [];
  const run = async (cmd: string, args: string[], input?: string | Buffer | readonly Buffer[]): Promise<CommandResult> => {
    const line = [cmd, ...args].join(' ');
    calls.push({ cmd: line, input: typeof input === 'string' ? input : '' });
    const key = Object.keys(answers).find((k) => line.startsWith(k));
    return { code: 0, stdout: '', stderr: '', ...(key ? answers[key] : {}) };
  };
  return { run, calls };
}

t.test('rules: node-cache\'s list per local IP, each with its own comment naming clusterdns', async (t) => {
  const rules = buildRules(SPEC);
  t.equal(rules.length, 12);
  t.equal(new Set(rules.map((r) => r.comment)).size, 12, 'comments unique');
  t.ok(rules.every((r) => r.comment.startsWith('clusterdns nodecache: ')));
  const summary = rules.map((r) => `${r.table} ${r.chain} ${r.proto} ${r.side === 'dst' ? '-d' : '-s'} ${r.port} ${r.verdict}`);
  t.same(summary, [
    'raw PREROUTING tcp -d 53 NOTRACK', 'raw PREROUTING udp -d 53 NOTRACK',
    'filter INPUT tcp -d 53 ACCEPT', 'filter INPUT udp -d 53 ACCEPT',
    'raw OUTPUT tcp -s 53 NOTRACK', 'raw OUTPUT udp -s 53 NOTRACK',
    'filter OUTPUT tcp -s 53 ACCEPT', 'filter OUTPUT udp -s 53 ACCEPT',
    'raw OUTPUT tcp -d 53 NOTRACK', 'raw OUTPUT udp -d 53 NOTRACK',
    'raw OUTPUT tcp -d 8080 NOTRACK', 'raw OUTPUT tcp -s 8080 NOTRACK',
  ]);
  t.same(iptablesArgs(rules[0]!), ['-d', '169.254.20.10/32', '-p', 'tcp', '-m', 'tcp', '--dport', '53', '-m', 'comment', '--comment',
    'clusterdns nodecache: no conntrack tcp to 169.254.20.10:53 (raw PREROUTING)', '-j', 'NOTRACK']);
  const two = buildRules({ ...SPEC, localIPs: ['169.254.20.10', 'fd00::a'] });
  t.equal(two.length, 24);
  t.same([...new Set(two.map((r) => r.family))], [4, 6]);
  t.match(two.find((r) => r.family === 6)!.comment, /\[fd00::a\]:53/);
});

t.test('iptables restore input: prepends, last rule first, so the chain reads in list order', async (t) => {
  const text = renderIptablesInsert(buildRules(SPEC));
  const raw = text.slice(0, text.indexOf('COMMIT'));
  t.match(raw, /^\*raw\n-I OUTPUT 1 -s 169\.254\.20\.10\/32 -p tcp -m tcp --sport 8080 -m comment --comment "clusterdns nodecache: [^"]+" -j NOTRACK\n/);
  t.match(text, /\*filter\n-I OUTPUT 1 .*--sport 53 .*-j ACCEPT\n/);
  t.equal((text.match(/^-I /gm) ?? []).length, 12);
  t.notMatch(text, /^:/m, 'built-in chains are never declared (that would flush them)');
});

t.test('nftables: one inet table of our own, replaced whole in one transaction', async (t) => {
  const rules = buildRules({ ...SPEC, localIPs: ['169.254.20.10', 'fd00::a'] });
  const text = renderNftables(rules);
  t.match(text, /^add table inet clusterdns-nodecache\ndelete table inet clusterdns-nodecache\ntable inet clusterdns-nodecache \{\n/);
  t.match(text, /chain raw-prerouting \{\n\s+type filter hook prerouting priority raw; policy accept;\n\s+ip daddr 169\.254\.20\.10 tcp dport 53 notrack comment "clusterdns nodecache: /);
  t.match(text, /chain filter-input \{\n\s+type filter hook input priority filter;/);
  t.match(text, /ip6 saddr fd00::a udp sport 53 accept comment/);
  t.equal(nftComments(text).length, 24);
});

t.test('iptables applier: adds only what is missing, deletes duplicates and leftovers of other IPs', async (t) => {
  const rules = buildRules(SPEC);
  const line = (c: string) => `-A PREROUTING -d 169.254.20.10/32 -p tcp -m tcp --dport 53 -m comment --comment "${c}" -j NOTRACK`;
  const save = ['*raw', ':PREROUTING ACCEPT [0:0]', line(rules[0]!.comment), line(rules[0]!.comment),
    line('clusterdns nodecache: no conntrack tcp to 169.254.20.99:53 (raw PREROUTING)'), '-A PREROUTING -j FOREIGN', 'COMMIT'].join('\n');
  t.equal(ourSavedRules('raw', save).length, 3, 'foreign rule not ours');
  const { run, calls } = fakeRun({ 'iptables-save -t raw': { stdout: save } });
  const r = await new IptablesRules(run).ensure(rules);
  t.same(r, { present: 1, added: 11, removed: 2 });
  const restores = calls.filter((c) => c.cmd.startsWith('iptables-restore'));
  t.equal(restores.length, 2);
  t.match(restores[0]!.cmd, /-w 5 -W 100000 --noflush/);
  t.equal((restores[0]!.input.match(/^-D /gm) ?? []).length, 2, 'duplicate and stale rule deleted');
  t.equal((restores[1]!.input.match(/^-I /gm) ?? []).length, 11);
  t.notOk(calls.some((c) => c.cmd.startsWith('ip6tables')), 'no IPv6 rules wanted: ip6tables never needed');

  const all = ['*raw', ...rules.filter((x) => x.table === 'raw').map((x) => `-A ${x.chain} ${iptablesArgs(x).map((a) => (a.includes(' ') ? `"${a}"` : a)).join(' ')}`), 'COMMIT'].join('\n');
  const allFilter = ['*filter', ...rules.filter((x) => x.table === 'filter').map((x) => `-A ${x.chain} ${iptablesArgs(x).map((a) => (a.includes(' ') ? `"${a}"` : a)).join(' ')}`), 'COMMIT'].join('\n');
  const steady = fakeRun({ 'iptables-save -t raw': { stdout: all }, 'iptables-save -t filter': { stdout: allFilter } });
  t.same(await new IptablesRules(steady.run).ensure(rules), { present: 12, added: 0, removed: 0 });
  t.notOk(steady.calls.some((c) => c.cmd.includes('restore')), 'all in place: nothing written');

  const locked = fakeRun({ 'iptables-restore': { code: 4, stderr: 'Another app is currently holding the xtables lock. Stopped waiting after 5s.' } });
  await t.rejects(new IptablesRules(locked.run).ensure(rules), { name: 'Error', message: /xtables lock/ });
});

t.test('nftables applier: rewrites the table only when its rules differ', async (t) => {
  const rules = buildRules(SPEC);
  const steady = fakeRun({ 'nft list table': { stdout: renderNftables(rules) } });
  t.same(await new NftablesRules(steady.run).ensure(rules), { present: 12, added: 0, removed: 0 });
  t.equal(steady.calls.length, 1);
  const gone = fakeRun({ 'nft list table': { code: 1, stderr: 'Error: No such file or directory' } });
  t.same(await new NftablesRules(gone.run).ensure(rules), { present: 0, added: 12, removed: 0 });
  t.match(gone.calls[1]!, { cmd: 'nft -f -', input: /^add table inet clusterdns-nodecache\ndelete table/ });
  t.equal(NFT_TABLE, 'inet clusterdns-nodecache');
});

t.test('interface: dummy link when the kernel has the type, lo with a warning when not', async (t) => {
  const warnings: string[] = [];
  const log = { warn: (m: string) => void warnings.push(m) };
  const noDummy = fakeRun({
    'ip -j addr show dev nodelocaldns': { code: 1, stderr: 'Device "nodelocaldns" does not exist.' },
    'ip link add': { code: 2, stderr: 'Error: Unknown device type.' },
    'ip -j addr show dev lo': { stdout: '[{"addr_info":[{"local":"127.0.0.1"}]}]' },
  });
  const lo = new LocalInterface('nodelocaldns', ['169.254.20.10'], noDummy.run, log);
  t.same(await lo.ensure(), ['added 169.254.20.10 to lo']);
  t.equal(lo.device, 'lo');
  t.notOk(lo.created);
  t.match(warnings[0], /no dummy link type .*using lo/);
  await lo.remove();
  t.notOk(noDummy.calls.some((c) => c.cmd.startsWith('ip link del')), 'lo is never deleted');

  const dummy = fakeRun({ 'ip -j addr show dev nodelocaldns': { code: 1 } });
  const made = new LocalInterface('nodelocaldns', ['169.254.20.10', 'fd00::a'], dummy.run, log);
  await made.ensure();
  t.ok(made.created);
  t.ok(dummy.calls.some((c) => c.cmd === 'ip addr add fd00::a/128 dev nodelocaldns nodad'));
  await made.remove();
  t.equal(dummy.calls.at(-1)!.cmd, 'ip link del nodelocaldns', 'created by us: deleted with its addresses');
});

t.test('agent: failures are logged and counted, and the next pass repairs', async (t) => {
  const registry = createRegistry();
  const metrics = new NodecacheMetrics(registry);
  const errors: string[] = [];
  let fail = true;
  const backend: RuleBackend = {
    mode: 'iptables',
    ensure: async () => {
      if (fail) throw new Error('iptables-restore: boom');
      return { present: 10, added: 2, removed: 0 };
    },
    remove: async () => {},
  };
  const agent = new NodecacheAgent({
    link: null, backend, rules: buildRules(SPEC), syncIntervalMs: 1000, metrics,
    log: { info: () => {}, warn: () => {}, error: (m) => void errors.push(m) },
  });
  t.equal(await agent.setupRules(), false);
  t.match(errors[0], /iptables rules: iptables-restore: boom/);
  let text = await registry.metrics();
  t.match(text, /coredns_nodecache_setup_errors_total\{errortype="iptables"\} 1/);
  t.match(text, /clusterdns_nodecache_last_setup_error_timestamp_seconds [1-9]/);
  t.match(text, /clusterdns_nodecache_rules\{mode="iptables"\} 0/);
  fail = false;
  await agent.sync();
  text = await registry.metrics();
  t.match(text, /clusterdns_nodecache_rules\{mode="iptables"\} 12/);
  t.match(text, /clusterdns_nodecache_rules_added_total\{mode="iptables"\} 2/);
});

t.test('flags: node-cache\'s names and Go flag semantics', async (t) => {
  const o = parseNodecacheArgs(['-localip', '169.254.20.10,10.96.0.10', '-conf', '/etc/Corefile', '-upstreamsvc', 'kube-dns-upstream',
    '-setupinterface=false', '--skipteardown', '-syncinterval', '2s', '-mode=nftables', '-health-port', '8081', '-pidfile', '/tmp/p']);
  t.same(o.localIPs, ['169.254.20.10', '10.96.0.10']);
  t.match(o, { conf: '/etc/Corefile', upstreamSvc: 'kube-dns-upstream', setupInterface: false, setupIptables: true, skipTeardown: true,
    syncIntervalMs: 2000, mode: 'nftables', healthPort: 8081, pidfile: '/tmp/p', interfaceName: 'nodelocaldns', dnsPort: 53 });
  t.equal(parseNodecacheArgs(['-localip=169.254.20.10', '-syncinterval', '60']).syncIntervalMs, 60_000, 'bare number: seconds');
  for (const [args, msg] of [
    [[], /-localip is required/],
    [['-localip', '169.254.20'], /invalid localip/],
    [['-localip', '169.254.20.10', '-unknown', 'x'], /flag provided but not defined: -unknown/],
    [['-localip', '169.254.20.10', '-mode', 'ipvs'], /-mode: 'ipvs' is not supported/],
    [['-localip', '169.254.20.10', '-setupiptables=maybe'], /invalid boolean value/],
    [['-localip', '169.254.20.10', '-syncinterval', 'soon'], /invalid value 'soon'/],
    [['-localip', '169.254.20.10', '-interfacename', 'a-name-far-too-long'], /at most 15/],
    [['-localip', '169.254.20.10', '-conf'], /flag needs an argument: -conf/],
  ] as const) t.throws(() => parseNodecacheArgs(args), { message: msg }, args.join(' '));
});

/** The Corefile of Kubernetes' nodelocaldns.yaml, as the admin's sed leaves it (domain, local IPs filled). */
export const UPSTREAM_COREFILE = `cluster.local:53 {
    errors
    cache {
            success 9984 30
            denial 9984 5
    }
    reload
    loop
    bind 169.254.20.10 10.96.0.10
    forward . __PILLAR__CLUSTER__DNS__ {
            force_tcp
    }
    prometheus :9253
    health 169.254.20.10:8080
    }
in-addr.arpa:53 {
    errors
    cache 30
    reload
    loop
    bind 169.254.20.10 10.96.0.10
    forward . __PILLAR__CLUSTER__DNS__ {
            force_tcp
    }
    prometheus :9253
    }
ip6.arpa:53 {
    errors
    cache 30
    reload
    loop
    bind 169.254.20.10 10.96.0.10
    forward . __PILLAR__CLUSTER__DNS__ {
            force_tcp
    }
    prometheus :9253
    }
.:53 {
    errors
    cache 30
    reload
    loop
    bind 169.254.20.10 10.96.0.10
    forward . __PILLAR__UPSTREAM__SERVERS__
    prometheus :9253
    }
`;

t.test('placeholders: node-cache\'s four, and the upstream Corefile sets up unchanged', async (t) => {
  t.equal(serviceHostVar('kube-dns-upstream'), 'KUBE_DNS_UPSTREAM_SERVICE_HOST');
  const v = { localIPs: ['169.254.20.10', '10.96.0.10'], clusterDNS: '10.96.0.11', clusterDNSVar: 'KUBE_DNS_UPSTREAM_SERVICE_HOST', upstreamServers: '/etc/resolv.conf' };
  t.equal(fillPlaceholders('bind __PILLAR__LOCAL__DNS__ __PILLAR__DNS__SERVER__\nhealth __PILLAR__LOCAL__DNS__:8080\nforward . __PILLAR__CLUSTER__DNS__\nforward . __PILLAR__UPSTREAM__SERVERS__', v),
    'bind 169.254.20.10 10.96.0.10 \nhealth 169.254.20.10:8080\nforward . 10.96.0.11\nforward . /etc/resolv.conf');
  t.equal(fillPlaceholders('health __PILLAR__LOCAL__DNS__:8080', { ...v, localIPs: ['fd00::a'] }), 'health [fd00::a]:8080');
  t.throws(() => fillPlaceholders('forward . __PILLAR__CLUSTER__DNS__', { ...v, clusterDNS: undefined }), { message: /KUBE_DNS_UPSTREAM_SERVICE_HOST is not set/ });
  t.equal(fillPlaceholders('forward . 10.0.0.1', { ...v, clusterDNS: undefined }), 'forward . 10.0.0.1', 'no placeholder, no variable needed');

  const dir = tempDir('nodecache');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'Corefile');
  writeFileSync(file, UPSTREAM_COREFILE);
  writeFileSync(join(dir, 'resolv.conf'), 'nameserver 192.0.2.53\n');
  const routes: { address: string; path: string }[] = [];
  const shared: SharedServices = {
    http: { route: (address, path) => void routes.push({ address, path }) }, registry: createRegistry(),
    readiness: () => [], shuttingDown: () => false, setLameduck: () => {}, requestReload: () => {},
    resolve: () => Promise.reject(new Error('no queries in this test')),
  };
  const config = await loadConfig({ file, text: fillPlaceholders(UPSTREAM_COREFILE, { ...v, upstreamServers: join(dir, 'resolv.conf') }), plugins: await loadPlugins(), shared });
  t.teardown(() => closePlugins(config.blocks));
  t.equal(config.blocks.length, 4);
  t.same(config.ports.map((p) => [p.port, p.bind]), [[53, ['169.254.20.10', '10.96.0.10']]], 'bind with two IPs');
  t.ok(routes.some((r) => r.address === '169.254.20.10:8080' && r.path === '/health'), 'health on the local IP');
  t.ok(routes.some((r) => r.address === ':9253' && r.path === '/metrics'), 'prometheus');
  const names = config.blocks[0]!.plugins.map((p) => p.name);
  for (const n of ['errors', 'cache', 'reload', 'loop', 'bind', 'forward', 'prometheus', 'health']) t.ok(names.includes(n), n);
  const plugin = (block: number, name: string) => config.blocks[block]!.plugins.find((p) => p.name === name) as unknown as Record<string, any>;
  t.match(JSON.stringify(plugin(0, 'forward').config), /"forceTcp":true/, 'force_tcp to the cluster DNS');
  t.match(JSON.stringify(plugin(3, 'forward').config), /192\.0\.2\.53/, 'the resolv.conf upstream');
  t.match(plugin(0, 'cache').config, { successCap: 9984, successMaxTtl: 30, denialCap: 9984, denialMaxTtl: 5 }, 'cache success/denial');
});

t.test('deploy/nodelocaldns.yaml: DaemonSet args accepted, Corefile sets up, host network, NET_ADMIN, kube-dns-upstream', async (t) => {
  const { parseAllDocuments } = await import('yaml');
  const { readFileSync } = await import('node:fs');
  type Doc = { kind: string; metadata: { name: string }; [k: string]: any };
  const docs = parseAllDocuments(readFileSync('deploy/nodelocaldns.yaml', 'utf8')).map((d) => d.toJS() as Doc);
  const find = (kind: string, name: string) => docs.find((d) => d.kind === kind && d.metadata.name === name)!;
  const pod = find('DaemonSet', 'node-local-dns').spec.template.spec;
  const c = pod.containers[0];
  t.equal(pod.hostNetwork, true);
  t.equal(pod.priorityClassName, 'system-node-critical');
  t.equal(pod.dnsPolicy, 'Default', 'the node\'s resolv.conf is the upstream');
  t.same(c.securityContext.capabilities.drop, ['ALL']);
  t.ok(c.securityContext.capabilities.add.includes('NET_ADMIN'));
  t.notOk(c.securityContext.privileged, 'not privileged');
  const o = parseNodecacheArgs(c.args);
  t.same(o.localIPs, ['169.254.20.10', '10.96.0.10']);
  t.equal(o.upstreamSvc, 'kube-dns-upstream');
  t.ok(find('Service', 'kube-dns-upstream').spec.ports.some((p: { port: number; protocol: string }) => p.port === 53 && p.protocol === 'TCP'));
  t.equal(c.livenessProbe.httpGet.host, '169.254.20.10');
  const mount = c.volumeMounts.find((m: { name: string }) => m.name === 'config-volume').mountPath;
  t.equal(`${mount}/Corefile`, o.conf, '-conf is the mounted ConfigMap key');

  const text = fillPlaceholders(find('ConfigMap', 'node-local-dns').data.Corefile, {
    localIPs: o.localIPs, clusterDNS: '10.96.0.11', clusterDNSVar: serviceHostVar(o.upstreamSvc), upstreamServers: '/etc/resolv.conf',
  });
  t.notMatch(text, /__PILLAR__/, 'every placeholder filled');
  const routes: { address: string; path: string }[] = [];
  const shared: SharedServices = {
    http: { route: (address, path) => void routes.push({ address, path }) }, registry: createRegistry(),
    readiness: () => [], shuttingDown: () => false, setLameduck: () => {}, requestReload: () => {},
    resolve: () => Promise.reject(new Error('no queries in this test')),
  };
  const config = await loadConfig({ file: o.conf, text, plugins: await loadPlugins(), shared });
  t.teardown(() => closePlugins(config.blocks));
  t.same(config.ports.map((p) => [p.port, p.bind]), [[53, ['169.254.20.10', '10.96.0.10']]]);
  t.ok(routes.some((r) => r.address === `169.254.20.10:${c.livenessProbe.httpGet.port}` && r.path === c.livenessProbe.httpGet.path), 'probe hits health');
  t.ok(routes.some((r) => r.address === `:${c.ports.find((p: { name: string }) => p.name === 'metrics').containerPort}`), 'metrics port');
});
