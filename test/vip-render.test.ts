import t from 'tap';
import type { Endpoint, EndpointSlice, Service } from '../src/cluster/types.js';
import { chainHash, endpointChain, serviceChain } from '../src/vip/hash.js';
import { buildModel, type Family } from '../src/vip/model.js';
import { JUMPS, renderIptables, type RenderOptions, type RenderResult } from '../src/vip/render-iptables.js';
import { conntrackCleanup } from '../src/vip/conntrack.js';
import type { CommandResult } from '../src/pkg/command.js';
import { IptablesApplier, RestoreError } from '../src/vip/apply.js';
import { durationFlag, parseVipArgs } from '../src/vip/cli.js';
import { ep, slice, svc } from './helpers/vip-objects.js';




const base: RenderOptions = { clusterCIDRs: ['10.244.0.0/16'], masqueradeAll: false, nodeIPs: [], changed: null, existingChains: [] };

function render(services: Service[], slices: EndpointSlice[], o: Partial<RenderOptions> = {}, family: Family = 4, nodeName = 'node1') {
  return renderIptables(buildModel({ services, slices }, { family, nodeName }), { ...base, ...o });
}

/** Every per-service chain a render says its rules use. */
function used(r: RenderResult): string[] {
  return [...r.state.chains.values()].flat().sort();
}

/** The nat rules of one chain, in order. */
function chain(text: string, name: string): string[] {
  return text.split('\n').filter((l) => l.startsWith(`-A ${name} `));
}

t.test('chain names equal kube-proxy\'s', async (t) => {
  t.equal(serviceChain('SVC', 'ns1/svc1:p80', 'tcp'), 'KUBE-SVC-XPGD46QRK7WJZT7O');
  t.equal(endpointChain('ns1/svc1:p80', 'tcp', '10.180.0.1:80'), 'KUBE-SEP-SXIVWICOYRO3J4NJ');
  t.equal(serviceChain('SVC', 'default/web:http', 'tcp'), 'KUBE-SVC-CDGGSHYLG3RE2FKL');
  t.equal(chainHash('x').length, 16);
  t.ok(serviceChain('EXT', 'a/b', 'sctp').length <= 28, 'iptables accepts at most 28 characters');
});

const WEB_GOLDEN = `*filter
:KUBE-SERVICES - [0:0]
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-FORWARD - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
COMMIT
*nat
:KUBE-SERVICES - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-SVC-CDGGSHYLG3RE2FKL - [0:0]
:KUBE-SEP-UIQK3OSOSTRHRPBX - [0:0]
:KUBE-SEP-4EX2N4PG4ASNZOBF - [0:0]
:KUBE-EXT-CDGGSHYLG3RE2FKL - [0:0]
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
-A KUBE-SERVICES -m comment --comment "default/web:http cluster IP" -m tcp -p tcp -d 10.96.0.10 --dport 80 -j KUBE-SVC-CDGGSHYLG3RE2FKL
-A KUBE-NODEPORTS -m comment --comment default/web:http -m tcp -p tcp --dport 30080 -j KUBE-EXT-CDGGSHYLG3RE2FKL
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -j KUBE-NODEPORTS
-A KUBE-SVC-CDGGSHYLG3RE2FKL -m comment --comment "default/web:http cluster IP" -m tcp -p tcp -d 10.96.0.10 --dport 80 ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ
-A KUBE-EXT-CDGGSHYLG3RE2FKL -m comment --comment "masquerade traffic for default/web:http external destinations" -j KUBE-MARK-MASQ
-A KUBE-EXT-CDGGSHYLG3RE2FKL -j KUBE-SVC-CDGGSHYLG3RE2FKL
-A KUBE-SVC-CDGGSHYLG3RE2FKL -m comment --comment "default/web:http -> 10.244.1.2:8080" -m recent --name KUBE-SEP-UIQK3OSOSTRHRPBX --rcheck --seconds 10800 --reap -j KUBE-SEP-UIQK3OSOSTRHRPBX
-A KUBE-SVC-CDGGSHYLG3RE2FKL -m comment --comment "default/web:http -> 10.244.2.2:8080" -m recent --name KUBE-SEP-4EX2N4PG4ASNZOBF --rcheck --seconds 10800 --reap -j KUBE-SEP-4EX2N4PG4ASNZOBF
-A KUBE-SVC-CDGGSHYLG3RE2FKL -m comment --comment "default/web:http -> 10.244.1.2:8080" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-UIQK3OSOSTRHRPBX
-A KUBE-SVC-CDGGSHYLG3RE2FKL -m comment --comment "default/web:http -> 10.244.2.2:8080" -j KUBE-SEP-4EX2N4PG4ASNZOBF
-A KUBE-SEP-UIQK3OSOSTRHRPBX -m comment --comment default/web:http -s 10.244.1.2 -j KUBE-MARK-MASQ
-A KUBE-SEP-UIQK3OSOSTRHRPBX -m comment --comment default/web:http -m recent --name KUBE-SEP-UIQK3OSOSTRHRPBX --set -m tcp -p tcp -j DNAT --to-destination 10.244.1.2:8080
-A KUBE-SEP-4EX2N4PG4ASNZOBF -m comment --comment default/web:http -s 10.244.2.2 -j KUBE-MARK-MASQ
-A KUBE-SEP-4EX2N4PG4ASNZOBF -m comment --comment default/web:http -m recent --name KUBE-SEP-4EX2N4PG4ASNZOBF --set -m tcp -p tcp -j DNAT --to-destination 10.244.2.2:8080
COMMIT
`;

