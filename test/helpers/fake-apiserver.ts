import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A protocol-level Kubernetes API server over real HTTP, enough for list+watch clients: paginated LIST
 * with resourceVersion and labelSelector, WATCH streams (newline-delimited JSON events, bookmarks,
 * label-selector transitions as ADDED/DELETED like the real watch cache), 410 for compacted versions,
 * and fault switches: LIST delay, HTTP errors, dropped and hung watches, the whole server down.
 */

export type Resource = 'services' | 'endpointslices' | 'namespaces' | 'pods';

const PATHS: Record<string, Resource> = {
  '/api/v1/services': 'services',
  '/apis/discovery.k8s.io/v1/endpointslices': 'endpointslices',
  '/api/v1/namespaces': 'namespaces',
  '/api/v1/pods': 'pods',
};

const LIST_KIND: Record<Resource, [string, string]> = {
  services: ['v1', 'ServiceList'],
  endpointslices: ['discovery.k8s.io/v1', 'EndpointSliceList'],
  namespaces: ['v1', 'NamespaceList'],
  pods: ['v1', 'PodList'],
};

type Obj = { metadata: { name: string; namespace?: string; labels?: Record<string, string>; resourceVersion?: string; [k: string]: unknown }; [k: string]: unknown };

interface HistoryEntry {
  rv: number;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  object: Obj;
  /** The object before a MODIFIED, to turn selector transitions into ADDED/DELETED. */
  prev?: Obj;
}

interface OpenWatch {
  resource: Resource;
  selector: (labels: Record<string, string>) => boolean;
  bookmarks: boolean;
  res: http.ServerResponse;
  /** Hung: accepted, but never gets another byte. */
  hung: boolean;
}

export interface RequestLog {
  resource: Resource | undefined;
  watch: boolean;
  query: Record<string, string>;
  /** performance.now() at arrival. */
  at: number;
  authorization?: string;
}

/** Parses a label selector (`a=b,c!=d,e,!f,g in (x,y),h notin (z)`) into a predicate. */
export function labelSelector(sel: string | null | undefined): (labels: Record<string, string>) => boolean {
  if (!sel) return () => true;
  const terms: ((l: Record<string, string>) => boolean)[] = [];
  const re = /\s*(!?)([A-Za-z0-9_./-]+)\s*(?:(notin|in)\s*\(([^)]*)\)|(==|=|!=)\s*([A-Za-z0-9_.-]*))?\s*(?:,|$)/y;
  let m: RegExpExecArray | null;
  while (re.lastIndex < sel.length && (m = re.exec(sel))) {
    const [, not, key, setOp, setVals, op, val] = m as unknown as [string, string, string, string?, string?, string?, string?];
    if (setOp) {
      const vals = new Set(setVals!.split(',').map((v) => v.trim()).filter(Boolean));
      terms.push(setOp === 'in' ? (l) => l[key] !== undefined && vals.has(l[key]!) : (l) => l[key] === undefined || !vals.has(l[key]!));
    } else if (op) {
      terms.push(op === '!=' ? (l) => l[key] !== val : (l) => l[key] === val);
    } else {
      terms.push(not ? (l) => l[key] === undefined : (l) => l[key] !== undefined);
    }
  }
  if (re.lastIndex !== sel.length) throw new Error(`bad label selector ${JSON.stringify(sel)}`);
  return (l) => terms.every((t) => t(l));
}

const keyOf = (o: Obj) => (o.metadata.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : o.metadata.name);

export class FakeApiServer {
  private readonly server = http.createServer((req, res) => this.handle(req, res));
  private readonly sockets = new Set<Socket>();
  private readonly objects = new Map<Resource, Map<string, Obj>>();
  private readonly history = new Map<Resource, HistoryEntry[]>();
  private readonly watches = new Set<OpenWatch>();
  private rv = 100;
  /**
   * Sorted, filtered LIST snapshots by resource, selector and resourceVersion: continue tokens page
   * through the snapshot their first page saw (as etcd does), and a 10k-object LIST costs one sort, not
   * one per page.
   */
  private readonly snapshots = new Map<string, Obj[]>();
  /** Versions at or below this are gone (410) for WATCH and continue tokens. */
  private compactedRv = 0;
  private port = 0;

  /** Delay before every LIST answer. */
  listDelayMs = 0;
  /** Non-null: every LIST (of `failResources`, or all) answers this HTTP status. */
  failLists: number | null = null;
  /** Non-null: every new WATCH answers this HTTP status. */
  failWatches: number | null = null;
  failResources: Resource[] | null = null;
  /** New watches are accepted and then never sent anything (a silently dead stream). */
  hangNewWatches = false;
  readonly requests: RequestLog[] = [];

