import { canonicalCidr, canonicalIP, ipFamily } from '../pkg/ip.js';
import type { Endpoint, EndpointPort, EndpointSlice, Namespace, Pod, Protocol, Service, ServicePort } from './types.js';

/**
 * API object JSON (as the API server or a manifest file has it) → slim store objects. Pure functions,
 * shared by the manifests reader and the informers. Invalid input throws ConvertError naming the object
 * and the field path, so a user can find the line to fix.
 */
export class ConvertError extends Error {
  constructor(readonly object: string, readonly field: string, problem: string) {
    super(`${object}: ${field ? field + ': ' : ''}${problem}`);
    this.name = 'ConvertError';
  }
}

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const show = (v: unknown) => JSON.stringify(v) ?? String(v);

/** DNS-1123 label (namespaces, endpoint hostnames) and DNS-1035 label (service names) are both accepted here. */
const LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
/** Pods and slices may have DNS-1123 subdomain names. */
const SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Reads fields of one object and reports problems with the object's identity and the field path. */
class Reader {
  constructor(readonly id: string) {}

  fail(field: string, problem: string): ConvertError {
    return new ConvertError(this.id, field, problem);
  }

  obj(v: unknown, field: string): Obj {
    if (v === undefined || v === null) return {};
    if (!isObj(v)) throw this.fail(field, `want an object, got ${show(v)}`);
    return v;
  }

  list(v: unknown, field: string): unknown[] {
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) throw this.fail(field, `want a list, got ${show(v)}`);
    return v;
  }

  str(v: unknown, field: string): string | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') throw this.fail(field, `want a string, got ${show(v)}`);
    return v;
  }

  bool(v: unknown, field: string): boolean | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'boolean') throw this.fail(field, `want true or false, got ${show(v)}`);
    return v;
  }

  int(v: unknown, field: string, min: number, max: number): number | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      throw this.fail(field, `want an integer ${min}-${max}, got ${show(v)}`);
    }
    return v;
  }

  ip(v: unknown, field: string): { raw: string; ip: string } {
    const raw = this.str(v, field);
    const ip = raw === undefined ? undefined : canonicalIP(raw);
    if (ip === undefined) throw this.fail(field, `want an IP address, got ${show(v)}`);
    // The input string when it already is canonical: a store of 100k endpoints keeps one copy, not two.
    return { raw: raw!, ip: ip === raw ? raw : ip };
  }

  /** `ip/len`, trimmed (the API server and kube-proxy accept surrounding spaces); rules are built from it verbatim. */
  cidr(v: unknown, field: string): string {
    const cidr = canonicalCidr(this.str(v, field)?.trim() ?? '');
    if (cidr === undefined) throw this.fail(field, `want a CIDR like 10.0.0.0/8, got ${show(v)}`);
    return cidr;
  }

  /** Port names are DNS labels (API validation); they end up in chain hashes and rule comments. */
  portName(v: unknown, field: string): string {
    const name = this.str(v, field) ?? '';
    if (name !== '' && !LABEL.test(name)) throw this.fail(field, `not a valid port name (lower-case DNS label): ${show(name)}`);
    return name;
  }

  labels(v: unknown, field: string): Record<string, string> {
    const o = this.obj(v, field);
    const out: Record<string, string> = {};
    for (const [k, val] of Object.entries(o)) {
      // YAML turns `app: true` or `tier: 1` into non-strings; the API would reject them.
      if (typeof val !== 'string') throw this.fail(`${field}.${k}`, `label values must be strings, got ${show(val)} (quote it)`);
      out[k] = val;
    }
    return out;
  }

  protocol(v: unknown, field: string): Protocol {
    const p = this.str(v, field) ?? 'TCP';
    if (p !== 'TCP' && p !== 'UDP' && p !== 'SCTP') throw this.fail(field, `want TCP, UDP or SCTP, got ${show(v)}`);
    return p;
  }
}

interface Meta { name: string; namespace: string; labels: Record<string, string>; deleting: boolean }

