import { loadApiAccess, type ApiAccess, type ApiAccessConfig } from './api-access.js';
import { ApiClient } from './api-client.js';
import { SERVICE_NAME_LABEL, toEndpointSlice, toNamespace, toPod, toService } from './convert.js';
import { metadataOf, Reflector, REFLECTOR_DEFAULTS, type ObjectRef, type ReflectorOptions, type ResourceKind, type ResourceStatus } from './reflector.js';
import type { ClusterSource, SourceContext } from './source.js';
import type { ClusterStore } from './store.js';
import type { EndpointSlice, Namespace, Pod, Service } from './types.js';

/**
 * What the `kubernetes` plugin's setup (or `clusterdns vip`) hands to createApiSource: the options of
 * its Corefile block, plus reflector timings the Corefile cannot set (tests shorten them).
 */
export interface ApiSourceConfig extends ApiAccessConfig, Partial<ReflectorOptions> {
  /** `namespaces NS...`: objects of other namespaces are dropped on arrival. */
  namespaces?: string[];
  /** `labels SELECTOR`: server-side selector for Services, EndpointSlices and Pods. */
  labels?: string;
  /** `namespace_labels SELECTOR`: server-side selector for the Namespace watch. */
  namespaceLabels?: string;
  /** The Pod watch runs only for `verified`. */
  pods: 'disabled' | 'insecure' | 'verified';
  /** `noendpoints`: no EndpointSlice watch. */
  noEndpoints?: boolean;
  /** `apiserver_qps` / `apiserver_burst`: token bucket for LIST pages and WATCH requests (unset: no limit). */
  qps?: number;
  burst?: number;
  /** `apiserver_max_inflight`: concurrent LIST requests (unset: no limit). */
  maxInflight?: number;
  /** `startup_timeout` in ms (default 5000): how long start() waits for the first LIST of every resource. */
  startupTimeoutMs?: number;
}

export type { ResourceName, ResourceStatus } from './reflector.js';

/** The informer-fed ClusterSource, plus what `ready` and tests read. */
export interface ApiSource extends ClusterSource {
  /** True once every resource completed its first LIST (stays true through later outages). */
  synced(): boolean;
  status(): ResourceStatus[];
}

/** What an API source gets from whoever starts it. */
export interface ApiSourceContext extends SourceContext {
  /**
   * An EndpointSlice event carried the endpoints controller's last-change-trigger-time for a known
   * Service: the kubernetes plugin turns it into coredns_kubernetes_dns_programming_duration_seconds.
   */
  endpointsProgrammed?(service: Service, triggerTimeMs: number): void;
}

/** Set by the endpoints controller on slices it manages; CoreDNS measures programming latency from it. */
const TRIGGER_TIME_ANNOTATION = 'endpoints.kubernetes.io/last-change-trigger-time';

/** Reports a slice event's trigger time for the Service it belongs to. */
function reportProgramming(report: NonNullable<ApiSourceContext['endpointsProgrammed']>) {
  return (store: ClusterStore, obj: Record<string, unknown>): void => {
    const md = metadataOf(obj);
    const trigger = md.annotations[TRIGGER_TIME_ANNOTATION];
    const service = md.labels[SERVICE_NAME_LABEL];
    if (typeof trigger !== 'string' || typeof service !== 'string') return;
    const t = Date.parse(trigger);
    const svc = store.service(md.namespace, service);
    // Like CoreDNS: only slices written by the endpoints controller (they carry the annotation) of a
    // known Service; the annotation means the Service has a selector.
    if (Number.isNaN(t) || !svc) return;
    report(svc, t);
  };
}

function find<T extends ObjectRef>(all: Iterable<T>, r: ObjectRef): T | undefined {
  for (const o of all) if (o.namespace === r.namespace && o.name === r.name) return o;
  return undefined;
}

