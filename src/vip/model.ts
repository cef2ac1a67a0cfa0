import type { EndpointSlice, Service, Snapshot } from '../cluster/types.js';
import { cidrFamily, ipFamily } from '../pkg/ip.js';
import { endpointChain, joinHostPort, serviceChains } from './hash.js';

export type Family = 4 | 6;
export type Proto = 'tcp' | 'udp' | 'sctp';

export interface EndpointModel {
  ip: string;
  port: number;
  /** `ip:port`, `[ip]:port` for IPv6. */
  hostPort: string;
  /** KUBE-SEP chain. */
  chain: string;
  ready: boolean;
  serving: boolean;
  terminating: boolean;
  /** On this node (EndpointSlice nodeName = our node name): what Local traffic policies may use. */
  local: boolean;
}

/** Desired state of one service port in one IP family: everything a renderer needs, already decided. */
export interface ServicePortModel {
  /** `ns/name`: the unit of change tracking (Service and EndpointSlice events carry it). */
  service: string;
  /** kube-proxy's ServicePortName string: `ns/name` or `ns/name:portName`. */
  spn: string;
  proto: Proto;
  port: number;
  clusterIP: string;
  /** 0 when none. */
  nodePort: number;
  externalIPs: string[];
  loadBalancerIPs: string[];
  sourceRanges: string[];
  /** ClientIP affinity timeout in seconds; 0 when sessionAffinity is None. */
  affinityTimeout: number;
  internalLocal: boolean;
  /** externalTrafficPolicy Local on an externally reachable port (kube-proxy's ExternalPolicyLocal). */
  externalLocal: boolean;
  healthCheckNodePort: number;
  chains: { svc: string; svl: string; ext: string; fw: string };
  /** Endpoints Cluster policy spreads over (ready, else serving && terminating). */
  clusterEndpoints: EndpointModel[];
  /** Endpoints Local policy spreads over (local ready, else local serving && terminating). */
  localEndpoints: EndpointModel[];
  /** Union of both: the SEP chains to write. */
  reachable: EndpointModel[];
  /** Any usable endpoint anywhere: false means REJECT instead of DNAT. */
  hasEndpoints: boolean;
}

export interface FamilyModel {
  family: Family;
  /** Sorted by spn then protocol, so rendering is deterministic. */
  ports: ServicePortModel[];
  /** Total SEP chains: kube-proxy drops per-endpoint comments above 1000. */
  endpointCount: number;
}

/**
 * The previous model and the services changed since: ports of unchanged services are taken over as they
 * are (same objects), which keeps a partial sync's cost proportional to the change, not to the cluster.
 */
export interface ModelReuse {
  prev: FamilyModel;
  changed: ReadonlySet<string>;
}

export interface ModelOptions {
  family: Family;
  /** Endpoints whose EndpointSlice nodeName equals this are local. */
  nodeName: string;
}

/** kube-proxy skips services claimed by another proxy through this label. */
const PROXY_NAME_LABEL = 'service.kubernetes.io/service-proxy-name';

const byString = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

function ofFamily(ips: string[], family: Family): string[] {
  return ips.filter((ip) => ipFamily(ip) === family);
}

/** Endpoints of one service port from all its slices, deduplicated by ip:port, sorted like kube-proxy (ip:port string). */
function collectEndpoints(
  slices: EndpointSlice[], portName: string, proto: Service['ports'][number]['protocol'], spn: string,
  family: Family, nodeName: string,
): EndpointModel[] {
  const addressType = family === 4 ? 'IPv4' : 'IPv6';
  const byHostPort = new Map<string, EndpointModel>();
  for (const sl of slices) {
    if (sl.addressType !== addressType) continue;
    const sp = sl.ports.find((p) => p.name === portName && p.protocol === proto);
    if (!sp || sp.port === null) continue;
    for (const ep of sl.endpoints) {
      // kube-proxy uses the first address only: the API documents the rest as ignored by consumers.
      const ip = ep.addresses[0];
      if (!ip || ipFamily(ip) !== family) continue;
      const hostPort = joinHostPort(ip, sp.port);
      const prev = byHostPort.get(hostPort);
      // The same endpoint in two slices (mid-move between slices): the more usable copy wins.
      if (prev && (prev.ready || (!ep.ready && prev.serving))) continue;
      byHostPort.set(hostPort, {
        ip, port: sp.port, hostPort, chain: endpointChain(spn, proto.toLowerCase(), hostPort),
        ready: ep.ready, serving: ep.serving, terminating: ep.terminating, local: ep.nodeName === nodeName,
      });
    }
  }
  return [...byHostPort.values()].sort((a, b) => byString(a.hostPort, b.hostPort));
}

