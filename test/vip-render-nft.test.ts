import t from 'tap';
import type { EndpointSlice, Service } from '../src/cluster/types.js';
import { nftEndpointBase, nftServiceBase } from '../src/vip/hash.js';
import { buildModel, type FamilyModel } from '../src/vip/model.js';
import { NftablesBackend } from '../src/vip/apply-nftables.js';
import type { Run } from '../src/pkg/command.js';
import { renderNftables, type NftRenderOptions } from '../src/vip/render-nftables.js';
import { ep, slice, svc } from './helpers/vip-objects.js';

const opts: NftRenderOptions = { clusterCIDRs: ['10.244.0.0/16'], masqueradeAll: false, nodeIPs: [] };
const model = (services: Service[], slices: EndpointSlice[], prev?: FamilyModel, changed?: Set<string>): FamilyModel =>
  buildModel({ services, slices }, { family: 4, nodeName: 'node1' }, prev && changed ? { prev, changed } : undefined);

t.test('names equal kube-proxy\'s nftables names', async (t) => {
  t.equal(nftServiceBase('ns1/svc1:p80', 'tcp'), 'ULMVA6XW-ns1/svc1/tcp/p80');
  t.equal(nftEndpointBase('ns1/svc1:p80', 'tcp', '10.180.0.1', 80), '5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80');
  t.match(nftEndpointBase('ns1/svc1:p80', 'tcp', 'fd00::1', 80), /__fd00\.\.1\/80$/, 'IPv6 colons are not allowed in names');
});

const web = svc('web', { type: 'NodePort', externalIPs: ['192.0.2.10'], ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080, nodePort: 30080 }] });
const webSlice = slice('web', [ep('10.244.1.2'), ep('10.244.2.2')]);
const sticky = svc('sticky', { clusterIPs: ['10.96.0.11'], sessionAffinity: 'ClientIP', sessionAffinityTimeout: 600 });
const stickySlice = slice('sticky', [ep('10.244.1.2')]);
const empty = svc('empty', { clusterIPs: ['10.96.0.12'] });
const lb = svc('lb', {
  type: 'LoadBalancer', clusterIPs: ['10.96.0.20'], loadBalancerIPs: ['192.0.2.20'], loadBalancerSourceRanges: ['10.0.1.0/24'],
  externalTrafficPolicy: 'Local', ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080, nodePort: 30081 }],
});
const lbSlice = slice('lb', [ep('10.244.1.2', { nodeName: 'node1' }), ep('10.244.2.2')]);

/** Per-service part of the golden first transaction (base chains and maps are checked separately). */
const GOLDEN = `add chain ip clusterdns external-D2RGPZ6L-default/lb/tcp/http
add chain ip clusterdns external-SUSTUHLJ-default/web/tcp/http
add chain ip clusterdns firewall-D2RGPZ6L-default/lb/tcp/http
add chain ip clusterdns local-D2RGPZ6L-default/lb/tcp/http
add chain ip clusterdns service-D2RGPZ6L-default/lb/tcp/http
add chain ip clusterdns service-H6U4RGLG-default/sticky/tcp/http
add chain ip clusterdns service-SUSTUHLJ-default/web/tcp/http
add set ip clusterdns affinity-ZIATHYQC-default/sticky/tcp/http__10.244.1.2/8080 { type ipv4_addr ; flags dynamic,timeout ; timeout 600s ; }
`;

