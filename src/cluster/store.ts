import type { EndpointSlice, Kind, Namespace, Pod, Service, Snapshot, StoreChange } from './types.js';
import { isDeepStrictEqual } from 'node:util';

type Listener = (changes: StoreChange[]) => void;

/**
 * Key (an IP, a service) → keys of the objects holding it. Nearly every key belongs to exactly one
 * object, so a lone entry is kept as the string itself; a Set (over 100 bytes each, 100k endpoint IPs
 * make that 10+ MB) only while several objects share the key.
 */
type Index = Map<string, string | Set<string>>;

function addToIndex(index: Index, k: string, v: string): void {
  const cur = index.get(k);
  if (cur === undefined) index.set(k, v);
  else if (typeof cur !== 'string') cur.add(v);
  else if (cur !== v) index.set(k, new Set([cur, v]));
}

function removeFromIndex(index: Index, k: string, v: string): void {
  const cur = index.get(k);
  if (cur === v) index.delete(k);
  else if (typeof cur === 'object' && cur.delete(v) && cur.size === 1) index.set(k, cur.values().next().value!);
}

function lookup(index: Index, k: string): string[] {
  const cur = index.get(k);
  return cur === undefined ? [] : typeof cur === 'string' ? [cur] : [...cur];
}

/** The parts of a Service that change DNS answers (the rest matters to the VIP programmer only). */
function serviceDnsView(s: Service): unknown {
  return [s.type, s.clusterIPs, s.headless, s.externalName, s.ports.map((p) => [p.name, p.port, p.protocol]),
    s.externalIPs, s.loadBalancerIngress, s.labels];
}

function sliceDnsView(s: EndpointSlice): unknown {
  return [s.service, s.addressType, s.ports, s.labels,
    s.endpoints.map((e) => [e.rawAddresses, e.ready, e.hostname, e.nodeName, e.targetRef?.name])];
}

const dnsView: Record<Kind, (o: never) => unknown> = {
  Service: serviceDnsView,
  EndpointSlice: sliceDnsView,
  Namespace: (n: Namespace) => n.labels,
  Pod: (p: Pod) => [p.ip, p.hostNetwork, p.labels],
};

const nsKey = (o: { namespace: string; name: string }) => `${o.namespace}/${o.name}`;

/**
 * In-memory cluster state: plain data plus the indexes DNS and the VIP programmer query. Knows nothing
 * of the wire format or of where the data comes from; sources call upsert/delete/replace, readers
 * subscribe to batched change events. Objects handed in are owned by the store and must not be mutated.
 */
export class ClusterStore {
  private readonly svcs = new Map<string, Service>();
  private readonly slices = new Map<string, EndpointSlice>();
  private readonly nss = new Map<string, Namespace>();
  private readonly podMap = new Map<string, Pod>();
  private readonly svcByIP: Index = new Map();
  private readonly svcByExternalIP: Index = new Map();
  private readonly slicesBySvc: Index = new Map();
  private readonly slicesByIP: Index = new Map();
  private readonly podsByIP: Index = new Map();
  private readonly listeners = new Set<Listener>();
  private pending: StoreChange[] | null = null;
  private syncedFlag = false;

  /** SOA serial: Unix seconds of the last DNS-relevant change (CoreDNS does the same). */
  serial = Math.floor(Date.now() / 1000);
  /** Bumped on every DNS-relevant change; readers use it to drop pre-rendered answers. */
  generation = 0;

  /** Sources set this once their first full listing is in (CoreDNS: informers synced). */
  get synced(): boolean {
    return this.syncedFlag;
  }
  set synced(v: boolean) {
    this.syncedFlag = v;
    this.generation++;
  }