const web = svc('web', {
  type: 'NodePort', sessionAffinity: 'ClientIP',
  ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 'web8080', nodePort: 30080 }],
});
const webSlice = slice('web', [ep('10.244.2.2'), ep('10.244.1.2')]);

t.test('golden: the reference default/web:http (NodePort, ClientIP affinity, named targetPort)', async (t) => {
  const r = render([web], [webSlice]);
  t.equal(r.text, WEB_GOLDEN);
  t.equal(r.rules, 21);
  t.same(used(r), ['KUBE-EXT-CDGGSHYLG3RE2FKL', 'KUBE-SEP-4EX2N4PG4ASNZOBF', 'KUBE-SEP-UIQK3OSOSTRHRPBX', 'KUBE-SVC-CDGGSHYLG3RE2FKL']);
});

t.test('deterministic: input order does not matter', async (t) => {
  const others = ['a', 'b', 'c', 'd'].map((n, i) => svc(n, { clusterIPs: [`10.96.1.${i}`] }));
  const slices = others.map((s, i) => slice(s.name, [ep(`10.244.3.${i}`), ep(`10.244.4.${i}`)]));
  const one = render([web, ...others], [webSlice, ...slices]).text;
  const two = render([...others].reverse().concat(web), [...slices].reverse().concat({ ...webSlice, endpoints: [...webSlice.endpoints].reverse() })).text;
  t.equal(one, two);
});

t.test('4 endpoints: probabilities 1/4, 1/3, 1/2, then unconditional', async (t) => {
  const r = render([svc('web')], [slice('web', ['1', '2', '3', '4'].map((i) => ep(`10.244.${i}.2`)))]);
  const lines = chain(r.text, serviceChain('SVC', 'default/web:http', 'tcp')).filter((l) => l.includes('KUBE-SEP'));
  t.same(lines.map((l) => /--probability (\S+)/.exec(l)?.[1] ?? 'last'), ['0.2500000000', '0.3333333333', '0.5000000000', 'last']);
});