  constructor() {
    for (const r of Object.values(PATHS)) {
      this.objects.set(r, new Map());
      this.history.set(r, []);
    }
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get resourceVersion(): number {
    return this.rv;
  }

  async start(port = 0): Promise<this> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  /** Closes the listener and every connection: clients see ECONNREFUSED / resets until up(). */
  async down(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.watches.clear();
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  /** Listens again on the same port. */
  async up(): Promise<void> {
    await this.start(this.port);
  }

  async stop(): Promise<void> {
    if (this.server.listening) await this.down();
  }

  /* ------------------------------------------------------------------ state changes */

  /** Creates or replaces an object (ADDED or MODIFIED to watchers); returns its new resourceVersion. */
  apply(resource: Resource, obj: Obj): number {
    const map = this.objects.get(resource)!;
    const key = keyOf(obj);
    const prev = map.get(key);
    const rv = ++this.rv;
    const stored: Obj = { ...obj, metadata: { ...obj.metadata, resourceVersion: String(rv) } };
    map.set(key, stored);
    this.record(resource, { rv, type: prev ? 'MODIFIED' : 'ADDED', object: stored, prev });
    return rv;
  }

  delete(resource: Resource, namespace: string | undefined, name: string): void {
    const map = this.objects.get(resource)!;
    const key = namespace ? `${namespace}/${name}` : name;
    const prev = map.get(key);
    if (!prev) return;
    map.delete(key);
    const rv = ++this.rv;
    this.record(resource, { rv, type: 'DELETED', object: { ...prev, metadata: { ...prev.metadata, resourceVersion: String(rv) } } });
  }

  /** Loads many objects without history (a cluster that existed before anyone watched). */
  seed(resource: Resource, objs: Obj[]): void {
    const map = this.objects.get(resource)!;
    for (const o of objs) {
      const rv = ++this.rv;
      map.set(keyOf(o), { ...o, metadata: { ...o.metadata, resourceVersion: String(rv) } });
    }
    this.compactedRv = this.rv;
  }

  get(resource: Resource, namespace: string | undefined, name: string): Obj | undefined {
    return this.objects.get(resource)!.get(namespace ? `${namespace}/${name}` : name);
  }

  /** Forgets history: watches from older versions and old continue tokens now get 410 Gone. */
  compact(): void {
    this.compactedRv = this.rv;
    for (const h of this.history.values()) h.length = 0;
  }

  /** Sends an ERROR event with 410 Gone on every open watch and ends them, as after etcd compaction. */
  expireWatches(): void {
    this.compact();
    for (const w of [...this.watches]) {
      if (w.hung) continue;
      w.res.write(JSON.stringify({ type: 'ERROR', object: { kind: 'Status', apiVersion: 'v1', status: 'Failure', message: 'too old resource version', reason: 'Expired', code: 410 } }) + '\n');
      this.endWatch(w);
    }
  }

  /** Destroys every open watch connection without a proper end (a proxy or node dying mid-stream). */
  dropWatches(): void {
    for (const w of [...this.watches]) {
      this.watches.delete(w);
      w.res.socket?.destroy();
    }
  }

  /** Ends every open watch cleanly, as the server does when timeoutSeconds is reached. */
  closeWatches(): void {
    for (const w of [...this.watches]) this.endWatch(w);
  }

  /** Makes the open watches silent: they stay connected but miss every later event. */
  hangWatches(): void {
    for (const w of this.watches) w.hung = true;
  }

  /** A BOOKMARK with the current resourceVersion to every watch that asked for bookmarks. */
  bookmark(): void {
    for (const w of this.watches) {
      if (w.hung || !w.bookmarks) continue;
      w.res.write(JSON.stringify({ type: 'BOOKMARK', object: { kind: 'Bookmark', metadata: { resourceVersion: String(this.rv) } } }) + '\n');
    }
  }

  openWatches(resource?: Resource): number {
    return [...this.watches].filter((w) => !resource || w.resource === resource).length;
  }

  listCount(resource: Resource): number {
    return this.requests.filter((r) => r.resource === resource && !r.watch).length;
  }

  private endWatch(w: OpenWatch): void {
    this.watches.delete(w);
    w.res.end();
  }

  private record(resource: Resource, e: HistoryEntry): void {
    this.history.get(resource)!.push(e);
    for (const w of this.watches) if (w.resource === resource && !w.hung) this.send(w, e);
  }

  /** Writes `e` as the watch sees it through its label selector. */
  private send(w: OpenWatch, e: HistoryEntry): void {
    const now = w.selector(e.object.metadata.labels ?? {});
    const before = e.prev ? w.selector(e.prev.metadata.labels ?? {}) : false;
    let type: string | undefined = e.type;
    if (e.type === 'DELETED') type = now ? 'DELETED' : undefined;
    else if (e.type === 'MODIFIED') type = now && before ? 'MODIFIED' : now ? 'ADDED' : before ? 'DELETED' : undefined;
    else type = now ? 'ADDED' : undefined;
    if (type) w.res.write(JSON.stringify({ type, object: e.object }) + '\n');
  }

  /* ------------------------------------------------------------------ HTTP */

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x');
    const resource = PATHS[url.pathname];
    const query = Object.fromEntries(url.searchParams);
    const watch = query.watch === 'true' || query.watch === '1';
    this.requests.push({ resource, watch, query, at: performance.now(), authorization: req.headers.authorization });
    if (!resource || req.method !== 'GET') return this.status(res, 404, 'NotFound', `no route ${req.method} ${url.pathname}`);
    let selector: (l: Record<string, string>) => boolean;
    try {
      selector = labelSelector(query.labelSelector);
    } catch (err) {
      return this.status(res, 400, 'BadRequest', (err as Error).message);
    }
    const failing = (code: number | null) => code !== null && (!this.failResources || this.failResources.includes(resource));
    if (watch) {
      if (failing(this.failWatches)) return this.status(res, this.failWatches!, 'InternalError', 'injected watch failure');
      return this.startWatch(resource, query, selector, res);
    }
    const answer = () => {
      if (failing(this.failLists)) return this.status(res, this.failLists!, 'InternalError', 'injected list failure');
      this.list(resource, query, selector, res);
    };
    if (this.listDelayMs > 0) setTimeout(answer, this.listDelayMs);
    else answer();
  }

  private list(resource: Resource, query: Record<string, string>, selector: (l: Record<string, string>) => boolean, res: http.ServerResponse): void {
    let offset = 0;
    let listRv = this.rv;
    if (query.continue) {
      const [rv, off] = Buffer.from(query.continue, 'base64url').toString().split(':').map(Number) as [number, number];
      if (rv < this.compactedRv) return this.status(res, 410, 'Expired', 'The provided continue parameter is too old');
      offset = off;
      listRv = rv;
    }
    const snapKey = `${resource}\n${query.labelSelector ?? ''}\n${listRv}`;
    let all = this.snapshots.get(snapKey);
    if (!all) {
      all = [...this.objects.get(resource)!.values()].filter((o) => selector(o.metadata.labels ?? {}))
        .sort((a, b) => (keyOf(a) < keyOf(b) ? -1 : 1));
      // A few concurrent listings at most; the oldest snapshot goes first.
      if (this.snapshots.size >= 8) this.snapshots.delete(this.snapshots.keys().next().value!);
      this.snapshots.set(snapKey, all);
    }
    const limit = Number(query.limit) > 0 ? Number(query.limit) : Infinity;
    const items = all.slice(offset, offset + limit);
    const more = offset + items.length < all.length;
    const [apiVersion, kind] = LIST_KIND[resource];
    const metadata: Record<string, unknown> = { resourceVersion: String(listRv) };
    if (more) {
      metadata.continue = Buffer.from(`${listRv}:${offset + items.length}`).toString('base64url');
      metadata.remainingItemCount = all.length - offset - items.length;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ kind, apiVersion, metadata, items }));
  }

  private startWatch(resource: Resource, query: Record<string, string>, selector: (l: Record<string, string>) => boolean, res: http.ServerResponse): void {
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    const w: OpenWatch = { resource, selector, bookmarks: query.allowWatchBookmarks === 'true', res, hung: this.hangNewWatches };
    this.watches.add(w);
    res.on('close', () => this.watches.delete(w));
    if (w.hung) return;
    const from = query.resourceVersion ? Number(query.resourceVersion) : 0;
    if (!from) {
      for (const o of this.objects.get(resource)!.values()) this.send(w, { rv: 0, type: 'ADDED', object: o });
    } else if (from < this.compactedRv) {
      res.write(JSON.stringify({ type: 'ERROR', object: { kind: 'Status', apiVersion: 'v1', status: 'Failure', message: `too old resource version: ${from} (${this.compactedRv})`, reason: 'Expired', code: 410 } }) + '\n');
      return this.endWatch(w);
    } else {
      for (const e of this.history.get(resource)!) if (e.rv > from) this.send(w, e);
    }
    const timeout = Number(query.timeoutSeconds);
    if (timeout > 0) {
      const t = setTimeout(() => { if (this.watches.has(w) && !w.hung) this.endWatch(w); }, timeout * 1000);
      res.on('close', () => clearTimeout(t));
    }
  }

  private status(res: http.ServerResponse, code: number, reason: string, message: string): void {
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code }));
  }
}