t.test('golden first transaction for seed-like services', async (t) => {
  const r = renderNftables(model([web, sticky, empty, lb], [webSlice, stickySlice, lbSlice]), opts, null);
  t.equal(r.kind, 'fresh');
  const lines = r.text.split('\n');
  t.same(lines.slice(0, 3), ['add table ip clusterdns', 'delete table ip clusterdns', 'add table ip clusterdns { comment "clusterdns vip: Service virtual IPs" ; }'],
    'the table is rebuilt in the same transaction');
  t.match(r.text, GOLDEN);
  const rules = (chain: string) => lines.filter((l) => l.startsWith(`add rule ip clusterdns ${chain} `)).map((l) => l.slice(`add rule ip clusterdns ${chain} `.length));
  t.same(rules('service-SUSTUHLJ-default/web/tcp/http'), [
    'ip daddr 10.96.0.10 ip saddr != 10.244.0.0/16 jump mark-for-masquerade',
    'numgen random mod 2 == 0 meta l4proto tcp dnat to 10.244.1.2:8080',
    'meta l4proto tcp dnat to 10.244.2.2:8080',
  ]);
  t.same(rules('external-SUSTUHLJ-default/web/tcp/http'), ['jump mark-for-masquerade', 'goto service-SUSTUHLJ-default/web/tcp/http']);
  const aff = 'affinity-ZIATHYQC-default/sticky/tcp/http__10.244.1.2/8080';
  t.same(rules('service-H6U4RGLG-default/sticky/tcp/http'), [
    'ip daddr 10.96.0.11 ip saddr != 10.244.0.0/16 jump mark-for-masquerade',
    `ip saddr @${aff} update @${aff} { ip saddr } meta l4proto tcp dnat to 10.244.1.2:8080`,
    `update @${aff} { ip saddr } meta l4proto tcp dnat to 10.244.1.2:8080`,
  ]);
  t.same(rules('external-D2RGPZ6L-default/lb/tcp/http'), [
    'ip saddr 10.244.0.0/16 goto service-D2RGPZ6L-default/lb/tcp/http comment "short-circuit pod traffic"',
    'fib saddr type local jump mark-for-masquerade comment "masquerade local traffic"',
    'fib saddr type local goto service-D2RGPZ6L-default/lb/tcp/http comment "short-circuit local traffic"',
    'goto local-D2RGPZ6L-default/lb/tcp/http',
  ]);
  t.same(rules('local-D2RGPZ6L-default/lb/tcp/http'), ['meta l4proto tcp dnat to 10.244.1.2:8080'], 'Local policy: this node\'s endpoint only');
  t.same(rules('firewall-D2RGPZ6L-default/lb/tcp/http'), ['ip saddr != { 10.0.1.0/24 } drop']);
  const el = (map: string) => lines.find((l) => l.startsWith(`add element ip clusterdns ${map} `));
  t.equal(el('cluster-ips'), 'add element ip clusterdns cluster-ips { 10.96.0.10, 10.96.0.11, 10.96.0.12, 10.96.0.20 }');
  t.equal(el('service-ips'), 'add element ip clusterdns service-ips { 10.96.0.10 . tcp . 80 : goto service-SUSTUHLJ-default/web/tcp/http, '
    + '10.96.0.11 . tcp . 80 : goto service-H6U4RGLG-default/sticky/tcp/http, 10.96.0.20 . tcp . 80 : goto service-D2RGPZ6L-default/lb/tcp/http, '
    + '192.0.2.10 . tcp . 80 : goto external-SUSTUHLJ-default/web/tcp/http, 192.0.2.20 . tcp . 80 : goto external-D2RGPZ6L-default/lb/tcp/http }');
  t.equal(el('service-nodeports'), 'add element ip clusterdns service-nodeports { tcp . 30080 : goto external-SUSTUHLJ-default/web/tcp/http, tcp . 30081 : goto external-D2RGPZ6L-default/lb/tcp/http }');
  t.equal(el('no-endpoint-services'), 'add element ip clusterdns no-endpoint-services { 10.96.0.12 . tcp . 80 : goto reject-chain }');
  t.equal(el('firewall-ips'), 'add element ip clusterdns firewall-ips { 192.0.2.20 . tcp . 80 : goto firewall-D2RGPZ6L-default/lb/tcp/http }');
  t.equal(el('hairpin-endpoints'), 'add element ip clusterdns hairpin-endpoints { 10.244.1.2 . 10.244.1.2, 10.244.2.2 . 10.244.2.2 }');
  t.match(r.text, 'add rule ip clusterdns services fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports');
  t.equal(renderNftables(model([web, sticky, empty, lb], [webSlice, stickySlice, lbSlice]), opts, null).text, r.text, 'deterministic');
  const withNodeIP = renderNftables(model([web], [webSlice]), { ...opts, nodeIPs: ['10.0.1.1'] }, null).text;
  t.match(withNodeIP, 'add rule ip clusterdns services ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports');
  t.match(withNodeIP, 'add element ip clusterdns nodeport-ips { 10.0.1.1 }');
});