t.test('no endpoints: filter REJECT for every destination, no nat chains', async (t) => {
  const s = svc('web', {
    type: 'LoadBalancer', externalIPs: ['192.0.2.10'], loadBalancerIPs: ['192.0.2.20'],
    ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080, nodePort: 30080 }],
  });
  const r = render([s], [slice('web', [ep('10.244.1.2', { ready: false, serving: false })])]);
  t.same(chain(r.text, 'KUBE-SERVICES').filter((l) => l.includes('REJECT')), [
    '-A KUBE-SERVICES -m comment --comment "default/web:http has no endpoints" -m tcp -p tcp -d 10.96.0.10 --dport 80 -j REJECT --reject-with icmp-port-unreachable',
  ]);
  t.same(chain(r.text, 'KUBE-EXTERNAL-SERVICES'), [
    '-A KUBE-EXTERNAL-SERVICES -m comment --comment "default/web:http has no endpoints" -m tcp -p tcp -d 192.0.2.10 --dport 80 -j REJECT --reject-with icmp-port-unreachable',
    '-A KUBE-EXTERNAL-SERVICES -m comment --comment "default/web:http has no endpoints" -m tcp -p tcp -d 192.0.2.20 --dport 80 -j REJECT --reject-with icmp-port-unreachable',
    '-A KUBE-EXTERNAL-SERVICES -m comment --comment "default/web:http has no endpoints" -m tcp -p tcp -m addrtype --dst-type LOCAL --dport 30080 -j REJECT --reject-with icmp-port-unreachable',
  ]);
  t.same(used(r), []);
  t.notMatch(r.text, /KUBE-(SVC|SEP|EXT)-/);
});

t.test('terminating endpoints only when no ready one exists', async (t) => {
  const term = ep('10.244.1.2', { ready: false, serving: true, terminating: true });
  const onlyTerm = render([svc('web')], [slice('web', [term, ep('10.244.9.9', { ready: false, serving: false, terminating: true })])]);
  t.match(onlyTerm.text, /DNAT --to-destination 10\.244\.1\.2:8080/);
  t.notMatch(onlyTerm.text, /10\.244\.9\.9/, 'not serving: never used');
  const withReady = render([svc('web')], [slice('web', [term, ep('10.244.2.2')])]);
  t.notMatch(withReady.text, /10\.244\.1\.2/);
  t.match(withReady.text, /DNAT --to-destination 10\.244\.2\.2:8080/);
});

t.test('multi-port with named target ports: one SVC chain per port, port from the slice', async (t) => {
  const s = svc('web', { ports: [
    { name: 'http', port: 80, protocol: 'TCP', targetPort: 'web8080' },
    { name: 'https', port: 443, protocol: 'TCP', targetPort: 'web8443' },
  ] });
  const sl = slice('web', [ep('10.244.1.2')], { ports: [{ name: 'https', port: 8443, protocol: 'TCP' }, { name: 'http', port: 8080, protocol: 'TCP' }] });
  const r = render([s], [sl]);
  t.match(chain(r.text, endpointChain('default/web:http', 'tcp', '10.244.1.2:8080'))[1], /--to-destination 10\.244\.1\.2:8080$/);
  t.match(chain(r.text, endpointChain('default/web:https', 'tcp', '10.244.1.2:8443'))[1], /--to-destination 10\.244\.1\.2:8443$/);
  t.equal(chain(r.text, 'KUBE-SERVICES').filter((l) => l.includes('cluster IP')).length, 2);
});

t.test('UDP and SCTP match their protocol; unnamed port has no :name', async (t) => {
  const s = svc('dns', { ports: [
    { name: '', port: 53, protocol: 'UDP', targetPort: 53 },
  ] });
  const r = render([s], [slice('dns', [ep('10.244.1.2')], { ports: [{ name: '', port: 53, protocol: 'UDP' }] })]);
  t.match(r.text, /--comment "default\/dns cluster IP" -m udp -p udp -d 10\.96\.0\.10 --dport 53 -j KUBE-SVC-/);
  const sc = render([svc('s', { ports: [{ name: 'x', port: 9, protocol: 'SCTP', targetPort: 9 }] })],
    [slice('s', [ep('10.244.1.2')], { ports: [{ name: 'x', port: 9, protocol: 'SCTP' }] })]);
  t.match(sc.text, /-m sctp -p sctp -j DNAT --to-destination 10\.244\.1\.2:9/);
});