/**
 * Writes a kubeconfig for `server` (plain http needs `insecure-skip-tls-verify: true`: the client library
 * refuses http:// otherwise). Besides the current context `fake`, a context `broken` points at a closed port.
 */
export function writeKubeconfig(dir: string, server: string, file = 'kubeconfig'): string {
  const path = join(dir, file);
  writeFileSync(path, `apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster:
    server: ${server}
    insecure-skip-tls-verify: true
- name: broken
  cluster:
    server: http://127.0.0.1:1
    insecure-skip-tls-verify: true
users:
- name: tester
  user:
    token: fake-token
contexts:
- name: fake
  context: {cluster: fake, user: tester}
- name: broken
  context: {cluster: broken, user: tester}
current-context: fake
`);
  return path;
}

/* ------------------------------------------------------------------ object builders */

export function service(namespace: string, name: string, clusterIP: string, extra: { labels?: Record<string, string>; headless?: boolean; ports?: unknown[] } = {}): Obj {
  return {
    apiVersion: 'v1', kind: 'Service',
    metadata: { name, namespace, ...(extra.labels ? { labels: extra.labels } : {}) },
    spec: {
      type: 'ClusterIP', clusterIP: extra.headless ? 'None' : clusterIP, clusterIPs: extra.headless ? ['None'] : [clusterIP],
      ports: extra.ports ?? [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080 }],
    },
  };
}

