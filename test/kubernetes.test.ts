import t from 'tap';
import { copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dig, type DigRR } from './helpers/dig.js';
import { startServer, type RunningServer } from './helpers/server.js';
import { localAddresses } from '../src/plugins/kubernetes/setup.js';
import { sleep } from './helpers/wait.js';
import { tempDir } from './helpers/temp-dir.js';

/*
 * Every answer of the kubernetes plugin, asked with real dig against a running server over real
 * manifests (zones/cluster.yaml + test/fixtures/kubernetes/edge-cases.yaml).
 */

const root = join(import.meta.dirname, '..');
const dir = tempDir('k8s');
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
copyFileSync(join(root, 'zones', 'cluster.yaml'), join(dir, 'cluster.yaml'));
copyFileSync(join(root, 'test', 'fixtures', 'kubernetes', 'edge-cases.yaml'), join(dir, 'edge-cases.yaml'));

const servers: RunningServer[] = [];
t.teardown(async () => { for (const s of servers) await s.stop(); });
async function serve(corefile: string): Promise<number> {
  const s = await startServer(corefile);
  servers.push(s);
  return s.port;
}

const main = await serve(`cluster.local in-addr.arpa ip6.arpa {
  kubernetes cluster.local in-addr.arpa ip6.arpa {
    manifests ${dir}
    pods insecure
    ttl 30
  }
}
example.org {
  hosts {
    192.0.2.10 target.example.org
  }
}
`);

/** dig lines normalised: one space between fields, SOA serial replaced by SERIAL. */
const line = (rr: DigRR) => {
  const data = rr.type === 'SOA' ? rr.data.replace(/^(\S+ \S+) \d+/, '$1 SERIAL') : rr.data;
  return `${rr.name} ${rr.ttl} IN ${rr.type} ${data}`;
};
const soa = (zone = 'cluster.local.', ttl = 30, min = ttl) =>
  `${zone} ${ttl} IN SOA ns.dns.${zone} hostmaster.${zone} SERIAL 7200 1800 86400 ${min}`;

interface Case {
  q: string;
  type: string;
  rcode?: string;
  an?: string[];
  /** Default: the zone SOA for empty answers, nothing otherwise. */
  ns?: string[];
  ar?: string[];
  port?: number;
  /** Known gap outside this plugin, reported as a TODO rather than a failure. */
}

const Z = 'cluster.local.';
const svc = (n: string) => `${n}.svc.${Z}`;
const A = (name: string, ip: string, ttl = 30) => `${name} ${ttl} IN A ${ip}`;
const AAAA = (name: string, ip: string, ttl = 30) => `${name} ${ttl} IN AAAA ${ip}`;
const SRV = (name: string, w: number, port: number, target: string) => `${name} 30 IN SRV 0 ${w} ${port} ${target}`;
const PTR = (name: string, target: string, ttl = 30) => `${name} ${ttl} IN PTR ${target}`;
const CNAME = (name: string, target: string) => `${name} 30 IN CNAME ${target}`;
const NX = 'NXDOMAIN';
const v6rev = (nibbles: string) => `${nibbles}.ip6.arpa.`;
/** fd00:10:233::7 and 5678:abcd::1 in nibble form. */
const DUAL6 = v6rev('7.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.3.3.2.0.0.1.0.0.0.0.d.f');
const V6EP = v6rev('1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.c.b.a.8.7.6.5');