t.test('externalIPs and LoadBalancer with source ranges', async (t) => {
  const s = svc('web', {
    type: 'LoadBalancer', externalIPs: ['192.0.2.10'], loadBalancerIPs: ['192.0.2.20'], loadBalancerSourceRanges: ['10.0.1.0/24'],
    ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080, nodePort: 30080 }],
  });
  const r = render([s], [slice('web', [ep('10.244.1.2')])], { nodeIPs: ['10.0.1.1'] });
  const ext = serviceChain('EXT', 'default/web:http', 'tcp');
  const fw = serviceChain('FW', 'default/web:http', 'tcp');
  t.match(r.text, `-A KUBE-SERVICES -m comment --comment "default/web:http external IP" -m tcp -p tcp -d 192.0.2.10 --dport 80 -j ${ext}`);
  t.match(r.text, `-A KUBE-SERVICES -m comment --comment "default/web:http loadbalancer IP" -m tcp -p tcp -d 192.0.2.20 --dport 80 -j ${fw}`);
  t.same(chain(r.text, fw), [
    `-A ${fw} -m comment --comment "default/web:http loadbalancer IP" -s 10.0.1.0/24 -j ${ext}`,
    `-A ${fw} -m comment --comment "default/web:http loadbalancer IP" -s 192.0.2.20 -j ${ext}`,
  ], 'node IP inside a range: the node may reach its own LB IP');
  t.same(chain(r.text, 'KUBE-PROXY-FIREWALL'), [
    `-A KUBE-PROXY-FIREWALL -m comment --comment "default/web:http traffic not accepted by ${fw}" -m tcp -p tcp -d 192.0.2.20 --dport 80 -j DROP`,
  ]);
  t.same(chain(r.text, 'KUBE-SERVICES').slice(-1), [
    '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -d 10.0.1.1 -j KUBE-NODEPORTS',
  ], '--node-ip: NodePorts only on that address');
});

t.test('traffic policies Local', async (t) => {
  const local = ep('10.244.1.2', { nodeName: 'node1' });
  const remote = ep('10.244.2.2', { nodeName: 'node2' });
  const itp = svc('web', { internalTrafficPolicy: 'Local' });
  const r1 = render([itp], [slice('web', [remote])]);
  t.match(r1.text, '-A KUBE-SERVICES -m comment --comment "default/web:http has no local endpoints" -m tcp -p tcp -d 10.96.0.10 --dport 80 -j DROP');
  const r2 = render([itp], [slice('web', [local, remote])]);
  const svl = serviceChain('SVL', 'default/web:http', 'tcp');
  t.match(r2.text, `--dport 80 -j ${svl}`);
  t.same(chain(r2.text, svl).filter((l) => l.includes('KUBE-SEP')).length, 1, 'only the local endpoint');

  const etp = svc('web', { type: 'NodePort', externalTrafficPolicy: 'Local', healthCheckNodePort: 32000,
    ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080, nodePort: 30081 }] });
  const r3 = render([etp], [slice('web', [local, remote])]);
  const ext = serviceChain('EXT', 'default/web:http', 'tcp');
  const svcChain = serviceChain('SVC', 'default/web:http', 'tcp');
  t.same(chain(r3.text, ext), [
    `-A ${ext} -m comment --comment "pod traffic for default/web:http external destinations" -s 10.244.0.0/16 -j ${svcChain}`,
    `-A ${ext} -m comment --comment "masquerade LOCAL traffic for default/web:http external destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ`,
    `-A ${ext} -m comment --comment "route LOCAL traffic for default/web:http external destinations" -m addrtype --src-type LOCAL -j ${svcChain}`,
    `-A ${ext} -j ${svl}`,
  ]);
  t.match(r3.text, '-A KUBE-NODEPORTS -m comment --comment "default/web:http health check node port" -m tcp -p tcp --dport 32000 -j ACCEPT');
  const r4 = render([etp], [slice('web', [remote])]);
  t.match(r4.text, '-A KUBE-EXTERNAL-SERVICES -m comment --comment "default/web:http has no local endpoints" -m tcp -p tcp -m addrtype --dst-type LOCAL --dport 30081 -j DROP');
  t.match(r4.text, `--dport 80 -j ${svcChain}`, 'ClusterIP still served by remote endpoints');
});