function resourceKinds(cfg: ApiSourceConfig, ctx: ApiSourceContext): ResourceKind<unknown>[] {
  const allowed = cfg.namespaces?.length ? new Set(cfg.namespaces) : undefined;
  // `namespaces`: other namespaces do not exist for DNS, so their objects are never held.
  const inScope = <T extends { namespace: string } | null>(o: T): T | null => (o && allowed && !allowed.has(o.namespace) ? null : o);
  const nsRef = (o: { namespace: string; name: string }) => ({ namespace: o.namespace, name: o.name });
  const kinds: ResourceKind<never>[] = [];

  const services: ResourceKind<Service> = {
    resource: 'services', path: '/api/v1/services', labelSelector: cfg.labels,
    convert: (o) => inScope(toService(o)),
    ref: nsRef,
    current: (s, r) => s.service(r.namespace, r.name),
    upsert: (s, o) => s.upsertService(o),
    remove: (s, r) => s.deleteService(r.namespace, r.name),
    replace: (s, items) => s.replace({ services: items }),
  };
  kinds.push(services as ResourceKind<never>);

  if (!cfg.noEndpoints) {
    const slices: ResourceKind<EndpointSlice> = {
      resource: 'endpointslices', path: '/apis/discovery.k8s.io/v1/endpointslices', labelSelector: cfg.labels,
      convert: (o) => inScope(toEndpointSlice(o)),
      ref: nsRef,
      // Only read to carry a broken object's last good version into a relist: rare, so a scan is fine.
      current: (s, r) => find(s.allSlices(), r),
      upsert: (s, o) => s.upsertSlice(o),
      remove: (s, r) => s.deleteSlice(r.namespace, r.name),
      replace: (s, items) => s.replace({ slices: items }),
      ...(ctx.endpointsProgrammed ? { applied: reportProgramming(ctx.endpointsProgrammed) } : {}),
    };
    kinds.push(slices as ResourceKind<never>);
  }

  const namespaces: ResourceKind<Namespace> = {
    resource: 'namespaces', path: '/api/v1/namespaces', labelSelector: cfg.namespaceLabels,
    convert: (o) => {
      const n = toNamespace(o);
      return allowed && !allowed.has(n.name) ? null : n;
    },
    ref: (o) => ({ namespace: '', name: o.name }),
    current: (s, r) => s.namespace(r.name),
    upsert: (s, o) => s.upsertNamespace(o),
    remove: (s, r) => s.deleteNamespace(r.name),
    replace: (s, items) => s.replace({ namespaces: items }),
  };
  kinds.push(namespaces as ResourceKind<never>);

  if (cfg.pods === 'verified') {
    const pods: ResourceKind<Pod> = {
      resource: 'pods', path: '/api/v1/pods', labelSelector: cfg.labels,
      convert: (o) => inScope(toPod(o)),
      ref: nsRef,
      current: (s, r) => find(s.pods(), r),
      upsert: (s, o) => s.upsertPod(o),
      remove: (s, r) => s.deletePod(r.namespace, r.name),
      replace: (s, items) => s.replace({ pods: items }),
    };
    kinds.push(pods as ResourceKind<never>);
  }
  return kinds as ResourceKind<unknown>[];
}

/** The API source: one Reflector per resource feeding one store; synced once all have listed. */
class InformerSource implements ApiSource {
  readonly description: string;
  private readonly api: ApiClient;
  private reflectors: Reflector<unknown>[] = [];

  constructor(private readonly cfg: ApiSourceConfig, access: ApiAccess, private readonly ctx: ApiSourceContext) {
    this.api = new ApiClient(access, { qps: cfg.qps, burst: cfg.burst, maxInflight: cfg.maxInflight });
    this.description = `Kubernetes API ${this.api.server}`;
  }

  async start(store: ClusterStore): Promise<void> {
    const opts: ReflectorOptions = {
      watchdogMs: this.cfg.watchdogMs ?? REFLECTOR_DEFAULTS.watchdogMs,
      backoff: this.cfg.backoff ?? REFLECTOR_DEFAULTS.backoff,
      pageSize: this.cfg.pageSize ?? REFLECTOR_DEFAULTS.pageSize,
    };
    const onSynced = () => {
      if (this.synced()) store.synced = true;
    };
    this.reflectors = resourceKinds(this.cfg, this.ctx).map((k) => new Reflector(k, this.api, store, opts, this.ctx, onSynced));
    for (const r of this.reflectors) r.start();
    // The one start-up bound (startup_timeout): the ClusterSource contract is to resolve after the first
    // attempt, also when the API does not answer. Whoever started the source logs the outcome.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(this.reflectors.map((r) => r.firstSync)),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, this.cfg.startupTimeoutMs ?? 5000))),
    ]);
    clearTimeout(timer);
  }

  async stop(): Promise<void> {
    await Promise.all(this.reflectors.map((r) => r.stop()));
  }

  synced(): boolean {
    return this.reflectors.length > 0 && this.reflectors.every((r) => r.synced);
  }

  status(): ResourceStatus[] {
    return this.reflectors.map((r) => r.status());
  }
}

/** Builds the informer source; config errors (unreadable kubeconfig, unknown context) throw here. */
export function createApiSource(cfg: ApiSourceConfig, ctx: ApiSourceContext): ApiSource {
  return new InformerSource(cfg, loadApiAccess(cfg), ctx);
}