function meta(obj: unknown, kind: string, namespaced: boolean, namePattern: RegExp): { r: Reader; m: Meta; o: Obj } {
  if (!isObj(obj)) throw new ConvertError(kind, '', `want an object, got ${show(obj)}`);
  const md = isObj(obj.metadata) ? obj.metadata : undefined;
  const name = md?.name;
  const namespace = namespaced ? (md?.namespace ?? 'default') : '';
  const id = typeof name === 'string' ? `${kind} ${namespaced ? `${String(namespace)}/` : ''}${name}` : kind;
  const r = new Reader(id);
  if (!md) throw r.fail('metadata', 'missing');
  if (typeof name !== 'string' || !namePattern.test(name)) throw r.fail('metadata.name', `not a valid name: ${show(name)}`);
  if (namespaced && (typeof namespace !== 'string' || !LABEL.test(namespace))) {
    throw r.fail('metadata.namespace', `not a valid namespace name: ${show(namespace)}`);
  }
  return {
    r, o: obj,
    m: {
      name, namespace: namespace as string, labels: r.labels(md.labels, 'metadata.labels'),
      deleting: md.deletionTimestamp !== undefined && md.deletionTimestamp !== null,
    },
  };
}

const SERVICE_TYPES = ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'] as const;

export function toService(obj: unknown): Service {
  const { r, m, o } = meta(obj, 'Service', true, LABEL);
  const spec = r.obj(o.spec, 'spec');
  const type = r.str(spec.type, 'spec.type') ?? 'ClusterIP';
  if (!(SERVICE_TYPES as readonly string[]).includes(type)) throw r.fail('spec.type', `want one of ${SERVICE_TYPES.join(', ')}, got ${show(type)}`);

  let headless = false;
  const clusterIPs: string[] = [];
  const listed = spec.clusterIPs !== undefined && spec.clusterIPs !== null;
  const rawIPs = listed ? r.list(spec.clusterIPs, 'spec.clusterIPs') : spec.clusterIP === undefined || spec.clusterIP === null ? [] : [spec.clusterIP];
  rawIPs.forEach((v, i) => {
    const field = listed ? `spec.clusterIPs[${i}]` : 'spec.clusterIP';
    if (v === 'None') {
      if (i > 0) throw r.fail(field, '"None" may only be the first entry');
      headless = true;
    } else if (v !== '') {
      if (headless) throw r.fail(field, 'a headless service ("None") has no other cluster IPs');
      clusterIPs.push(r.ip(v, field).ip);
    }
  });
  if (clusterIPs.length === 2 && ipFamily(clusterIPs[0]!) === ipFamily(clusterIPs[1]!)) {
    throw r.fail('spec.clusterIPs', 'two entries must be one IPv4 and one IPv6 address');
  }
  if (clusterIPs.length > 2) throw r.fail('spec.clusterIPs', 'at most two entries (one per family)');

  let externalName: string | undefined;
  if (type === 'ExternalName') {
    const n = r.str(spec.externalName, 'spec.externalName');
    if (!n) throw r.fail('spec.externalName', 'required for type ExternalName');
    externalName = n.toLowerCase().replace(/\.$/, '');
    // ExternalName services have no cluster IP even if one was written.
    clusterIPs.length = 0;
    headless = false;
  }

  const ports: ServicePort[] = r.list(spec.ports, 'spec.ports').map((p, i) => {
    const f = `spec.ports[${i}]`;
    const po = r.obj(p, f);
    const port = r.int(po.port, `${f}.port`, 1, 65535);
    if (port === undefined) throw r.fail(`${f}.port`, 'required');
    const tp = po.targetPort;
    let targetPort: number | string = port;
    if (typeof tp === 'string' && /^\d+$/.test(tp)) targetPort = r.int(Number(tp), `${f}.targetPort`, 1, 65535)!;
    else if (typeof tp === 'string') targetPort = tp;
    else if (tp !== undefined && tp !== null) targetPort = r.int(tp, `${f}.targetPort`, 1, 65535)!;
    const out: ServicePort = {
      name: r.portName(po.name, `${f}.name`), port, protocol: r.protocol(po.protocol, `${f}.protocol`), targetPort,
    };
    const nodePort = r.int(po.nodePort, `${f}.nodePort`, 1, 65535);
    if (nodePort !== undefined) out.nodePort = nodePort;
    return out;
  });
  const names = ports.map((p) => p.name);
  if (ports.length > 1 && names.some((n, i) => n === '' || names.indexOf(n) !== i)) {
    throw r.fail('spec.ports', 'with more than one port every port needs a unique name');
  }

  const externalIPs = r.list(spec.externalIPs, 'spec.externalIPs').map((v, i) => r.ip(v, `spec.externalIPs[${i}]`).ip);
  const status = r.obj(o.status, 'status');
  const lb = r.obj(status.loadBalancer, 'status.loadBalancer');
  const loadBalancerIPs: string[] = [];
  const ingress: string[] = [];
  r.list(lb.ingress, 'status.loadBalancer.ingress').forEach((v, i) => {
    const f = `status.loadBalancer.ingress[${i}]`;
    const ing = r.obj(v, f);
    if (ing.ip === undefined || ing.ip === null || ing.ip === '') {
      const host = r.str(ing.hostname, `${f}.hostname`)?.toLowerCase().replace(/\.$/, '');
      if (!host) return;
      if (!SUBDOMAIN.test(host)) throw r.fail(`${f}.hostname`, `not a valid DNS name: ${show(ing.hostname)}`);
      ingress.push(host);
      return;
    }
    const ip = r.ip(ing.ip, `${f}.ip`).ip;
    ingress.push(ip);
    // ipMode Proxy: traffic to this IP arrives at the nodes from the balancer, not addressed to the IP.
    // DNS names it all the same (CoreDNS reads only the ip).
    if (r.str(ing.ipMode, `${f}.ipMode`) !== 'Proxy') loadBalancerIPs.push(ip);
  });
  // Equal lengths: every entry a plain IP, in the same order; one array serves both.
  const loadBalancerIngress = ingress.length === loadBalancerIPs.length ? loadBalancerIPs : ingress;

  const affinity = r.str(spec.sessionAffinity, 'spec.sessionAffinity') ?? 'None';
  if (affinity !== 'None' && affinity !== 'ClientIP') throw r.fail('spec.sessionAffinity', `want None or ClientIP, got ${show(affinity)}`);
  const sac = r.obj(r.obj(spec.sessionAffinityConfig, 'spec.sessionAffinityConfig').clientIP, 'spec.sessionAffinityConfig.clientIP');
  const timeout = r.int(sac.timeoutSeconds, 'spec.sessionAffinityConfig.clientIP.timeoutSeconds', 1, 86400) ?? 10800;
  const policy = (v: unknown, field: string): 'Cluster' | 'Local' => {
    const p = r.str(v, field) ?? 'Cluster';
    if (p !== 'Cluster' && p !== 'Local') throw r.fail(field, `want Cluster or Local, got ${show(p)}`);
    return p;
  };

  const svc: Service = {
    namespace: m.namespace, name: m.name, type: type as Service['type'], clusterIPs, headless, ports, externalIPs,
    loadBalancerIPs, loadBalancerIngress,
    loadBalancerSourceRanges: r.list(spec.loadBalancerSourceRanges, 'spec.loadBalancerSourceRanges')
      .map((v, i) => r.cidr(v, `spec.loadBalancerSourceRanges[${i}]`)),
    sessionAffinity: affinity, sessionAffinityTimeout: timeout,
    externalTrafficPolicy: policy(spec.externalTrafficPolicy, 'spec.externalTrafficPolicy'),
    internalTrafficPolicy: policy(spec.internalTrafficPolicy, 'spec.internalTrafficPolicy'),
    labels: m.labels,
  };
  if (externalName !== undefined) svc.externalName = externalName;
  const hc = r.int(spec.healthCheckNodePort, 'spec.healthCheckNodePort', 1, 65535);
  if (hc !== undefined) svc.healthCheckNodePort = hc;
  return svc;
}