export function endpointSlice(namespace: string, svc: string, name: string, endpoints: { ip: string; ready?: boolean; hostname?: string }[],
  extra: { labels?: Record<string, string>; triggerTime?: string } = {}): Obj {
  return {
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', addressType: 'IPv4',
    metadata: {
      name, namespace, labels: { 'kubernetes.io/service-name': svc, ...extra.labels },
      ...(extra.triggerTime ? { annotations: { 'endpoints.kubernetes.io/last-change-trigger-time': extra.triggerTime } } : {}),
    },
    endpoints: endpoints.map((e) => ({ addresses: [e.ip], conditions: { ready: e.ready ?? true }, ...(e.hostname ? { hostname: e.hostname } : {}) })),
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  };
}

export function namespace(name: string, labels?: Record<string, string>): Obj {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name, ...(labels ? { labels } : {}) } };
}

export function pod(namespace: string, name: string, ip: string, labels?: Record<string, string>): Obj {
  return {
    apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace, ...(labels ? { labels } : {}) },
    spec: { containers: [{ name: 'c', image: 'x' }] }, status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] },
  };
}

/**
 * Seeds `services` ClusterIP Services in `default`, each with one EndpointSlice of `perService` ready
 * endpoints, carrying the metadata real API objects have (uid, timestamps, managedFields), so LIST
 * pages weigh what they weigh on a real cluster. Service i: svc<i>, 10.96.x.y; endpoint j: 10.(128+j).x.y.
 */
export function seedSynthetic(api: FakeApiServer, services: number, perService: number): void {
  const ts = '2026-01-01T00:00:00Z';
  const ip = (a: number, i: number) => `10.${a}.${(i >> 8) & 255}.${i & 255}`;
  const managed = (manager: string) => [{ manager, operation: 'Update', apiVersion: 'v1', time: ts, fieldsType: 'FieldsV1', fieldsV1: { 'f:metadata': { 'f:labels': { '.': {}, 'f:app': {} } }, 'f:spec': { 'f:ports': {} } } }];
  const svcs: Obj[] = [];
  const slices: Obj[] = [];
  for (let i = 0; i < services; i++) {
    const name = `svc${i}`;
    const s = service('default', name, ip(96, i));
    s.metadata = { ...s.metadata, uid: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, creationTimestamp: ts, labels: { app: name }, managedFields: managed('kubectl') };
    (s.spec as Record<string, unknown>).selector = { app: name };
    svcs.push(s);
    const sl = endpointSlice('default', name, `${name}-abcde`,
      Array.from({ length: perService }, (_, j) => ({ ip: ip(128 + (j % 100), i + 65536 * Math.floor(j / 100)) })));
    sl.metadata = { ...sl.metadata, uid: `00000000-0000-4000-9000-${String(i).padStart(12, '0')}`, creationTimestamp: ts, generateName: `${name}-`,
      managedFields: managed('endpointslice-controller.k8s.io'),
      ownerReferences: [{ apiVersion: 'v1', kind: 'Service', name, uid: s.metadata.uid, controller: true, blockOwnerDeletion: true }] };
    for (const [j, e] of (sl.endpoints as Record<string, unknown>[]).entries()) {
      Object.assign(e, { nodeName: `node-${j % 50}`, zone: 'zone-a', targetRef: { kind: 'Pod', namespace: 'default', name: `${name}-pod-${j}`, uid: `pod-${i}-${j}` } });
    }
    slices.push(sl);
  }
  api.seed('services', svcs);
  api.seed('endpointslices', slices);
}