const cases: Case[] = [
  // ClusterIP services from the seeds
  { q: svc('myweb-svc-ses.default'), type: 'A', an: [A(svc('myweb-svc-ses.default'), '10.233.24.46')] },
  { q: svc('myweb-svc-named.default'), type: 'A', an: [A(svc('myweb-svc-named.default'), '10.233.33.18')] },
  { q: svc('myweb-svc-multi.default'), type: 'A', an: [A(svc('myweb-svc-multi.default'), '10.233.60.121')] },
  { q: svc('redis.default'), type: 'A', an: [A(svc('redis.default'), '10.103.50.52')] },
  { q: svc('my-service.default'), type: 'A', an: [A(svc('my-service.default'), '10.233.11.80')] },
  { q: svc('cluster-test-01-svc.cluster-test-01'), type: 'A', an: [A(svc('cluster-test-01-svc.cluster-test-01'), '172.20.4.192')] },
  { q: svc('test-np.default'), type: 'A', an: [A(svc('test-np.default'), '10.101.168.120')] },
  { q: svc('test-lb.default'), type: 'A', an: [A(svc('test-lb.default'), '10.109.50.21')] },
  { q: svc('external-web.default'), type: 'A', an: [A(svc('external-web.default'), '10.233.45.10')] },
  { q: svc('kube-dns.kube-system'), type: 'A', an: [A(svc('kube-dns.kube-system'), '10.233.0.3')] },
  { q: svc('kubernetes.default'), type: 'A', an: [A(svc('kubernetes.default'), '10.233.0.1')] },
  { q: svc('empty.testns'), type: 'A', an: [A(svc('empty.testns'), '10.0.0.9')] },
  // families, dual-stack
  { q: svc('redis.default'), type: 'AAAA', an: [] },
  { q: svc('dual.default'), type: 'A', an: [A(svc('dual.default'), '10.233.7.7')] },
  { q: svc('dual.default'), type: 'AAAA', an: [AAAA(svc('dual.default'), 'fd00:10:233::7')] },
  // case: matching ignores it, owners echo it
  { q: 'MyWeb-Svc-SES.Default.SVC.Cluster.Local.', type: 'A', an: [A('MyWeb-Svc-SES.Default.SVC.Cluster.Local.', '10.233.24.46')] },
  { q: 'REDIS.DEFAULT.SVC.CLUSTER.LOCAL.', type: 'AAAA', an: [], ns: [soa('CLUSTER.LOCAL.')] },
  { q: 'nosuch.default.svc.ClUsTeR.lOcAl.', type: 'A', rcode: NX, ns: [soa('ClUsTeR.lOcAl.')] },
  // headless
  { q: svc('web.default'), type: 'A', an: [A(svc('web.default'), '10.233.90.70'), A(svc('web.default'), '10.233.92.240')] },
  { q: svc('web.default'), type: 'AAAA', an: [] },
  { q: svc('multi.testns'), type: 'A', an: ['10.9.0.1', '10.9.0.2', '10.9.0.3'].map((ip) => A(svc('multi.testns'), ip)) },
  { q: svc('unready.testns'), type: 'A', rcode: NX },
  { q: svc('unready.testns'), type: 'AAAA', rcode: NX },
  { q: svc('unready.testns'), type: 'TXT', rcode: NX },
  { q: svc('unready.testns'), type: 'SRV', rcode: NX },
  { q: svc('portless.testns'), type: 'A', an: [A(svc('portless.testns'), '10.9.1.1')] },
  { q: svc('legacy.testns'), type: 'A', an: [A(svc('legacy.testns'), '10.9.5.1')] },
  { q: svc('v6.testns'), type: 'AAAA', an: [AAAA(svc('v6.testns'), '5678:abcd::1'), AAAA(svc('v6.testns'), 'fd00::')] },
  { q: svc('v6.testns'), type: 'A', an: [] },
  { q: svc('db.testns'), type: 'A', an: [A(svc('db.testns'), '10.9.6.1')] },
  { q: svc('db.testns'), type: 'AAAA', an: [AAAA(svc('db.testns'), 'fd00:9::61')] },
  // endpoint names: hostname, dashed IP as written, under headless and ClusterIP services
  { q: svc('web-0.web.default'), type: 'A', an: [A(svc('web-0.web.default'), '10.233.90.70')] },
  { q: svc('web-1.web.default'), type: 'A', an: [A(svc('web-1.web.default'), '10.233.92.240')] },
  { q: svc('web-2.web.default'), type: 'A', rcode: NX },
  { q: svc('web-0.web.default'), type: 'AAAA', an: [] },
  { q: svc('web-0.web.default'), type: 'TXT', an: [] },
  { q: svc('nobody.web.default'), type: 'A', rcode: NX },
  { q: svc('alpha.multi.testns'), type: 'A', an: [A(svc('alpha.multi.testns'), '10.9.0.1')] },
  { q: svc('10-9-0-2.multi.testns'), type: 'A', an: [A(svc('10-9-0-2.multi.testns'), '10.9.0.2')] },
  { q: svc('multi-pod-2.multi.testns'), type: 'A', rcode: NX },
  { q: svc('sleepy.multi.testns'), type: 'A', rcode: NX },
  { q: svc('10-9-0-4.multi.testns'), type: 'A', rcode: NX },
  { q: svc('10-233-90-63.myweb-svc-ses.default'), type: 'A', an: [A(svc('10-233-90-63.myweb-svc-ses.default'), '10.233.90.63')] },
  { q: svc('ep1.shared-a.testns'), type: 'A', an: [A(svc('ep1.shared-a.testns'), '10.9.3.1')] },
  { q: svc('5678-abcd--1.v6.testns'), type: 'AAAA', an: [AAAA(svc('5678-abcd--1.v6.testns'), '5678:abcd::1')] },
  { q: svc('5678-abcd-0-0-0-0-0-1.v6.testns'), type: 'AAAA', rcode: NX },
  { q: svc('fd00--0.v6.testns'), type: 'AAAA', an: [AAAA(svc('fd00--0.v6.testns'), 'fd00::')] },
  { q: svc('5678-abcd--1.v6.testns'), type: 'A', an: [] },
  { q: svc('db-0.db.testns'), type: 'A', an: [A(svc('db-0.db.testns'), '10.9.6.1')] },
  { q: svc('db-0.db.testns'), type: 'AAAA', an: [AAAA(svc('db-0.db.testns'), 'fd00:9::61')] },
  { q: svc('WEB-0.Web.default'), type: 'A', an: [A(svc('WEB-0.Web.default'), '10.233.90.70')] },
  // SRV: ClusterIP
  { q: svc('_http._tcp.myweb-svc-multi.default'), type: 'SRV', an: [SRV(svc('_http._tcp.myweb-svc-multi.default'), 100, 80, svc('myweb-svc-multi.default'))], ar: [A(svc('myweb-svc-multi.default'), '10.233.60.121')] },
  { q: svc('_https._tcp.myweb-svc-multi.default'), type: 'SRV', an: [SRV(svc('_https._tcp.myweb-svc-multi.default'), 100, 443, svc('myweb-svc-multi.default'))], ar: [A(svc('myweb-svc-multi.default'), '10.233.60.121')] },
  { q: svc('myweb-svc-multi.default'), type: 'SRV', an: [SRV(svc('myweb-svc-multi.default'), 50, 80, svc('myweb-svc-multi.default')), SRV(svc('myweb-svc-multi.default'), 50, 443, svc('myweb-svc-multi.default'))], ar: [A(svc('myweb-svc-multi.default'), '10.233.60.121')] },
  { q: svc('_https._udp.myweb-svc-multi.default'), type: 'SRV', rcode: NX },
  { q: svc('_ftp._tcp.myweb-svc-multi.default'), type: 'SRV', rcode: NX },
  { q: svc('redis.default'), type: 'SRV', an: [SRV(svc('redis.default'), 100, 6379, svc('redis.default'))], ar: [A(svc('redis.default'), '10.103.50.52')] },
  { q: svc('_redis._tcp.redis.default'), type: 'SRV', rcode: NX },
  { q: svc('_._tcp.redis.default'), type: 'SRV', an: [SRV(svc('_._tcp.redis.default'), 100, 6379, svc('redis.default'))], ar: [A(svc('redis.default'), '10.103.50.52')] },
  { q: svc('_http._tcp.dual.default'), type: 'SRV', an: [SRV(svc('_http._tcp.dual.default'), 50, 80, svc('dual.default'))], ar: [A(svc('dual.default'), '10.233.7.7'), AAAA(svc('dual.default'), 'fd00:10:233::7')] },
  { q: svc('kube-dns.kube-system'), type: 'SRV', an: [SRV(svc('kube-dns.kube-system'), 33, 53, svc('kube-dns.kube-system')), SRV(svc('kube-dns.kube-system'), 33, 9153, svc('kube-dns.kube-system'))], ar: [A(svc('kube-dns.kube-system'), '10.233.0.3')] },
  { q: svc('_dns._udp.kube-dns.kube-system'), type: 'SRV', an: [SRV(svc('_dns._udp.kube-dns.kube-system'), 100, 53, svc('kube-dns.kube-system'))], ar: [A(svc('kube-dns.kube-system'), '10.233.0.3')] },
  { q: svc('_dns-tcp._tcp.kube-dns.kube-system'), type: 'SRV', an: [SRV(svc('_dns-tcp._tcp.kube-dns.kube-system'), 100, 53, svc('kube-dns.kube-system'))], ar: [A(svc('kube-dns.kube-system'), '10.233.0.3')] },
  { q: svc('_dns._tcp.kube-dns.kube-system'), type: 'SRV', rcode: NX },
  { q: svc('_metrics._tcp.kube-dns.kube-system'), type: 'SRV', an: [SRV(svc('_metrics._tcp.kube-dns.kube-system'), 100, 9153, svc('kube-dns.kube-system'))], ar: [A(svc('kube-dns.kube-system'), '10.233.0.3')] },
  { q: svc('_dns._udp.udp.testns'), type: 'SRV', an: [SRV(svc('_dns._udp.udp.testns'), 100, 53, svc('udp.testns'))], ar: [A(svc('udp.testns'), '10.0.0.53')] },
  { q: svc('_DNS._UDP.udp.testns'), type: 'SRV', an: [SRV(svc('_DNS._UDP.udp.testns'), 100, 53, svc('udp.testns'))], ar: [A(svc('udp.testns'), '10.0.0.53')] },
  { q: svc('_dns._tcp.udp.testns'), type: 'SRV', rcode: NX },
  { q: svc('_http._tcp.empty.testns'), type: 'SRV', an: [SRV(svc('_http._tcp.empty.testns'), 100, 80, svc('empty.testns'))], ar: [A(svc('empty.testns'), '10.0.0.9')] },
  // SRV: headless (endpoint ports, per endpoint targets, weights before de-duplication)
  { q: svc('_http._tcp.web.default'), type: 'SRV', an: [SRV(svc('_http._tcp.web.default'), 50, 80, svc('web-0.web.default')), SRV(svc('_http._tcp.web.default'), 50, 80, svc('web-1.web.default'))], ar: [A(svc('web-0.web.default'), '10.233.90.70'), A(svc('web-1.web.default'), '10.233.92.240')] },
  { q: svc('multi.testns'), type: 'SRV',
    an: ['alpha', '10-9-0-2', '10-9-0-3'].flatMap((h) => [SRV(svc('multi.testns'), 16, 80, svc(`${h}.multi.testns`)), SRV(svc('multi.testns'), 16, 8080, svc(`${h}.multi.testns`))]),
    ar: [A(svc('alpha.multi.testns'), '10.9.0.1'), A(svc('10-9-0-2.multi.testns'), '10.9.0.2'), A(svc('10-9-0-3.multi.testns'), '10.9.0.3')] },
  { q: svc('_http._tcp.multi.testns'), type: 'SRV',
    an: ['alpha', '10-9-0-2', '10-9-0-3'].map((h) => SRV(svc('_http._tcp.multi.testns'), 33, 80, svc(`${h}.multi.testns`))),
    ar: [A(svc('alpha.multi.testns'), '10.9.0.1'), A(svc('10-9-0-2.multi.testns'), '10.9.0.2'), A(svc('10-9-0-3.multi.testns'), '10.9.0.3')] },
  { q: svc('_pg._tcp.db.testns'), type: 'SRV', an: [SRV(svc('_pg._tcp.db.testns'), 50, 5432, svc('db-0.db.testns'))], ar: [A(svc('db-0.db.testns'), '10.9.6.1'), AAAA(svc('db-0.db.testns'), 'fd00:9::61')] },
  { q: svc('_redis._tcp.legacy.testns'), type: 'SRV', an: [SRV(svc('_redis._tcp.legacy.testns'), 100, 6379, svc('10-9-5-1.legacy.testns'))], ar: [A(svc('10-9-5-1.legacy.testns'), '10.9.5.1')] },
  { q: svc('portless.testns'), type: 'SRV', an: [] },
  { q: svc('alpha.multi.testns'), type: 'SRV', an: [SRV(svc('alpha.multi.testns'), 50, 80, svc('alpha.multi.testns')), SRV(svc('alpha.multi.testns'), 50, 8080, svc('alpha.multi.testns'))], ar: [A(svc('alpha.multi.testns'), '10.9.0.1')] },
  { q: '_http._tcp.web.default.svc.CLUSTER.local.', type: 'SRV',
    an: [SRV('_http._tcp.web.default.svc.CLUSTER.local.', 50, 80, 'web-0.web.default.svc.CLUSTER.local.'), SRV('_http._tcp.web.default.svc.CLUSTER.local.', 50, 80, 'web-1.web.default.svc.CLUSTER.local.')],
    ar: [A('web-0.web.default.svc.CLUSTER.local.', '10.233.90.70'), A('web-1.web.default.svc.CLUSTER.local.', '10.233.92.240')] },
  // A on an SRV-shaped name answers the service (CoreDNS quirk)
  { q: svc('_http._tcp.myweb-svc-multi.default'), type: 'A', an: [A(svc('_http._tcp.myweb-svc-multi.default'), '10.233.60.121')] },
  // PTR
  { q: '46.24.233.10.in-addr.arpa.', type: 'PTR', an: [PTR('46.24.233.10.in-addr.arpa.', svc('myweb-svc-ses.default'))] },
  { q: '192.4.20.172.in-addr.arpa.', type: 'PTR', an: [PTR('192.4.20.172.in-addr.arpa.', svc('cluster-test-01-svc.cluster-test-01'))] },
  { q: '63.90.233.10.in-addr.arpa.', type: 'PTR', an: [PTR('63.90.233.10.in-addr.arpa.', svc('10-233-90-63.myweb-svc-ses.default'))] },
  { q: '70.90.233.10.in-addr.arpa.', type: 'PTR', an: [PTR('70.90.233.10.in-addr.arpa.', svc('web-0.web.default'))] },
  { q: '80.96.233.10.in-addr.arpa.', type: 'PTR', rcode: NX, ns: [soa('in-addr.arpa.')] },
  { q: '1.3.9.10.in-addr.arpa.', type: 'PTR', an: [PTR('1.3.9.10.in-addr.arpa.', svc('ep1.shared-a.testns')), PTR('1.3.9.10.in-addr.arpa.', svc('10-9-3-1.shared-b.other'))] },
  { q: '6.5.4.10.in-addr.arpa.', type: 'PTR', an: [PTR('6.5.4.10.in-addr.arpa.', svc('10-4-5-6.my-service.default'))] },
  { q: '1.5.9.10.in-addr.arpa.', type: 'PTR', an: [PTR('1.5.9.10.in-addr.arpa.', svc('10-9-5-1.legacy.testns'))] },
  { q: '2.5.9.10.in-addr.arpa.', type: 'PTR', rcode: NX, ns: [soa('in-addr.arpa.')] },
  { q: '4.4.9.10.in-addr.arpa.', type: 'PTR', rcode: NX, ns: [soa('in-addr.arpa.')] },
  { q: '4.64.168.192.in-addr.arpa.', type: 'PTR', rcode: NX, ns: [soa('in-addr.arpa.')] },
  { q: DUAL6, type: 'PTR', an: [PTR(DUAL6, svc('dual.default'))] },
  { q: V6EP, type: 'PTR', an: [PTR(V6EP, svc('5678-abcd--1.v6.testns'))] },
  { q: v6rev('0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f'), type: 'PTR', an: [PTR(v6rev('0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f'), svc('fd00--0.v6.testns'))] },
  { q: v6rev('9.9.9.9.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f'), type: 'PTR', rcode: NX, ns: [soa('ip6.arpa.')] },
  { q: '90.233.10.in-addr.arpa.', type: 'PTR', rcode: NX, ns: [soa('in-addr.arpa.')] },
  { q: 'in-addr.arpa.', type: 'PTR', an: [], ns: [soa('in-addr.arpa.')] },
  { q: 'in-addr.arpa.', type: 'SOA', an: [soa('in-addr.arpa.')], ns: [] },
  { q: '46.24.233.10.in-addr.arpa.', type: 'A', rcode: NX, ns: [soa('in-addr.arpa.')] },
  { q: svc('redis.default'), type: 'PTR', an: [] },
  { q: svc('nosuch.default'), type: 'PTR', rcode: NX },
  // ExternalName
  { q: svc('my-service.prod'), type: 'A', an: [CNAME(svc('my-service.prod'), 'my.database.example.com.')] },
  { q: svc('my-service.prod'), type: 'AAAA', an: [CNAME(svc('my-service.prod'), 'my.database.example.com.')] },
  { q: svc('my-service.prod'), type: 'CNAME', an: [CNAME(svc('my-service.prod'), 'my.database.example.com.')] },
  { q: 'My-Service.PROD.svc.cluster.local.', type: 'CNAME', an: [CNAME('My-Service.PROD.svc.cluster.local.', 'my.database.example.com.')] },
  { q: svc('my-service.prod'), type: 'TXT', an: [] },
  { q: svc('my-service.prod'), type: 'MX', an: [] },
  { q: svc('my-service.prod'), type: 'SRV', an: [] },
  { q: svc('x.my-service.prod'), type: 'A', rcode: NX },
  { q: svc('_http._tcp.my-service.prod'), type: 'SRV', rcode: NX },
  { q: svc('outzone.testns'), type: 'A', an: [CNAME(svc('outzone.testns'), 'target.example.org.'), A('target.example.org.', '192.0.2.10', 3600)] },
  { q: svc('outzone.testns'), type: 'AAAA', an: [CNAME(svc('outzone.testns'), 'target.example.org.')] },
  { q: svc('inzone.testns'), type: 'A', an: [CNAME(svc('inzone.testns'), svc('empty.testns')), A(svc('empty.testns'), '10.0.0.9')] },
  { q: svc('inzone.testns'), type: 'AAAA', an: [] },
  { q: svc('dangling.testns'), type: 'A', an: [] },
  { q: svc('ext-ip.testns'), type: 'A', rcode: NX },
  { q: svc('redis.default'), type: 'CNAME', an: [] },
  // pods insecure
  { q: `10-9-4-4.testns.pod.${Z}`, type: 'A', an: [A(`10-9-4-4.testns.pod.${Z}`, '10.9.4.4')] },
  { q: `1-2-3-4.testns.pod.${Z}`, type: 'A', an: [A(`1-2-3-4.testns.pod.${Z}`, '1.2.3.4')] },
  { q: `x.1-2-3-4.testns.pod.${Z}`, type: 'A', an: [A(`x.1-2-3-4.testns.pod.${Z}`, '1.2.3.4')] },
  { q: `1-2-3-4.testns.pod.${Z}`, type: 'AAAA', an: [] },
  { q: `fd00--1.testns.pod.${Z}`, type: 'AAAA', an: [AAAA(`fd00--1.testns.pod.${Z}`, 'fd00::1')] },
  { q: `1-2-3-4.nosuchns.pod.${Z}`, type: 'A', rcode: NX },
  { q: `not-an-ip.testns.pod.${Z}`, type: 'A', rcode: NX },
  { q: `testns.pod.${Z}`, type: 'A', an: [] },
  { q: `pod.${Z}`, type: 'A', an: [] },
  // partial names, apex, dns-version, other types
  { q: `default.svc.${Z}`, type: 'A', an: [] },
  { q: `nosuchns.svc.${Z}`, type: 'A', rcode: NX },
  { q: `svc.${Z}`, type: 'A', an: [] },
  { q: Z, type: 'A', an: [] },
  { q: Z, type: 'AAAA', an: [] },
  { q: Z, type: 'MX', an: [] },
  { q: Z, type: 'SOA', an: [soa()], ns: [] },
  { q: 'CLUSTER.local.', type: 'SOA', an: [soa('CLUSTER.local.')], ns: [] },
  { q: `foo.${Z}`, type: 'A', rcode: NX },
  { q: `dns-version.${Z}`, type: 'TXT', an: [`dns-version.${Z} 28800 IN TXT "1.1.0"`] },
  { q: `dns-version.${Z}`, type: 'A', rcode: NX },
  { q: svc('redis.default'), type: 'TXT', an: [] },
  { q: svc('nosuch.default'), type: 'TXT', rcode: NX },
  { q: svc('redis.default'), type: 'MX', an: [] },
  { q: svc('redis.default'), type: 'HINFO', an: [] },
  { q: svc('redis.default'), type: 'ANY', an: [] },
  { q: svc('nosuch.default'), type: 'ANY', rcode: NX },
  { q: svc('redis.default'), type: 'SOA', an: [] },
  { q: svc('nosuch.default'), type: 'SOA', an: [] },
  { q: svc('redis.default'), type: 'NS', an: [] },
  { q: svc('nosuch.default'), type: 'NS', rcode: NX },
  { q: svc('a.b.c.redis.default'), type: 'A', rcode: NX },
  { q: svc('*.default'), type: 'A', rcode: NX },
  { q: svc('any.default'), type: 'A', rcode: NX },
  { q: svc('nosuch.nosuchns'), type: 'A', rcode: NX },
];