/** kube-proxy's CategorizeEndpoints (pkg/proxy/topology.go) without topology hints. */
function categorize(
  eps: EndpointModel[], usesCluster: boolean, usesLocal: boolean,
): Pick<ServicePortModel, 'clusterEndpoints' | 'localEndpoints' | 'reachable' | 'hasEndpoints'> {
  const servingTerminating = (e: EndpointModel) => e.serving && e.terminating;
  let clusterEndpoints: EndpointModel[] = [];
  if (usesCluster) {
    clusterEndpoints = eps.filter((e) => e.ready);
    if (clusterEndpoints.length === 0) clusterEndpoints = eps.filter(servingTerminating);
  }
  let hasEndpoints = clusterEndpoints.length > 0;
  if (!usesLocal) return { clusterEndpoints, localEndpoints: [], reachable: clusterEndpoints, hasEndpoints };

  if (eps.some((e) => e.ready || servingTerminating(e))) hasEndpoints = true;
  let localEndpoints = eps.filter((e) => e.local && e.ready);
  const localFallback = localEndpoints.length === 0;
  if (localFallback) localEndpoints = eps.filter((e) => e.local && servingTerminating(e));
  if (!usesCluster) return { clusterEndpoints, localEndpoints, reachable: localEndpoints, hasEndpoints };
  // Local ready endpoints are a subset of the cluster ones unless Local fell back to terminating ones.
  if (!localFallback) return { clusterEndpoints, localEndpoints, reachable: clusterEndpoints, hasEndpoints };
  const union = new Map(clusterEndpoints.map((e) => [e.hostPort, e]));
  for (const e of localEndpoints) union.set(e.hostPort, e);
  const reachable = [...union.values()].sort((a, b) => byString(a.hostPort, b.hostPort));
  return { clusterEndpoints, localEndpoints, reachable, hasEndpoints };
}

/**
 * Pure: the desired VIP state of one IP family, per service port, from a store snapshot. A service is
 * programmed in a family only when it has a ClusterIP of that family (kube-proxy runs one proxier per family).
 */
export function buildModel(snap: Pick<Snapshot, 'services' | 'slices'>, opts: ModelOptions, reuse?: ModelReuse): FamilyModel {
  // Reuse: only changed services are looked at, without building a key per object for the others, so a
  // partial sync at 10k services costs what its change costs plus a pass over the previous ports.
  const changed = reuse && byNamespace(reuse.changed);
  const wanted = (ns: string, name: string) => !changed || changed.get(ns)?.has(name) === true;

  const slicesBySvc = new Map<string, EndpointSlice[]>();
  for (const sl of snap.slices) {
    if (!wanted(sl.namespace, sl.service)) continue;
    const k = `${sl.namespace}/${sl.service}`;
    const list = slicesBySvc.get(k);
    if (list) list.push(sl);
    else slicesBySvc.set(k, [sl]);
  }
  for (const list of slicesBySvc.values()) list.sort((a, b) => byString(a.name, b.name));

  const ports: ServicePortModel[] = [];
  for (const svc of snap.services) {
    if (wanted(svc.namespace, svc.name)) ports.push(...servicePorts(svc, slicesBySvc, opts));
  }
  ports.sort(byPort);
  const all = reuse ? mergeSorted(reuse.prev.ports.filter((p) => !reuse.changed.has(p.service)), ports) : ports;
  let endpointCount = 0;
  for (const p of all) endpointCount += p.reachable.length;
  return { family: opts.family, ports: all, endpointCount };
}

const byPort = (a: ServicePortModel, b: ServicePortModel) => byString(a.spn, b.spn) || byString(a.proto, b.proto);