export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

function endpoint(r: Reader, v: unknown, f: string, family: 4 | 6 | 0): Endpoint {
  const e = r.obj(v, f);
  const addrs = r.list(e.addresses, `${f}.addresses`);
  if (addrs.length === 0) throw r.fail(`${f}.addresses`, 'at least one address is required');
  const parsed = addrs.map((a, j) => {
    const af = `${f}.addresses[${j}]`;
    if (family === 0) {
      const s = r.str(a, af);
      if (!s) throw r.fail(af, 'want a host name');
      return { raw: s, ip: s.toLowerCase() };
    }
    const p = r.ip(a, af);
    if (ipFamily(p.ip) !== family) throw r.fail(af, `${p.raw} is not an IPv${family} address (addressType)`);
    return p;
  });
  // map(), not push(): exactly sized arrays (a pushed-to [] reserves 17 slots, ~150 bytes). Addresses are
  // nearly always written in canonical form, and then one array serves as both.
  const rawAddresses = parsed.map((p) => p.raw);
  const addresses = parsed.every((p) => p.ip === p.raw) ? rawAddresses : parsed.map((p) => p.ip);
  const cond = r.obj(e.conditions, `${f}.conditions`);
  // API semantics: an absent ready/serving condition means "unknown", to be treated as true.
  const ready = r.bool(cond.ready, `${f}.conditions.ready`) ?? true;
  const serving = r.bool(cond.serving, `${f}.conditions.serving`) ?? ready;
  const terminating = r.bool(cond.terminating, `${f}.conditions.terminating`) ?? false;
  const hostname = r.str(e.hostname, `${f}.hostname`);
  if (hostname !== undefined && !LABEL.test(hostname)) throw r.fail(`${f}.hostname`, `not a valid DNS label: ${show(hostname)}`);
  const nodeName = r.str(e.nodeName, `${f}.nodeName`);
  const zone = r.str(e.zone, `${f}.zone`);
  let targetRef: Endpoint['targetRef'];
  if (e.targetRef !== undefined && e.targetRef !== null) {
    const t = r.obj(e.targetRef, `${f}.targetRef`);
    const ns = r.str(t.namespace, `${f}.targetRef.namespace`);
    targetRef = { kind: r.str(t.kind, `${f}.targetRef.kind`) ?? '', name: r.str(t.name, `${f}.targetRef.name`) ?? '', ...(ns !== undefined ? { namespace: ns } : {}) };
  }
  // One literal: properties assigned later would go to a separate backing store (~40 bytes more each).
  return {
    addresses, rawAddresses, ready, serving, terminating,
    ...(hostname !== undefined ? { hostname } : {}),
    ...(nodeName !== undefined ? { nodeName } : {}),
    ...(zone !== undefined ? { zone } : {}),
    ...(targetRef ? { targetRef } : {}),
  };
}