t.test('masquerade-all and no cluster CIDR', async (t) => {
  const svcChain = serviceChain('SVC', 'default/web:http', 'tcp');
  const all = render([svc('web')], [slice('web', [ep('10.244.1.2')])], { masqueradeAll: true });
  t.match(chain(all.text, svcChain)[0], /--dport 80 -j KUBE-MARK-MASQ$/);
  const none = render([svc('web')], [slice('web', [ep('10.244.1.2')])], { clusterCIDRs: [] });
  t.notMatch(chain(none.text, svcChain)[0], /KUBE-MARK-MASQ/);
});

t.test('skipped: headless, ExternalName, other proxies, FQDN slices, other family', async (t) => {
  const r = render([
    svc('h', { headless: true, clusterIPs: [] }), svc('x', { type: 'ExternalName', clusterIPs: [] }),
    svc('p', { labels: { 'service.kubernetes.io/service-proxy-name': 'other' } }), svc('six', { clusterIPs: ['fd00::10'] }),
  ], []);
  t.equal(r.text.split('\n').filter((l) => l.includes('default/')).length, 0);
});

t.test('IPv6 family: ip6tables text with bracketed endpoints and icmp6 reject', async (t) => {
  const s = svc('web', { clusterIPs: ['10.96.0.10', 'fd00::10'] });
  const r = render([s, svc('empty', { clusterIPs: ['fd00::11'] })], [
    slice('web', [ep('10.244.1.2')]), slice('web', [ep('fd00:244::2')], { name: 'web-v6', addressType: 'IPv6' }),
  ], { clusterCIDRs: ['fd00:244::/64'] }, 6);
  t.match(r.text, '-d fd00::10 --dport 80 ! -s fd00:244::/64 -j KUBE-MARK-MASQ');
  t.match(r.text, '-j DNAT --to-destination [fd00:244::2]:8080');
  t.match(r.text, endpointChain('default/web:http', 'tcp', '[fd00:244::2]:8080'));
  t.match(r.text, '-j REJECT --reject-with icmp6-port-unreachable');
  t.match(r.text, '! -d ::1/128 -j KUBE-NODEPORTS');
  t.notMatch(r.text, /10\.244\.1\.2/);
});