t.test('one endpoint change: a transaction touching only that service', async (t) => {
  const services = [web, sticky, empty, lb];
  const first = model(services, [webSlice, stickySlice, lbSlice]);
  const r1 = renderNftables(first, opts, null);
  const moved = slice('web', [ep('10.244.2.2'), ep('10.244.3.2')]);
  const second = model(services, [moved, stickySlice, lbSlice], first, new Set(['default/web']));
  const r2 = renderNftables(second, opts, r1.commit());
  t.equal(r2.kind, 'partial');
  t.equal(r2.text, `add table ip clusterdns { comment "clusterdns vip: Service virtual IPs" ; }
add chain ip clusterdns service-SUSTUHLJ-default/web/tcp/http
flush chain ip clusterdns service-SUSTUHLJ-default/web/tcp/http
add rule ip clusterdns service-SUSTUHLJ-default/web/tcp/http ip daddr 10.96.0.10 ip saddr != 10.244.0.0/16 jump mark-for-masquerade
add rule ip clusterdns service-SUSTUHLJ-default/web/tcp/http numgen random mod 2 == 0 meta l4proto tcp dnat to 10.244.2.2:8080
add rule ip clusterdns service-SUSTUHLJ-default/web/tcp/http meta l4proto tcp dnat to 10.244.3.2:8080
add element ip clusterdns hairpin-endpoints { 10.244.3.2 . 10.244.3.2 }
`);
  // 10.244.1.2 stays an endpoint of sticky and lb: its hairpin element stays too.
  t.notMatch(r2.text, /flush table|delete table|add map|add rule ip clusterdns services /, 'no table rebuild');
  t.equal(r2.writtenChains, 1);
  t.equal(r2.rules, r1.rules);
  const again = renderNftables(second, opts, r2.commit());
  t.equal(again.text, 'add table ip clusterdns { comment "clusterdns vip: Service virtual IPs" ; }\n', 'nothing changed: an empty transaction');
});

t.test('deleted service: elements deleted and chains flushed now, chains and sets deleted by the next transaction', async (t) => {
  const first = model([web, sticky], [webSlice, stickySlice]);
  const r1 = renderNftables(first, opts, null);
  const second = model([web], [webSlice], first, new Set(['default/sticky']));
  const r2 = renderNftables(second, opts, r1.commit());
  t.match(r2.text, 'delete element ip clusterdns cluster-ips { 10.96.0.11 }');
  t.match(r2.text, 'delete element ip clusterdns service-ips { 10.96.0.11 . tcp . 80 }');
  t.match(r2.text, 'flush chain ip clusterdns service-H6U4RGLG-default/sticky/tcp/http');
  t.notMatch(r2.text, /delete (chain|set)/);
  t.equal(r2.deleted, 0);
  const r3 = renderNftables(second, opts, r2.commit());
  t.match(r3.text, 'delete chain ip clusterdns service-H6U4RGLG-default/sticky/tcp/http');
  t.match(r3.text, 'delete set ip clusterdns affinity-ZIATHYQC-default/sticky/tcp/http__10.244.1.2/8080');
  t.equal(r3.deleted, 2);
  t.equal(renderNftables(second, opts, r3.commit()).deleted, 0, 'deleted once');
});

t.test('service losing its endpoints moves from service-ips to the reject map', async (t) => {
  const first = model([web], [webSlice]);
  const r1 = renderNftables(first, opts, null);
  const r2 = renderNftables(model([web], [slice('web', [])], first, new Set(['default/web'])), opts, r1.commit());
  t.match(r2.text, 'delete element ip clusterdns service-ips { 10.96.0.10 . tcp . 80, 192.0.2.10 . tcp . 80 }');
  t.match(r2.text, 'add element ip clusterdns no-endpoint-services { 10.96.0.10 . tcp . 80 : goto reject-chain, 192.0.2.10 . tcp . 80 : goto reject-chain }');
  t.match(r2.text, 'add element ip clusterdns no-endpoint-nodeports { tcp . 30080 : goto reject-chain }');
});

t.test('full resync keeps the table and affinity sets but rewrites every rule and element', async (t) => {
  const first = model([sticky], [stickySlice]);
  const r1 = renderNftables(first, opts, null);
  const r2 = renderNftables(first, opts, r1.commit(), true);
  t.equal(r2.kind, 'full');
  t.notMatch(r2.text, 'delete table');
  t.match(r2.text, 'flush table ip clusterdns\n');
  t.match(r2.text, 'flush map ip clusterdns service-ips\n');
  t.notMatch(r2.text, /flush set ip clusterdns affinity-/, 'sticky clients keep their endpoint');
  t.match(r2.text, 'add element ip clusterdns service-ips { 10.96.0.11 . tcp . 80 : goto service-H6U4RGLG-default/sticky/tcp/http }');
});