function endpointPorts(r: Reader, v: unknown, f: string): EndpointPort[] {
  return r.list(v, f).map((p, i) => {
    const pf = `${f}[${i}]`;
    const po = r.obj(p, pf);
    return {
      name: r.portName(po.name, `${pf}.name`),
      port: r.int(po.port, `${pf}.port`, 1, 65535) ?? null,
      protocol: r.protocol(po.protocol, `${pf}.protocol`),
    };
  });
}

export function toEndpointSlice(obj: unknown): EndpointSlice {
  const { r, m, o } = meta(obj, 'EndpointSlice', true, SUBDOMAIN);
  const service = m.labels[SERVICE_NAME_LABEL];
  if (!service) throw r.fail(`metadata.labels[${SERVICE_NAME_LABEL}]`, 'missing: the slice belongs to no Service');
  const addressType = r.str(o.addressType, 'addressType');
  if (addressType !== 'IPv4' && addressType !== 'IPv6' && addressType !== 'FQDN') {
    throw r.fail('addressType', `want IPv4, IPv6 or FQDN, got ${show(o.addressType)}`);
  }
  const family = addressType === 'IPv4' ? 4 : addressType === 'IPv6' ? 6 : 0;
  return {
    namespace: m.namespace, name: m.name, service, addressType,
    endpoints: r.list(o.endpoints, 'endpoints').map((e, i) => endpoint(r, e, `endpoints[${i}]`, family)),
    ports: endpointPorts(r, o.ports, 'ports'),
    labels: m.labels,
  };
}