t.test('partial sync: changed services only, top-level chains when they changed; stale chains deleted', async (t) => {
  const services = Array.from({ length: 5 }, (_, i) => svc(`s${i}`, { clusterIPs: [`10.96.1.${i}`] }));
  const slices = services.map((s, i) => slice(s.name, [ep(`10.244.1.${i + 10}`), ep(`10.244.2.${i + 10}`)]));
  const full = render(services, slices);
  const moved = slices.map((s, i) => (i === 2 ? { ...s, endpoints: [ep('10.244.1.12'), ep('10.244.3.12')] } : s));
  const partial = render(services, moved, { changed: new Set(['default/s2']), previous: full.state });
  t.equal(chain(partial.text, 'KUBE-SERVICES').length, 0, 'top-level chains unchanged: left alone');
  t.notMatch(partial.text, /^(\*filter|:KUBE-SERVICES )/m);
  const declared = partial.text.split('\n').filter((l) => l.startsWith(':KUBE-S'));
  t.same(declared.filter((l) => !/^:KUBE-SERVICES /.test(l)).map((l) => l.split(' ')[0]).sort(), [
    `:${serviceChain('SVC', 'default/s2:http', 'tcp')}`,
    `:${endpointChain('default/s2:http', 'tcp', '10.244.1.12:8080')}`,
    `:${endpointChain('default/s2:http', 'tcp', '10.244.2.12:8080')}`,
    `:${endpointChain('default/s2:http', 'tcp', '10.244.3.12:8080')}`,
  ].sort());
  t.same(partial.deletedChains, [endpointChain('default/s2:http', 'tcp', '10.244.2.12:8080')]);
  t.match(partial.text, `-X ${endpointChain('default/s2:http', 'tcp', '10.244.2.12:8080')}`);
  t.notMatch(partial.text, serviceChain('SVC', 'default/s1:http', 'tcp') + ' - [0:0]');
  t.equal(partial.rules, full.rules, 'rule count includes chains left alone');
  t.ok(partial.writtenRules < full.writtenRules);

  const foreign = render(services, slices, { existingChains: ['FOREIGN', 'KUBE-FIREWALL', 'KUBE-MARK-DROP', ...used(full)] });
  t.same(foreign.deletedChains, [], 'chains we do not own are never deleted');

  const gone = render(services.slice(1), slices.slice(1), { changed: new Set(['default/s0']), previous: full.state });
  t.same(gone.deletedChains, full.state.chains.get('default/s0')!.slice().sort(), 'a deleted service: all its chains go');
  t.equal(gone.state.chains.get('default/s0'), undefined);
  t.match(gone.text, `-X ${serviceChain('SVC', 'default/s0:http', 'tcp')}`);
  t.equal(chain(gone.text, 'KUBE-SERVICES').length, 5);

  const emptied = render(services, slices.map((s, i) => (i === 3 ? { ...s, endpoints: [] } : s)), { changed: new Set(['default/s3']), previous: full.state });
  t.equal(chain(emptied.text, 'KUBE-SERVICES').filter((l) => l.includes('REJECT')).length, 1, 'filter rewritten: REJECT for the emptied service');
  t.equal(chain(emptied.text, 'KUBE-SERVICES').filter((l) => l.includes('KUBE-SVC-')).length, 4, 'nat KUBE-SERVICES rewritten without it');
  t.same(emptied.deletedChains.length, 3, 'its SVC and both SEP chains');

  const resync = render(services.slice(1), slices.slice(1), { existingChains: ['KUBE-SERVICES', ...used(full)] });
  t.same(resync.deletedChains, gone.deletedChains, 'a full sync finds the same stale chains from the kernel list');
  t.throws(() => render(services, slices, { changed: new Set(['default/s0']) }), /previous sync/);

  // After a mass deletion the kernel holds far more of our chains than the new state uses.
  const leftovers = Array.from({ length: 150_000 }, (_, i) => `KUBE-SEP-${chainHash(`gone${i}`)}`);
  const purge = render(services, slices, { existingChains: leftovers });
  t.equal(purge.deletedChains.length, 150_000);
  t.match(purge.text, `-X ${leftovers[0]}\n`);
});

t.test('chains are declared in descending name order (iptables-nft inserts them into a sorted list)', async (t) => {
  const services = Array.from({ length: 60 }, (_, i) => svc(`s${i}`, {
    clusterIPs: [`10.96.2.${i}`], type: 'NodePort', ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080, nodePort: 30000 + i }],
  }));
  const slices = services.map((s, i) => slice(s.name, [ep(`10.244.1.${i + 10}`), ep(`10.244.2.${i + 10}`)]));
  const r = render(services, slices);
  const declared = r.text.split('\n').filter((l) => /^:KUBE-(SVC|SVL|EXT|FW|SEP)-/.test(l)).map((l) => l.slice(1, l.indexOf(' ')));
  t.equal(declared.length, 60 * 4, 'EXT, SVC and two SEP chains per service');
  t.same(declared, [...declared].sort().reverse());
});

t.test('partial sync from a reused model equals one from a fresh model', async (t) => {
  const services = Array.from({ length: 4 }, (_, i) => svc(`s${i}`, { clusterIPs: [`10.96.1.${i}`] }));
  const slices = services.map((s, i) => slice(s.name, [ep(`10.244.1.${i + 10}`)]));
  const prev = buildModel({ services, slices }, { family: 4, nodeName: 'n' });
  const first = renderIptables(prev, { ...base, changed: null });
  const moved = slices.map((s, i) => (i === 1 ? { ...s, endpoints: [ep('10.244.7.7')] } : s));
  const changed = new Set(['default/s1']);
  const reused = buildModel({ services, slices: moved }, { family: 4, nodeName: 'n' }, { prev, changed });
  t.equal(reused.ports[0], prev.ports[0], 'unchanged service: same object');
  t.not(reused.ports[1], prev.ports[1]);
  const fresh = buildModel({ services, slices: moved }, { family: 4, nodeName: 'n' });
  const a = renderIptables(reused, { ...base, changed, previous: first.state });
  const b = renderIptables(fresh, { ...base, changed, previous: first.state });
  t.equal(a.text, b.text);
  t.equal(a.rules, b.rules);
  t.same(used(a), used(b));
  t.same(a.deletedChains, [endpointChain('default/s1:http', 'tcp', '10.244.1.11:8080')]);
});

