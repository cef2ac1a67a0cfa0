/**
 * Slim, normalised cluster objects: only the fields DNS and the VIP programmer read. Sources (manifests,
 * informers) convert API objects into these; nothing else of an API object is kept.
 */

export type Protocol = 'TCP' | 'UDP' | 'SCTP';

export interface ServicePort {
  /** '' when unnamed. */
  name: string;
  port: number;
  protocol: Protocol;
  /** Number or the name of a container port (resolved per EndpointSlice port name). */
  targetPort: number | string;
  nodePort?: number;
}

export interface Service {
  namespace: string;
  name: string;
  type: 'ClusterIP' | 'NodePort' | 'LoadBalancer' | 'ExternalName';
  /** `clusterIPs` (fallback `clusterIP`), canonical text form; empty for headless and ExternalName. */
  clusterIPs: string[];
  /** `clusterIP: None`. */
  headless: boolean;
  /** Lower-case FQDN without trailing dot, for ExternalName services. */
  externalName?: string;
  ports: ServicePort[];
  externalIPs: string[];
  /** status.loadBalancer.ingress[].ip (those with `ipMode: Proxy` excluded): what the VIP programmer serves. */
  loadBalancerIPs: string[];
  /**
   * Every status.loadBalancer.ingress[] entry as DNS (k8s_external) reads it, like CoreDNS: its ip whatever
   * its ipMode, else its hostname (lower case, no trailing dot; cloud balancers that publish only a name).
   * The same array as `loadBalancerIPs` when the two agree.
   */
  loadBalancerIngress: string[];
  loadBalancerSourceRanges: string[];
  sessionAffinity: 'None' | 'ClientIP';
  /** sessionAffinityConfig.clientIP.timeoutSeconds (default 10800). */
  sessionAffinityTimeout: number;
  externalTrafficPolicy: 'Cluster' | 'Local';
  internalTrafficPolicy: 'Cluster' | 'Local';
  healthCheckNodePort?: number;
  labels: Record<string, string>;
}

export interface Endpoint {
  /** Canonical text addresses (IPv6 compressed, lower case). */
  addresses: string[];
  /**
   * Addresses exactly as written in the object: CoreDNS builds dashed names from these. The same array
   * as `addresses` when every address was written in canonical form (store objects are never mutated).
   */
  rawAddresses: string[];
  /** conditions.ready; absent means ready. */
  ready: boolean;
  serving: boolean;
  terminating: boolean;
  hostname?: string;
  nodeName?: string;
  zone?: string;
  targetRef?: { kind: string; name: string; namespace?: string };
}

export interface EndpointPort {
  /** '' when unnamed. */
  name: string;
  /** null for a portless slice. */
  port: number | null;
  protocol: Protocol;
}

export interface EndpointSlice {
  namespace: string;
  name: string;
  /** The `kubernetes.io/service-name` label. */
  service: string;
  addressType: 'IPv4' | 'IPv6' | 'FQDN';
  endpoints: Endpoint[];
  ports: EndpointPort[];
  labels: Record<string, string>;
}

export interface Namespace {
  name: string;
  labels: Record<string, string>;
}

export interface Pod {
  namespace: string;
  name: string;
  /** status.podIP (canonical). */
  ip: string;
  /** spec.hostNetwork: the pod's address is its node's, shared with the node's other such pods. */
  hostNetwork: boolean;
  labels: Record<string, string>;
}

export type Kind = 'Service' | 'EndpointSlice' | 'Namespace' | 'Pod';

export interface StoreChange {
  kind: Kind;
  op: 'add' | 'update' | 'delete';
  /** `ns/name` (or `name` for namespaces). */
  key: string;
  /** `ns/service` the change affects (Service and EndpointSlice changes). */
  service?: string;
  /** True when answers can change (the SOA serial moved). */
  dns: boolean;
}

export interface Snapshot {
  services: Service[];
  slices: EndpointSlice[];
  namespaces: Namespace[];
  pods: Pod[];
}