/**
 * Legacy v1 Endpoints → one slice per subset and address family, the way the EndpointSlice mirroring
 * controller does it: `addresses` become ready endpoints, `notReadyAddresses` not-ready ones.
 */
export function endpointsToSlices(obj: unknown): EndpointSlice[] {
  const { r, m, o } = meta(obj, 'Endpoints', true, LABEL);
  const out: EndpointSlice[] = [];
  r.list(o.subsets, 'subsets').forEach((s, i) => {
    const f = `subsets[${i}]`;
    const so = r.obj(s, f);
    const ports = endpointPorts(r, so.ports, `${f}.ports`);
    const byFamily = new Map<4 | 6, Endpoint[]>();
    const add = (list: unknown, field: string, ready: boolean) => {
      r.list(list, field).forEach((a, j) => {
        const af = `${field}[${j}]`;
        const ao = r.obj(a, af);
        const { raw, ip } = r.ip(ao.ip, `${af}.ip`);
        const addresses = [ip];
        const ep: Endpoint = { addresses, rawAddresses: raw === ip ? addresses : [raw], ready, serving: ready, terminating: false };
        const hostname = r.str(ao.hostname, `${af}.hostname`);
        if (hostname !== undefined) {
          if (!LABEL.test(hostname)) throw r.fail(`${af}.hostname`, `not a valid DNS label: ${show(hostname)}`);
          ep.hostname = hostname;
        }
        const nodeName = r.str(ao.nodeName, `${af}.nodeName`);
        if (nodeName !== undefined) ep.nodeName = nodeName;
        if (ao.targetRef !== undefined && ao.targetRef !== null) {
          const t = r.obj(ao.targetRef, `${af}.targetRef`);
          ep.targetRef = { kind: r.str(t.kind, `${af}.targetRef.kind`) ?? '', name: r.str(t.name, `${af}.targetRef.name`) ?? '' };
          const ns = r.str(t.namespace, `${af}.targetRef.namespace`);
          if (ns !== undefined) ep.targetRef.namespace = ns;
        }
        const fam = ipFamily(ip) as 4 | 6;
        let l = byFamily.get(fam);
        if (!l) byFamily.set(fam, (l = []));
        l.push(ep);
      });
    };
    add(so.addresses, `${f}.addresses`, true);
    add(so.notReadyAddresses, `${f}.notReadyAddresses`, false);
    for (const [fam, endpoints] of [...byFamily].sort((a, b) => a[0] - b[0])) {
      out.push({
        namespace: m.namespace, name: `${m.name}-${i}${fam === 6 ? '-ipv6' : ''}`, service: m.name,
        addressType: fam === 4 ? 'IPv4' : 'IPv6', endpoints, ports,
        labels: { ...m.labels, [SERVICE_NAME_LABEL]: m.name },
      });
    }
  });
  return out;
}

export function toNamespace(obj: unknown): Namespace {
  const { m } = meta(obj, 'Namespace', false, LABEL);
  return { name: m.name, labels: m.labels };
}

/**
 * Returns null for pods DNS never answers for, as CoreDNS's pod watch drops them: finished or unknown
 * phase, being deleted, or no IP yet.
 */
export function toPod(obj: unknown): Pod | null {
  const { r, m, o } = meta(obj, 'Pod', true, SUBDOMAIN);
  const status = r.obj(o.status, 'status');
  const phase = r.str(status.phase, 'status.phase');
  if (phase === 'Succeeded' || phase === 'Failed' || phase === 'Unknown' || m.deleting) return null;
  if (status.podIP === undefined || status.podIP === null || status.podIP === '') return null;
  const hostNetwork = r.bool(r.obj(o.spec, 'spec').hostNetwork, 'spec.hostNetwork') ?? false;
  return { namespace: m.namespace, name: m.name, ip: r.ip(status.podIP, 'status.podIP').ip, hostNetwork, labels: m.labels };
}
