import type { ClusterStore } from '../cluster/store.js';
import type { Snapshot, StoreChange } from '../cluster/types.js';
import type { Logger } from '../pkg/log.js';
import { cidrFamily, ipFamily } from '../pkg/ip.js';
import { runCommand, type Run } from '../pkg/command.js';
import { RestoreError } from './apply.js';
import { NftablesBackend, NftError } from './apply-nftables.js';
import { IptablesBackend, type FamilyRenderOptions, type VipBackend } from './backend.js';
import { conntrackCleanup } from './conntrack.js';
import type { VipMetrics } from './metrics.js';
import { buildModel, type Family, type FamilyModel } from './model.js';

export type BackendMode = 'iptables' | 'nftables';

export interface SyncerOptions {
  families: Family[];
  /** Default iptables. */
  mode?: BackendMode;
  /** Endpoints on this node are the ones Local traffic policies use. */
  nodeName: string;
  /** Pod CIDRs, any family (`--cluster-cidr`). */
  clusterCIDRs: string[];
  masqueradeAll: boolean;
  /** `--node-ip`s, any family. */
  nodeIPs: string[];
  syncPeriodMs: number;
  minSyncPeriodMs: number;
  log: Logger;
  metrics?: VipMetrics;
  run?: Run;
}

interface FamilyState {
  backend: VipBackend;
  /** Model of the last successful sync: conntrack cleanup compares against it. */
  prev?: FamilyModel;
  /** Services changed since the last successful sync of this family. */
  changed: Set<string>;
}

/** Render options of one family: the flags' addresses filtered to it. */
export function familyRenderBase(opts: Pick<SyncerOptions, 'clusterCIDRs' | 'masqueradeAll' | 'nodeIPs'>, family: Family): FamilyRenderOptions {
  return {
    clusterCIDRs: opts.clusterCIDRs.filter((c) => cidrFamily(c) === family),
    masqueradeAll: opts.masqueradeAll,
    nodeIPs: opts.nodeIPs.filter((ip) => ipFamily(ip) === family),
  };
}

export function createBackend(mode: BackendMode, family: Family, opts: Pick<SyncerOptions, 'clusterCIDRs' | 'masqueradeAll' | 'nodeIPs'>, run: Run = runCommand): VipBackend {
  const base = familyRenderBase(opts, family);
  return mode === 'nftables' ? new NftablesBackend(family, base, run) : new IptablesBackend(family, base, run);
}

/**
 * Keeps the kernel in line with the store: syncs on change (at most once per minSyncPeriod), a full sync
 * every syncPeriod, on start and after any failure (retried with backoff; the previous rules stay, since a
 * failed iptables-restore or nft transaction changes nothing). In between, partial syncs write only what
 * changed (KEP-3453 for iptables, where a full restore at 10k services × 10 endpoints takes minutes; map elements and chains for nftables).
 */
export class VipSyncer {
  private readonly states = new Map<Family, FamilyState>();
  private unsubscribe: (() => void) | null = null;
  private timer: NodeJS.Timeout | null = null;
  private periodic: NodeJS.Timeout | null = null;
  private canaryTimer: NodeJS.Timeout | null = null;
  private staleTimer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private again = false;
  private forceFull = false;
  private lastStart = 0;
  private backoffMs = 0;
  private stopped = false;

  constructor(private readonly store: ClusterStore, private readonly opts: SyncerOptions) {
    for (const f of opts.families) {
      this.states.set(f, { backend: createBackend(opts.mode ?? 'iptables', f, opts, opts.run), changed: new Set() });
      // Present at 0 from the start, so an alert on its increase sees the first failure.
      for (const sync of ['full', 'partial']) opts.metrics?.errors.inc({ family: `IPv${f}`, sync }, 0);
    }
  }

  /** One sync of every family; true when all succeeded. */
  async sync(full = false): Promise<boolean> {
    // Snapshot and changed sets are taken together, before any await: a change arriving during the sync
    // stays in `changed` for the next one.
    const snap = this.store.snapshot();
    const changed = new Map([...this.states].map(([f, st]) => [f, new Set(st.changed)]));
    let ok = true;
    for (const [family, st] of this.states) {
      if (!(await this.syncFamily(family, st, snap, changed.get(family)!, full))) ok = false;
    }
    return ok;
  }