  onChange(l: Listener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  /** Groups changes made inside `fn` into one event batch (one SOA bump, one VIP sync trigger). */
  batch<T>(fn: () => T): T {
    if (this.pending) return fn();
    this.pending = [];
    try {
      return fn();
    } finally {
      const changes = this.pending;
      this.pending = null;
      this.emit(changes);
    }
  }

  private emit(changes: StoreChange[]): void {
    if (changes.length === 0) return;
    if (changes.some((c) => c.dns)) {
      this.generation++;
      this.serial = Math.max(this.serial + 1, Math.floor(Date.now() / 1000));
    }
    for (const l of this.listeners) l(changes);
  }

  private record(c: StoreChange): void {
    if (this.pending) this.pending.push(c);
    else this.emit([c]);
  }

  private change<T extends object>(kind: Kind, key: string, old: T | undefined, next: T | undefined, service?: string): boolean {
    if (old && next && isDeepStrictEqual(old, next)) return false;
    const view = dnsView[kind] as (o: T) => unknown;
    const dns = !old || !next || !isDeepStrictEqual(view(old), view(next));
    this.record({ kind, op: !old ? 'add' : !next ? 'delete' : 'update', key, service, dns });
    return true;
  }

  /* ---------------------------------------------------------------- services */

  upsertService(s: Service): void {
    const key = nsKey(s);
    const old = this.svcs.get(key);
    if (!this.change('Service', key, old, s, key)) return;
    if (old) this.unindexService(key, old);
    this.svcs.set(key, s);
    for (const ip of s.clusterIPs) addToIndex(this.svcByIP, ip, key);
    for (const ip of [...s.externalIPs, ...s.loadBalancerIngress]) addToIndex(this.svcByExternalIP, ip, key);
  }

  deleteService(namespace: string, name: string): void {
    const key = `${namespace}/${name}`;
    const old = this.svcs.get(key);
    if (!old) return;
    this.unindexService(key, old);
    this.svcs.delete(key);
    this.change('Service', key, old, undefined, key);
  }

  private unindexService(key: string, s: Service): void {
    for (const ip of s.clusterIPs) removeFromIndex(this.svcByIP, ip, key);
    for (const ip of [...s.externalIPs, ...s.loadBalancerIngress]) removeFromIndex(this.svcByExternalIP, ip, key);
  }

  service(namespace: string, name: string): Service | undefined {
    return this.svcs.get(`${namespace}/${name}`);
  }

  services(): IterableIterator<Service> {
    return this.svcs.values();
  }

  /** Services whose ClusterIP is `ip` (canonical form). */
  servicesByClusterIP(ip: string): Service[] {
    return lookup(this.svcByIP, ip).map((k) => this.svcs.get(k)!);
  }

  /** Services with `ip` among externalIPs or LoadBalancer ingress entries (any ipMode). */
  servicesByExternalIP(ip: string): Service[] {
    return lookup(this.svcByExternalIP, ip).map((k) => this.svcs.get(k)!);
  }

  /* ---------------------------------------------------------------- endpoint slices */

  upsertSlice(sl: EndpointSlice): void {
    const key = nsKey(sl);
    const old = this.slices.get(key);
    const svcKey = `${sl.namespace}/${sl.service}`;
    if (!this.change('EndpointSlice', key, old, sl, svcKey)) return;
    if (old) {
      this.unindexSlice(key, old);
      if (old.service !== sl.service) {
        this.record({ kind: 'EndpointSlice', op: 'delete', key, service: `${old.namespace}/${old.service}`, dns: true });
      }
    }
    this.slices.set(key, sl);
    addToIndex(this.slicesBySvc, svcKey, key);
    for (const ep of sl.endpoints) for (const ip of ep.addresses) addToIndex(this.slicesByIP, ip, key);
  }

  deleteSlice(namespace: string, name: string): void {
    const key = `${namespace}/${name}`;
    const old = this.slices.get(key);
    if (!old) return;
    this.unindexSlice(key, old);
    this.slices.delete(key);
    this.change('EndpointSlice', key, old, undefined, `${old.namespace}/${old.service}`);
  }

  private unindexSlice(key: string, sl: EndpointSlice): void {
    removeFromIndex(this.slicesBySvc, `${sl.namespace}/${sl.service}`, key);
    for (const ep of sl.endpoints) for (const ip of ep.addresses) removeFromIndex(this.slicesByIP, ip, key);
  }

  /** All slices labelled for service `namespace/name`, sorted by slice name (stable answers). */
  slicesFor(namespace: string, service: string): EndpointSlice[] {
    return lookup(this.slicesBySvc, `${namespace}/${service}`).sort().map((k) => this.slices.get(k)!);
  }

  /** Slices holding an endpoint with address `ip` (canonical form). */
  slicesByAddress(ip: string): EndpointSlice[] {
    return lookup(this.slicesByIP, ip).sort().map((k) => this.slices.get(k)!);
  }

  allSlices(): IterableIterator<EndpointSlice> {
    return this.slices.values();
  }

  /* ---------------------------------------------------------------- namespaces */

  upsertNamespace(n: Namespace): void {
    const old = this.nss.get(n.name);
    if (!this.change('Namespace', n.name, old, n)) return;
    this.nss.set(n.name, n);
  }

  deleteNamespace(name: string): void {
    const old = this.nss.get(name);
    if (!old) return;
    this.nss.delete(name);
    this.change('Namespace', name, old, undefined);
  }

  namespace(name: string): Namespace | undefined {
    return this.nss.get(name);
  }

  namespaces(): IterableIterator<Namespace> {
    return this.nss.values();
  }

  /* ---------------------------------------------------------------- pods */

  upsertPod(p: Pod): void {
    const key = nsKey(p);
    const old = this.podMap.get(key);
    if (!this.change('Pod', key, old, p)) return;
    if (old) removeFromIndex(this.podsByIP, old.ip, key);
    this.podMap.set(key, p);
    if (p.ip) addToIndex(this.podsByIP, p.ip, key);
  }

  deletePod(namespace: string, name: string): void {
    const key = `${namespace}/${name}`;
    const old = this.podMap.get(key);
    if (!old) return;
    removeFromIndex(this.podsByIP, old.ip, key);
    this.podMap.delete(key);
    this.change('Pod', key, old, undefined);
  }

  podsByAddress(ip: string): Pod[] {
    return lookup(this.podsByIP, ip).map((k) => this.podMap.get(k)!);
  }

  pods(): IterableIterator<Pod> {
    return this.podMap.values();
  }

  /* ---------------------------------------------------------------- bulk */

  /**
   * Makes the store hold exactly `snap` for the given kinds, as add/update/delete events in one batch
   * (manifest reloads, informer relists). Kinds absent from `snap` are left alone.
   */
  replace(snap: Partial<Snapshot>): void {
    this.batch(() => {
      if (snap.namespaces) {
        const keep = new Set(snap.namespaces.map((n) => n.name));
        for (const n of [...this.nss.values()]) if (!keep.has(n.name)) this.deleteNamespace(n.name);
        for (const n of snap.namespaces) this.upsertNamespace(n);
      }
      if (snap.services) {
        const keep = new Set(snap.services.map(nsKey));
        for (const s of [...this.svcs.values()]) if (!keep.has(nsKey(s))) this.deleteService(s.namespace, s.name);
        for (const s of snap.services) this.upsertService(s);
      }
      if (snap.slices) {
        const keep = new Set(snap.slices.map(nsKey));
        for (const s of [...this.slices.values()]) if (!keep.has(nsKey(s))) this.deleteSlice(s.namespace, s.name);
        for (const s of snap.slices) this.upsertSlice(s);
      }
      if (snap.pods) {
        const keep = new Set(snap.pods.map(nsKey));
        for (const p of [...this.podMap.values()]) if (!keep.has(nsKey(p))) this.deletePod(p.namespace, p.name);
        for (const p of snap.pods) this.upsertPod(p);
      }
    });
  }

  snapshot(): Snapshot {
    return {
      services: [...this.svcs.values()], slices: [...this.slices.values()],
      namespaces: [...this.nss.values()], pods: [...this.podMap.values()],
    };
  }
}
