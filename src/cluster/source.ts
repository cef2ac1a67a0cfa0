import type { Logger } from '../pkg/log.js';
import type { Registry } from '../pkg/metrics.js';
import type { ClusterStore } from './store.js';

/**
 * Feeds a ClusterStore: the manifests reader (embedded default) or the API informers. A source sets
 * `store.synced` once its first complete listing is in the store and never empties the store because
 * a later read failed (last good data keeps serving).
 */
export interface ClusterSource {
  readonly description: string;
  /** Starts feeding; resolves after the first sync attempt (successful or not). */
  start(store: ClusterStore): Promise<void>;
  stop(): Promise<void>;
}

/**
 * What a source gets from whoever starts it: the DNS server's kubernetes plugin hands its registry and
 * the `plugin/kubernetes` tag, `clusterdns vip` its own registry and the `vip` tag, so each binary shows
 * the source's health on its own /metrics and in its own log lines.
 */
export interface SourceContext {
  log: Logger;
  registry: Registry;
}