t.test(`kubernetes answers (${cases.length} cases, real dig)`, async (t) => {
  t.ok(cases.length >= 120, 'at least 120 cases');
  const run = async (c: Case) => {
    const r = await dig(c.port ?? main, [c.q, c.type, '+norec']);
    const label = `${c.q} ${c.type}`;
    const rcode = c.rcode ?? 'NOERROR';
    const an = c.an ?? [];
    const ns = c.ns ?? (an.length === 0 ? [soa()] : []);
    t.equal(r.status, rcode, `${label}: rcode`);
    t.ok(r.flags.includes('aa'), `${label}: AA`);
    t.same(r.answer.map(line).sort(), [...an].sort(), `${label}: answer`);
    t.same(r.authority.map(line).sort(), [...ns].sort(), `${label}: authority`);
    if (c.ar) t.same(r.additional.map(line).sort(), [...c.ar].sort(), `${label}: additional`);
  };
  for (let i = 0; i < cases.length; i += 8) await Promise.all(cases.slice(i, i + 8).map(run));
});

t.test('apex NS and ns.dns name: the server\'s own addresses', async (t) => {
  const ips = localAddresses({ peers: new Map() });
  const ns = await dig(main, [Z, 'NS']);
  const a = await dig(main, [`ns.dns.${Z}`, 'A']);
  const v4 = ips.filter((ip) => ip.includes('.'));
  if (ips.length === 0) {
    t.same(ns.answer, [], 'no non-loopback address: no NS record');
  } else {
    t.same(ns.answer.map(line), [`${Z} 30 IN NS ns.dns.${Z}`]);
    t.same(ns.additional.map((r) => r.data).sort(), [...ips].sort());
  }
  t.same(a.answer.map((r) => r.data).sort(), v4.sort());
  t.equal(a.status, 'NOERROR');
});