function byNamespace(services: ReadonlySet<string>): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const s of services) {
    const slash = s.indexOf('/');
    const ns = s.slice(0, slash);
    const names = out.get(ns);
    if (names) names.add(s.slice(slash + 1));
    else out.set(ns, new Set([s.slice(slash + 1)]));
  }
  return out;
}

/** Two lists sorted by `byPort` into one. */
function mergeSorted(a: ServicePortModel[], b: ServicePortModel[]): ServicePortModel[] {
  if (b.length === 0) return a;
  const out: ServicePortModel[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) out.push(byPort(a[i]!, b[j]!) <= 0 ? a[i++]! : b[j++]!);
  while (i < a.length) out.push(a[i++]!);
  while (j < b.length) out.push(b[j++]!);
  return out;
}

/** The ports one Service programs in this family (none for ExternalName, headless, another proxy's, or no ClusterIP). */
function servicePorts(svc: Service, slicesBySvc: Map<string, EndpointSlice[]>, opts: ModelOptions): ServicePortModel[] {
  const { family, nodeName } = opts;
  if (svc.type === 'ExternalName' || svc.headless || svc.labels[PROXY_NAME_LABEL] !== undefined) return [];
  const clusterIP = ofFamily(svc.clusterIPs, family)[0];
  if (!clusterIP) return [];
  const service = `${svc.namespace}/${svc.name}`;
  const slices = slicesBySvc.get(service) ?? [];
  const externalIPs = [...new Set(ofFamily(svc.externalIPs, family))].sort(byString);
  const loadBalancerIPs = svc.type === 'LoadBalancer' ? [...new Set(ofFamily(svc.loadBalancerIPs, family))].sort(byString) : [];
  const sourceRanges = svc.loadBalancerSourceRanges.filter((c) => cidrFamily(c) === family);
  return svc.ports.map((p) => {
    const spn = p.name ? `${service}:${p.name}` : service;
    const proto = p.protocol.toLowerCase() as Proto;
    const nodePort = (svc.type === 'NodePort' || svc.type === 'LoadBalancer') && p.nodePort ? p.nodePort : 0;
    const externallyAccessible = nodePort !== 0 || externalIPs.length > 0 || loadBalancerIPs.length > 0;
    const internalLocal = svc.internalTrafficPolicy === 'Local';
    const externalLocal = externallyAccessible && svc.externalTrafficPolicy === 'Local';
    // Cluster endpoints are needed even with eTP=Local: pod-originated traffic to external IPs short-circuits to them.
    const usesCluster = !internalLocal || externallyAccessible;
    const usesLocal = internalLocal || externalLocal;
    const eps = collectEndpoints(slices, p.name, p.protocol, spn, family, nodeName);
    return {
      service, spn, proto, port: p.port, clusterIP, nodePort, externalIPs, loadBalancerIPs, sourceRanges,
      affinityTimeout: svc.sessionAffinity === 'ClientIP' ? svc.sessionAffinityTimeout : 0,
      internalLocal, externalLocal,
      healthCheckNodePort: externalLocal ? svc.healthCheckNodePort ?? 0 : 0,
      chains: serviceChains(spn, proto),
      ...categorize(eps, usesCluster, usesLocal),
    };
  });
}

/** What a service port's traffic policies allow, as kube-proxy decides it; both renderers build on this. */
export interface Reachability {
  /** ClusterIP traffic has an endpoint it may use (a local one under internalTrafficPolicy Local). */
  hasInternal: boolean;
  /** NodePort/externalIP/LB traffic has an endpoint it may use (a local one under externalTrafficPolicy Local). */
  hasExternal: boolean;
  /** The external chain exists whenever anything is reachable from outside: it also short-circuits pod and node traffic. */
  usesExt: boolean;
}

export function reachability(sp: ServicePortModel): Reachability {
  const externallyAccessible = sp.nodePort !== 0 || sp.externalIPs.length > 0 || sp.loadBalancerIPs.length > 0;
  return {
    hasInternal: sp.internalLocal ? sp.localEndpoints.length > 0 : sp.hasEndpoints,
    hasExternal: sp.externalLocal ? sp.localEndpoints.length > 0 : sp.hasEndpoints,
    usesExt: sp.hasEndpoints && externallyAccessible,
  };
}