t.test('full sync on a fresh node: canary and entry jumps inside the restore, built-ins never declared', async (t) => {
  const r = render([web], [webSlice], { entry: { jumps: JUMPS, canary: true } });
  t.match(r.text, /^\*mangle\n:KUBE-PROXY-CANARY - \[0:0\]\nCOMMIT\n\*filter\n/);
  t.match(r.text, '-I PREROUTING 1 -m comment --comment "kubernetes service portals" -j KUBE-SERVICES\n');
  t.match(r.text, '-I FORWARD 1 -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES\n');
  t.notMatch(r.text, /^:(PREROUTING|INPUT|OUTPUT|FORWARD|POSTROUTING) /m);
  t.equal(r.text.split('\n').filter((l) => l.startsWith('-I ')).length, JUMPS.length);
});

t.test('large clusters drop per-endpoint comments', async (t) => {
  const eps = Array.from({ length: 1001 }, (_, i) => ep(`10.244.${i >> 8}.${i & 255}`));
  const r = render([svc('web')], [slice('web', eps)]);
  t.notMatch(r.text, /-> 10\.244/);
  t.match(r.text, '"default/web:http cluster IP"', 'top-level comments stay');
  t.match(r.text, '--probability 0.0009990010');
});

t.test('conntrack cleanup plan', async (t) => {
  const dns = (eps: Endpoint[], o: Partial<Service> = {}) => buildModel({
    services: [svc('dns', { type: 'NodePort', ports: [{ name: 'dns', port: 53, protocol: 'UDP', targetPort: 53, nodePort: 30053 }], ...o })],
    slices: [slice('dns', eps, { ports: [{ name: 'dns', port: 53, protocol: 'UDP' }] })],
  }, { family: 4, nodeName: 'n' });
  const empty = buildModel({ services: [], slices: [] }, { family: 4, nodeName: 'n' });
  const one = dns([ep('10.244.1.2')]);
  const two = dns([ep('10.244.1.2'), ep('10.244.2.2')]);
  t.same(conntrackCleanup(undefined, one), [], 'first sync: nothing');
  t.same(conntrackCleanup(one, two), [], 'endpoint added: nothing');
  t.same(conntrackCleanup(two, dns([ep('10.244.2.2')])), [
    ['-D', '-p', 'udp', '--orig-dst', '10.96.0.10', '--orig-port-dst', '53', '--dst-nat', '10.244.1.2'],
    ['-D', '-p', 'udp', '--orig-port-dst', '30053', '--dst-nat', '10.244.1.2'],
  ], 'endpoint removed: flows DNATed to it');
  const flushAll = [['-D', '-p', 'udp', '--orig-dst', '10.96.0.10', '--orig-port-dst', '53'], ['-D', '-p', 'udp', '--orig-port-dst', '30053']];
  t.same(conntrackCleanup(dns([]), one), flushAll, '0 -> 1 endpoints');
  t.same(conntrackCleanup(empty, one), flushAll, 'new service with endpoints');
  t.same(conntrackCleanup(one, empty), flushAll, 'deleted service');
  const tcp = (eps: Endpoint[]) => buildModel({ services: [svc('web')], slices: [slice('web', eps)] }, { family: 4, nodeName: 'n' });
  t.same(conntrackCleanup(tcp([ep('10.244.1.2')]), tcp([])), [], 'TCP flows are never touched');

  // The syncer's models share unchanged ports; only the changed services' ports are compared.
  const both = (eps: Endpoint[]) => ({
    services: [svc('web'), svc('dns', { ports: [{ name: 'dns', port: 53, protocol: 'UDP', targetPort: 53 }] })],
    slices: [slice('web', [ep('10.244.1.2')]), slice('dns', eps, { ports: [{ name: 'dns', port: 53, protocol: 'UDP' }] })],
  });
  const before = buildModel(both([ep('10.244.1.3'), ep('10.244.2.3')]), { family: 4, nodeName: 'n' });
  const changed = new Set(['default/dns']);
  const after = buildModel(both([ep('10.244.2.3')]), { family: 4, nodeName: 'n' }, { prev: before, changed });
  t.same(conntrackCleanup(before, after, changed), conntrackCleanup(before, after));
  t.same(conntrackCleanup(before, after, changed), [['-D', '-p', 'udp', '--orig-dst', '10.96.0.10', '--orig-port-dst', '53', '--dst-nat', '10.244.1.3']]);
});

