/**
 * node-cache's Corefile placeholders (kubernetes/dns cmd/node-cache/app/configmap.go), filled in the
 * text before it reaches the Corefile parser. Admins usually sed the local ones away when they apply the
 * manifest; the cluster DNS IP and the upstream servers are left for the agent.
 */

export interface PlaceholderValues {
  localIPs: readonly string[];
  /** ClusterIP of the -upstreamsvc Service, from its `<NAME>_SERVICE_HOST` variable; undefined when unset. */
  clusterDNS: string | undefined;
  /** The Service environment variable consulted, for the error message. */
  clusterDNSVar: string;
  /** What `forward . __PILLAR__UPSTREAM__SERVERS__` gets: node-cache puts the resolv.conf path there. */
  upstreamServers: string;
}

export const LOCAL_DNS = '__PILLAR__LOCAL__DNS__';
export const DNS_SERVER = '__PILLAR__DNS__SERVER__';
export const CLUSTER_DNS = '__PILLAR__CLUSTER__DNS__';
export const UPSTREAM_SERVERS = '__PILLAR__UPSTREAM__SERVERS__';

/** The environment variable kubelet sets for a Service (`kube-dns-upstream` -> `KUBE_DNS_UPSTREAM_SERVICE_HOST`). */
export function serviceHostVar(service: string): string {
  return `${service.replaceAll('-', '_').toUpperCase()}_SERVICE_HOST`;
}

export function fillPlaceholders(text: string, v: PlaceholderValues): string {
  if (text.includes(CLUSTER_DNS) && !v.clusterDNS) {
    // node-cache writes "<nil>" here and CoreDNS then fails on it; say what is missing instead.
    throw new Error(`${CLUSTER_DNS} is used but ${v.clusterDNSVar} is not set: the -upstreamsvc Service must exist before the pod starts (kubelet sets the variable at container start)`);
  }
  const first = v.localIPs[0]!.includes(':') ? `[${v.localIPs[0]}]` : v.localIPs[0]!;
  return text
    // `health __PILLAR__LOCAL__DNS__:8080` needs one address; node-cache would write all of them there.
    .replaceAll(`${LOCAL_DNS}:`, `${first}:`)
    .replaceAll(LOCAL_DNS, v.localIPs.join(' '))
    // The -localip list already holds the kube-dns IP in the transparent setup (node-cache does the same).
    .replaceAll(DNS_SERVER, '')
    .replaceAll(CLUSTER_DNS, v.clusterDNS ?? '')
    .replaceAll(UPSTREAM_SERVERS, v.upstreamServers);
}
