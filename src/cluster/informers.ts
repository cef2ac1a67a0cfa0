import type { ClusterSource } from './source.js';

/** What the `kubernetes` plugin's setup hands to createApiSource (options of its Corefile block). */
export interface ApiSourceConfig {
  /** `kubeconfig FILE [CONTEXT]`; wins over `endpoint`. Neither set: in-cluster service account. */
  kubeconfig?: string;
  context?: string;
  /** `endpoint URL` (only the first one, like CoreDNS). */
  endpoint?: string;
  /** `tls CERT KEY CACERT` for `endpoint`: file paths. */
  tls?: { cert: string; key: string; ca: string };
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
  /** `apiserver_qps` / `apiserver_burst`: token bucket for LIST and WATCH requests. */
  qps?: number;
  burst?: number;
  /** `apiserver_max_inflight`: concurrent LIST requests. */
  maxInflight?: number;
  /** `startup_timeout` in ms (default 5000): how long start() waits for the first LIST of every resource. */
  startupTimeoutMs?: number;
  /** A watch silent for longer than this is restarted (default 5 min). */
  watchdogMs?: number;
  /** Restart delay after an error: doubles from initialMs up to maxMs, with jitter. */
  backoff?: { initialMs: number; maxMs: number };
}

export type ResourceName = 'services' | 'endpointslices' | 'namespaces' | 'pods';

export interface ResourceStatus {
  resource: ResourceName;
  synced: boolean;
  state: 'listing' | 'watching' | 'backoff' | 'stopped';
  restarts: number;
  /** ms since the last watch event (or LIST); null before the first. */
  lastEventAgeMs: number | null;
  lastError?: string;
}

/** The informer-fed ClusterSource, plus what `ready` and tests read. */
export interface ApiSource extends ClusterSource {
  /** True once every resource completed its first LIST (stays true through later outages). */
  synced(): boolean;
  status(): ResourceStatus[];
}

export function createApiSource(cfg: ApiSourceConfig): ApiSource {
  throw new Error(`informers: createApiSource not implemented yet (${JSON.stringify(Object.keys(cfg))})`);
}
