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