t.test('a transaction that failed leaves the state it was rendered from as it was', async (t) => {
  const services = [web, sticky, empty, lb];
  const first = model(services, [webSlice, stickySlice, lbSlice]);
  const s1 = renderNftables(first, opts, null).commit();
  // Rendered, never committed: the kernel refused it.
  const failed = renderNftables(model(services, [slice('web', [ep('10.244.3.2')]), stickySlice, lbSlice], first, new Set(['default/web'])), opts, s1);
  t.match(failed.text, 'add element ip clusterdns hairpin-endpoints { 10.244.3.2 . 10.244.3.2 }');
  const next = model(services, [slice('web', [ep('10.244.4.2')]), stickySlice, lbSlice], first, new Set(['default/web']));
  const retry = renderNftables(next, opts, s1);
  t.equal(retry.kind, 'partial');
  const fromScratch = renderNftables(next, opts, renderNftables(first, opts, null).commit());
  t.equal(retry.text, fromScratch.text, 'the same transaction as from a state that never saw the failed one');
  t.notMatch(retry.text, 'delete element', 'the old endpoints stay endpoints of sticky and lb');
  t.match(retry.text, 'add element ip clusterdns hairpin-endpoints { 10.244.4.2 . 10.244.4.2 }');
  t.notMatch(retry.text, '10.244.3.2', 'nothing of the failed transaction');
  const s2 = retry.commit();
  t.throws(() => failed.commit(), /committed already/, 'a sibling of a committed result cannot be committed');
  t.throws(() => renderNftables(next, opts, s1), /not the newest committed/, 'nor can a retired state be rendered from');
  t.equal(renderNftables(next, opts, s2).text, 'add table ip clusterdns { comment "clusterdns vip: Service virtual IPs" ; }\n');
});

t.test('backend: after a failed transaction a partial sync is still right', async (t) => {
  const sent: string[] = [];
  let fail = false;
  const run: Run = async (_cmd, _args, input) => {
    sent.push(String(input));
    return fail ? { code: 1, stdout: '', stderr: '/dev/stdin:2:1-10: Error: Could not process rule: No such file or directory\n' } : { code: 0, stdout: '', stderr: '' };
  };
  const backend = new NftablesBackend(4, opts, run);
  const services = [web, sticky];
  const first = model(services, [webSlice, stickySlice]);
  t.equal((await backend.sync(first, null)).kind, 'full');
  fail = true;
  const moved = model(services, [slice('web', [ep('10.244.3.2')]), stickySlice], first, new Set(['default/web']));
  await t.rejects(backend.sync(moved, new Set(['default/web'])), /nft -f \(ip clusterdns\) failed at line 2/);
  t.ok(backend.synced, 'the state is still the kernel\'s: no full sync needed');
  fail = false;
  const again = model(services, [slice('web', [ep('10.244.4.2')]), stickySlice], first, new Set(['default/web']));
  t.equal((await backend.sync(again, new Set(['default/web']))).kind, 'partial');
  const text = sent.at(-1)!;
  t.match(text, 'delete element ip clusterdns hairpin-endpoints { 10.244.2.2 . 10.244.2.2 }\n', '10.244.1.2 stays: sticky uses it');
  t.notMatch(text, '10.244.3.2');
  t.match(text, 'add rule ip clusterdns service-SUSTUHLJ-default/web/tcp/http meta l4proto tcp dnat to 10.244.4.2:8080');
});

t.test('IPv6: ip6 table, bracketed DNAT targets', async (t) => {
  const v6 = svc('web6', { clusterIPs: ['fd00:96::10'] });
  const s6: EndpointSlice = { ...slice('web6', [ep('fd00:244::2')]), addressType: 'IPv6' };
  const r = renderNftables(buildModel({ services: [v6], slices: [s6] }, { family: 6, nodeName: 'n' }), { ...opts, clusterCIDRs: ['fd00:244::/64'] }, null);
  t.match(r.text, 'add table ip6 clusterdns');
  t.match(r.text, 'meta l4proto tcp dnat to [fd00:244::2]:8080');
  t.match(r.text, 'ip6 daddr fd00:96::10 ip6 saddr != fd00:244::/64 jump mark-for-masquerade');
  t.match(r.text, 'fib daddr type local ip6 daddr != ::1');
});