  private async syncFamily(family: Family, st: FamilyState, snap: Snapshot, changed: Set<string>, force: boolean): Promise<boolean> {
    const { log, metrics } = this.opts;
    const t0 = performance.now();
    const partialPossible = !force && st.backend.synced && st.prev !== undefined;
    // Full syncs reuse the model too: it only depends on the store, and `changed` covers everything since st.prev.
    const model = buildModel(snap, { family, nodeName: this.opts.nodeName }, st.prev && { prev: st.prev, changed });
    let kind = partialPossible ? 'partial' : 'full';
    try {
      const r = await st.backend.sync(model, partialPossible ? changed : null);
      kind = r.kind;
      // After the rules changed, so that new packets of a flushed flow already meet the new rules.
      for (const e of await st.backend.conntrackDelete(conntrackCleanup(st.prev, model, changed))) log.warn(`IPv${family}: ${e}`);
      st.prev = model;
      for (const s of changed) st.changed.delete(s);
      const secs = (performance.now() - t0) / 1000;
      metrics?.syncDuration.observe({ family: `IPv${family}`, sync: kind }, secs);
      metrics?.rules.set({ family: `IPv${family}` }, r.rules);
      metrics?.lastSync.set({ family: `IPv${family}` }, Date.now() / 1000);
      if (kind === 'full' || r.deleted > 0) {
        log.info(`IPv${family} ${kind} sync: ${model.ports.length} service ports, ${r.rules} rules, ${r.deleted} stale chains deleted in ${secs.toFixed(3)}s`);
      }
      return true;
    } catch (e) {
      st.backend.invalidate();
      metrics?.errors.inc({ family: `IPv${family}`, sync: kind });
      const msg = e instanceof RestoreError || e instanceof NftError ? e.message : `IPv${family} ${kind} sync failed: ${(e as Error).message}`;
      log.error(`${msg}; previous rules stay, next attempt is a full sync`);
      return false;
    }
  }

  /** Subscribes to the store and keeps syncing until stop(). The first sync is a full one. */
  start(): void {
    this.unsubscribe = this.store.onChange((changes: StoreChange[]) => {
      let any = false;
      for (const c of changes) {
        if (!c.service || (c.kind !== 'Service' && c.kind !== 'EndpointSlice')) continue;
        for (const st of this.states.values()) st.changed.add(c.service);
        any = true;
      }
      if (any) this.request();
    });
    this.periodic = setInterval(() => this.request(true), this.opts.syncPeriodMs);
    // The canary is polled more often than the periodic resync so a flush by another agent is repaired quickly.
    this.canaryTimer = setInterval(() => void this.checkCanary(), Math.min(this.opts.syncPeriodMs, 5000));
    this.request(true);
  }

  private async checkCanary(): Promise<void> {
    if (this.running) return;
    for (const [family, st] of this.states) {
      if (!st.backend.synced) continue;
      const reason = await st.backend.drift();
      if (reason) {
        this.opts.log.warn(`IPv${family}: ${reason}; full resync`);
        st.backend.invalidate();
        this.request(true);
      }
    }
  }

  /** Asks for a sync, coalesced: at most one per minSyncPeriod, never two at once. */
  request(full = false): void {
    if (this.stopped) return;
    if (full) this.forceFull = true;
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.timer) return;
    const wait = Math.max(this.backoffMs, this.lastStart + this.opts.minSyncPeriodMs - Date.now(), 0);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.running = this.runOnce().finally(() => {
        this.running = null;
        if (this.again) {
          this.again = false;
          this.request();
        }
      });
    }, wait);
  }

  private async runOnce(): Promise<void> {
    this.lastStart = Date.now();
    const full = this.forceFull;
    this.forceFull = false;
    const ok = await this.sync(full);
    if (ok) {
      this.backoffMs = 0;
      // Flushed chains are deleted by a later transaction (kernels before 6.2 refuse deleting a chain in the
      // transaction that drops its last map reference); kube-proxy waits a second too.
      if ([...this.states.values()].some((st) => st.backend.stale) && !this.staleTimer) {
        this.staleTimer = setTimeout(() => {
          this.staleTimer = null;
          this.request();
        }, Math.max(this.opts.minSyncPeriodMs, 1000));
      }
      return;
    }
    // Failed families were invalidated, so the retry is a full sync for them.
    this.backoffMs = Math.min(this.backoffMs ? this.backoffMs * 2 : 1000, this.opts.syncPeriodMs);
    this.again = true;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    for (const t of [this.timer, this.periodic, this.canaryTimer, this.staleTimer]) if (t) clearTimeout(t);
    await this.running;
  }
}
