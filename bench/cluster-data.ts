/** Synthetic cluster of N Services × E endpoints, as manifests for clusterdns and as zone files for knotd. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Synthetic { manifestFile: string; knotZones: Record<string, string>; names: string[] }

const svcIP = (i: number) => `10.96.${(i >> 8) & 255}.${i & 255}`;

/** Endpoint addresses must be unique: 10.(128+j).(i>>8).(i&255) for endpoint j of service i. */
function endpointIP(i: number, j: number): string {
  return `10.${128 + j}.${(i >> 8) & 255}.${i & 255}`;
}

export function synthesize(dir: string, services: number, endpoints: number): Synthetic {
  const items: unknown[] = [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } }];
  const zone: string[] = ['$ORIGIN cluster.local.', '$TTL 30',
    '@ IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 30', '@ IN NS ns.dns.cluster.local.', 'ns.dns IN A 127.0.0.1'];
  const rev: string[] = ['$ORIGIN 96.10.in-addr.arpa.', '$TTL 30',
    '@ IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 30', '@ IN NS ns.dns.cluster.local.'];
  const names: string[] = [];
  for (let i = 0; i < services; i++) {
    const name = `svc${i}`;
    items.push({
      apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default' },
      spec: { type: 'ClusterIP', clusterIP: svcIP(i), clusterIPs: [svcIP(i)], ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080 }] },
    });
    if (endpoints > 0) {
      items.push({
        apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', addressType: 'IPv4',
        metadata: { name: `${name}-abcde`, namespace: 'default', labels: { 'kubernetes.io/service-name': name } },
        endpoints: Array.from({ length: endpoints }, (_, j) => ({ addresses: [endpointIP(i, j)], conditions: { ready: true } })),
        ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
      });
    }
    const fq = `${name}.default.svc`;
    zone.push(`${fq} IN A ${svcIP(i)}`, `_http._tcp.${fq} IN SRV 0 100 80 ${fq}.cluster.local.`);
    rev.push(`${i & 255}.${(i >> 8) & 255} IN PTR ${fq}.cluster.local.`);
    names.push(`${fq}.cluster.local`);
  }
  const manifestFile = join(dir, 'cluster.json');
  writeFileSync(manifestFile, JSON.stringify({ apiVersion: 'v1', kind: 'List', items }));
  return { manifestFile, names, knotZones: { 'cluster.local': zone.join('\n') + '\n', '96.10.in-addr.arpa': rev.join('\n') + '\n' } };
}


/** dnsperf query file: `hit` share of existing A names, the rest NXDOMAIN search-path misses. */
export function plainQueries(file: string, names: string[], lines = 10_000, hit = 0.9): void {
  const out: string[] = [];
  for (let i = 0; i < lines; i++) {
    out.push(i % 10 < hit * 10 ? `${names[(i * 7919) % names.length]} A` : `nx${i}.default.svc.cluster.local A`);
  }
  writeFileSync(file, out.join('\n') + '\n');
}

/** The cluster-name mix: 90 % existing A/AAAA/SRV/PTR, 10 % NXDOMAIN search-path misses. */
export function mixQueries(file: string, names: string[], lines = 10_000): void {
  const out: string[] = [];
  for (let i = 0; i < lines; i++) {
    const k = (i * 7919) % names.length;
    const n = names[k]!;
    switch (i % 10) {
      case 0: case 1: case 2: case 3: out.push(`${n} A`); break;
      case 4: case 5: out.push(`${n} AAAA`); break;
      case 6: out.push(`_http._tcp.${n} SRV`); break;
      case 7: case 8: out.push(`${k & 255}.${(k >> 8) & 255}.96.10.in-addr.arpa PTR`); break;
      default: out.push(`${n.split('.')[0]}.example.com.default.svc.cluster.local A`);
    }
  }
  writeFileSync(file, out.join('\n') + '\n');
}