t.test('options: namespaces, endpoint_pod_names, pods verified, ignore empty_service, ttl, CIDR zone', async (t) => {
  const port = await serve(`cluster.local 10.9.0.0/16 {
  kubernetes {
    manifests ${dir}
    namespaces testns
    endpoint_pod_names
    pods verified
    ignore empty_service
    ttl 3600
  }
}
`);
  const soa3600 = soa(Z, 300, 3600);
  const b: Case[] = [
    { q: svc('multi-pod-2.multi.testns'), type: 'A', an: [A(svc('multi-pod-2.multi.testns'), '10.9.0.2', 3600)], port },
    { q: svc('10-9-0-2.multi.testns'), type: 'A', rcode: NX, ns: [soa3600], port },
    { q: '2.0.9.10.in-addr.arpa.', type: 'PTR', an: [PTR('2.0.9.10.in-addr.arpa.', svc('multi-pod-2.multi.testns'), 3600)], port },
    { q: '1.3.9.10.in-addr.arpa.', type: 'PTR', an: [PTR('1.3.9.10.in-addr.arpa.', svc('ep1.shared-a.testns'), 3600)], port },
    { q: '9.9.9.10.in-addr.arpa.', type: 'PTR', rcode: NX, ns: [soa('9.10.in-addr.arpa.', 300, 3600)], port },
    { q: svc('redis.default'), type: 'A', rcode: NX, ns: [soa3600], port },
    { q: `default.svc.${Z}`, type: 'A', rcode: NX, ns: [soa3600], port },
    { q: `10-9-4-4.testns.pod.${Z}`, type: 'A', an: [A(`10-9-4-4.testns.pod.${Z}`, '10.9.4.4', 3600)], port },
    { q: `10-9-4-5.testns.pod.${Z}`, type: 'A', rcode: NX, ns: [soa3600], port },
    { q: `1-2-3-4.testns.pod.${Z}`, type: 'A', rcode: NX, ns: [soa3600], port },
    { q: svc('empty.testns'), type: 'A', rcode: NX, ns: [soa3600], port },
    { q: svc('alpha.multi.testns'), type: 'A', an: [A(svc('alpha.multi.testns'), '10.9.0.1', 3600)], port },
    { q: `dns-version.${Z}`, type: 'TXT', an: [`dns-version.${Z} 28800 IN TXT "1.1.0"`], port },
  ];
  for (const c of b) {
    const r = await dig(port, [c.q, c.type]);
    t.equal(r.status, c.rcode ?? 'NOERROR', `${c.q} ${c.type}: rcode`);
    t.same(r.answer.map(line).sort(), (c.an ?? []).sort(), `${c.q} ${c.type}: answer`);
    t.same(r.authority.map(line), c.ns ?? [], `${c.q} ${c.type}: authority`);
  }
});