t.test('applier: a failing restore reports the offending line; conntrack "0 entries" is fine', async (t) => {
  const calls: string[][] = [];
  const fake = async (cmd: string, args: string[]): Promise<CommandResult> => {
    calls.push([cmd, ...args]);
    if (cmd === 'iptables-restore') return { code: 2, stdout: '', stderr: "iptables-restore v1.8.9 (nf_tables): Chain 'KUBE-NOPE' does not exist\nError occurred at line: 3\n" };
    return { code: 1, stdout: '', stderr: 'conntrack v1.4.7 (conntrack-tools): 0 flow entries have been deleted.\n' };
  };
  const a = new IptablesApplier(4, fake);
  const err = await a.restore('*nat\n:KUBE-X - [0:0]\n-A KUBE-X -j KUBE-NOPE\nCOMMIT\n').catch((e: unknown) => e);
  t.ok(err instanceof RestoreError);
  t.equal((err as RestoreError).line, 3);
  t.match((err as RestoreError).message, 'at line 3: -A KUBE-X -j KUBE-NOPE');
  t.same(calls[0], ['iptables-restore', '-w', '5', '-W', '100000', '--noflush']);
  t.same(await a.conntrackDelete([['-D', '-p', 'udp']]), []);
  t.same(await new IptablesApplier(6, fake).conntrackDelete([['-D', '-p', 'udp']]), []);
  t.same(calls.at(-1), ['conntrack', '-D', '-p', 'udp', '-f', 'ipv6']);
});

t.test('CLI arguments', async (t) => {
  t.equal(durationFlag('30s', 'x'), 30_000);
  t.equal(durationFlag('1m30s', 'x'), 90_000);
  t.equal(durationFlag('250ms', 'x'), 250);
  t.throws(() => durationFlag('30', '--sync-period'), /--sync-period: '30' is not a duration/);
  const o = parseVipArgs(['--manifests', 'm.yaml', '--node-ip', '10.0.1.1', '--node-ip=fd00::1', '--cluster-cidr', '10.244.0.0/16,fd00:244::/64',
    '--masquerade-all', '--sync-period', '2s', '--min-sync-period', '100ms', '--once', '--metrics', ':9100', '--mode', 'iptables']);
  t.match(o, { manifests: 'm.yaml', nodeIPs: ['10.0.1.1', 'fd00::1'], clusterCIDRs: ['10.244.0.0/16', 'fd00:244::/64'], masqueradeAll: true,
    syncPeriodMs: 2000, minSyncPeriodMs: 100, once: true, metrics: ':9100', mode: 'iptables' });
  t.throws(() => parseVipArgs(['--mode', 'ipvs']), /--mode: 'ipvs' is not supported/);
  t.throws(() => parseVipArgs(['--node-ip', 'nope']), /--node-ip: 'nope' is not an IP/);
  t.throws(() => parseVipArgs(['--cluster-cidr', '10.0.0.0/33']), /not a CIDR/);
  t.throws(() => parseVipArgs(['--manifests', 'a', '--kubeconfig', 'b']), /exclude each other/);
  t.throws(() => parseVipArgs(['--bogus']), /flag provided but not defined: --bogus/);
});
