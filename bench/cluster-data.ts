/** Synthetic cluster of N Services × E endpoints, as manifests for clusterdns and as zone files for knotd. */
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Synthetic {
  manifestFile: string;
  knotZones: Record<string, string>;
  /** `svcN.default.svc.cluster.local`, index = N. */
  names: string[];
  /** Moves service `i` to ClusterIP `ip` by rewriting the manifest file atomically (as a ConfigMap swap would). */
  moveService(i: number, ip: string): void;
}

export interface PodSpec { name: string; namespace: string; ip: string }

const svcIP = (i: number) => `10.96.${(i >> 8) & 255}.${i & 255}`;

/** Endpoint addresses must be unique: 10.(128+j).(i>>8).(i&255) for endpoint j of service i. */
function endpointIP(i: number, j: number): string {
  return `10.${128 + j}.${(i >> 8) & 255}.${i & 255}`;
}

/** `pods` are added as Running pods (autopath @kubernetes finds the client's namespace by its source IP). */
export function synthesize(dir: string, services: number, endpoints: number, pods: PodSpec[] = []): Synthetic {
  const items: Record<string, unknown>[] = [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } }];
  for (const p of pods) {
    items.push({ apiVersion: 'v1', kind: 'Pod', metadata: { name: p.name, namespace: p.namespace }, spec: { containers: [{ name: 'c', image: 'x' }] },
      status: { phase: 'Running', podIP: p.ip, podIPs: [{ ip: p.ip }] } });
  }
  const serviceItem: Record<string, unknown>[] = [];
  const zone: string[] = ['$ORIGIN cluster.local.', '$TTL 30',
    '@ IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 30', '@ IN NS ns.dns.cluster.local.', 'ns.dns IN A 127.0.0.1'];
  const rev: string[] = ['$ORIGIN 96.10.in-addr.arpa.', '$TTL 30',
    '@ IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 30', '@ IN NS ns.dns.cluster.local.'];
  const names: string[] = [];
  for (let i = 0; i < services; i++) {
    const name = `svc${i}`;
    const svc = {
      apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default' },
      spec: { type: 'ClusterIP', clusterIP: svcIP(i), clusterIPs: [svcIP(i)], ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080 }] },
    };
    serviceItem.push(svc);
    items.push(svc);
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
  const write = () => {
    writeFileSync(`${manifestFile}.tmp`, JSON.stringify({ apiVersion: 'v1', kind: 'List', items }));
    renameSync(`${manifestFile}.tmp`, manifestFile);
  };
  write();
  const moveService = (i: number, ip: string) => {
    const spec = serviceItem[i]!.spec as { clusterIP: string; clusterIPs: string[] };
    spec.clusterIP = ip;
    spec.clusterIPs = [ip];
    write();
  };
  return { manifestFile, names, moveService, knotZones: { 'cluster.local': zone.join('\n') + '\n', '96.10.in-addr.arpa': rev.join('\n') + '\n' } };
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

/**
 * An external zone for the upstream: `h0..h{n-1}.example.com` with A and AAAA (TTL 3600, so caches in
 * front keep them for the whole run) and a wildcard under `miss.example.com` so every unique name there
 * is a positive answer the cache has never seen.
 */
export function externalZone(n: number): { origin: string; text: string; names: string[] } {
  const lines = ['$ORIGIN example.com.', '$TTL 3600', '@ IN SOA ns.example.com. hostmaster.example.com. 1 7200 1800 86400 3600',
    '@ IN NS ns.example.com.', 'ns IN A 127.0.0.1', '*.miss IN A 192.0.2.254'];
  const names: string[] = [];
  for (let i = 0; i < n; i++) {
    lines.push(`h${i} IN A 192.0.${2 + (i >> 8)}.${i & 255}`, `h${i} IN AAAA 2001:db8::${i.toString(16)}`);
    names.push(`h${i}.example.com`);
  }
  return { origin: 'example.com', text: lines.join('\n') + '\n', names };
}