t.test('options: noendpoints, namespace_labels, fallthrough to the next plugin', async (t) => {
  const port = await serve(`cluster.local in-addr.arpa {
  kubernetes {
    manifests ${dir}
    noendpoints
    namespace_labels team=dns
    fallthrough in-addr.arpa
  }
  whoami
}
`);
  const q = async (name: string, type: string) => dig(port, [name, type]);
  t.equal((await q(svc('multi.testns'), 'A')).status, NX, 'headless without endpoint watch');
  t.equal((await q(svc('alpha.multi.testns'), 'A')).status, NX, 'endpoint names without endpoint watch');
  t.same((await q(svc('empty.testns'), 'A')).answer.map((r) => r.data), ['10.0.0.9'], 'ClusterIP still answers');
  t.equal((await q(svc('redis.default'), 'A')).status, NX, 'namespace without the label');
  t.same((await q('9.0.0.10.in-addr.arpa.', 'PTR')).answer.map((r) => r.data), [svc('empty.testns')]);
  const fell = await q('1.0.9.10.in-addr.arpa.', 'PTR');
  t.equal(fell.status, 'NOERROR', 'reverse miss falls through');
  t.ok(fell.additional.some((r) => r.type === 'A' && r.data === '127.0.0.1'), 'whoami answered');
  const nx = await q(svc('nosuch.testns'), 'A');
  t.equal(nx.status, NX, 'forward miss outside the fallthrough zones');
});

t.test('option: labels selects Services and EndpointSlices', async (t) => {
  const port = await serve(`cluster.local {
  kubernetes {
    manifests ${dir}
    labels dns=yes-please
  }
}
`);
  const r = await dig(port, [svc('multi.testns'), 'A']);
  t.same(r.answer.map((x) => x.data).sort(), ['10.9.0.1', '10.9.0.2'], 'only the labelled slice');
  t.equal((await dig(port, [svc('redis.default'), 'A'])).status, NX, 'unlabelled service does not exist');
});

t.test('live update: editing the manifests changes answers within 2 s', async (t) => {
  const live = tempDir('live');
  t.teardown(() => rmSync(live, { recursive: true, force: true }));
  const file = join(live, 'cluster.yaml');
  writeFileSync(file, readFileSync(join(root, 'zones', 'cluster.yaml'), 'utf8'));
  const port = await serve(`cluster.local {\n  kubernetes {\n    manifests ${file}\n  }\n}\n`);
  const name = svc('redis.default');
  t.same((await dig(port, [name, 'A'])).answer.map((r) => r.data), ['10.103.50.52']);
  const before = (await dig(port, [`${Z}`, 'SOA'])).answer[0]!.data.split(' ')[2];
  writeFileSync(file, readFileSync(file, 'utf8').replace('clusterIP: 10.103.50.52', 'clusterIP: 10.103.50.53')
    + '---\napiVersion: v1\nkind: Service\nmetadata: {name: brand-new, namespace: fresh}\nspec: {clusterIP: 10.1.1.1, ports: [{port: 80}]}\n');
  const start = Date.now();
  let got: string[] = [];
  while (Date.now() - start < 2000) {
    got = (await dig(port, [name, 'A'])).answer.map((r) => r.data);
    if (got[0] === '10.103.50.53') break;
    await sleep(50);
  }
  t.same(got, ['10.103.50.53'], `changed within ${Date.now() - start} ms`);
  t.same((await dig(port, [svc('brand-new.fresh'), 'A'])).answer.map((r) => r.data), ['10.1.1.1'], 'new service in an implicit namespace');
  const after = (await dig(port, [`${Z}`, 'SOA'])).answer[0]!.data.split(' ')[2];
  t.ok(Number(after) > Number(before), 'SOA serial moved');
  // A broken edit keeps the last good answers.
  writeFileSync(file, readFileSync(file, 'utf8').replace('clusterIP: 10.103.50.53', 'clusterIP: not-an-ip'));
  await sleep(1500);
  t.same((await dig(port, [name, 'A'])).answer.map((r) => r.data), ['10.103.50.53'], 'bad document: last good object stays');
});

t.test('setup errors name the option', async (t) => {
  const bad: [string, RegExp][] = [
    [`kubernetes {\n manifests ${dir}\n bogus 1\n }`, /Corefile:4 - Error during setup: plugin\/kubernetes: unknown property 'bogus'/],
    [`kubernetes {\n manifests ${dir}\n ttl 3601\n }`, /ttl must be in range \[0, 3600\]: 3601/],
    [`kubernetes {\n manifests ${dir}\n pods sometimes\n }`, /wrong value for pods: sometimes/],
    [`kubernetes {\n manifests ${dir}\n namespaces a\n namespace_labels x=y\n }`, /namespaces and namespace_labels cannot both be set/],
    [`kubernetes {\n manifests ${dir}\n ignore everything\n }`, /unable to parse ignore value/],
    [`kubernetes {\n manifests ${dir}\n tls a b\n }`, /tls: wrong argument count/],
    [`kubernetes {\n manifests ${dir}\n startup_timeout soon\n }`, /Corefile:4 .*startup_timeout: invalid duration 'soon'/],
    [`kubernetes {\n manifests ${dir}\n labels a b c\n }`, /unable to parse labels selector/],
    [`kubernetes {\n manifests /nonexistent/path\n }`, /manifests: \/nonexistent\/path does not exist/],
    [`kubernetes {\n manifests ${dir}\n zonal\n }`, /'zonal' is not supported/],
    [`kubernetes in-addr.arpa {\n manifests ${dir}\n }`, /non-reverse zone name must be used/],
  ];
  for (const [body, re] of bad) {
    await t.rejects(startServer(`cluster.local in-addr.arpa {\n${body}\n}\n`), re, String(re));
  }
});
