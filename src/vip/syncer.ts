import type { ClusterStore } from '../cluster/store.js';
import type { Snapshot, StoreChange } from '../cluster/types.js';
import type { Logger } from '../server/log.js';
import { ipFamily } from '../cluster/ip.js';
import { IptablesApplier, RestoreError, runCommand, type Run } from './apply.js';
import { conntrackCleanup } from './conntrack.js';
import type { VipMetrics } from './metrics.js';
import { buildModel, type Family, type FamilyModel } from './model.js';
import { CANARY, LARGE_CLUSTER_ENDPOINTS, renderIptables, type RenderOptions } from './render-iptables.js';

export interface SyncerOptions {
  families: Family[];
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
  applier: IptablesApplier;
  /** Model of the last successful sync: conntrack cleanup compares against it. */
  prev?: FamilyModel;
  /** Per-service chains after the last successful sync; null forces a full sync. */
  active: Set<string> | null;
  /** Services changed since the last successful sync of this family. */
  changed: Set<string>;
  /** Whether per-endpoint comments were written: flipping it changes every chain, so it needs a full sync. */
  comments: boolean;
}

const cidrFamily = (c: string) => ipFamily(c.split('/')[0] ?? '');

/** Render options of one family: the flags' addresses filtered to it. */
export function familyRenderBase(opts: Pick<SyncerOptions, 'clusterCIDRs' | 'masqueradeAll' | 'nodeIPs'>, family: Family): Pick<RenderOptions, 'clusterCIDRs' | 'masqueradeAll' | 'nodeIPs'> {
  return {
    clusterCIDRs: opts.clusterCIDRs.filter((c) => cidrFamily(c) === family),
    masqueradeAll: opts.masqueradeAll,
    nodeIPs: opts.nodeIPs.filter((ip) => ipFamily(ip) === family),
  };
}

/**
 * Keeps the kernel in line with the store: syncs on change (at most once per minSyncPeriod), a full sync
 * every syncPeriod, on start and after any failure (retried with backoff; the previous rules stay, since a
 * failed iptables-restore changes nothing). In between, partial syncs write only the top-level chains and
 * the chains of services that changed (KEP-3453): a full restore at 10k services takes ~50 s on iptables-nft.
 */
export class VipSyncer {
  private readonly states = new Map<Family, FamilyState>();
  private unsubscribe: (() => void) | null = null;
  private timer: NodeJS.Timeout | null = null;
  private periodic: NodeJS.Timeout | null = null;
  private canaryTimer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private again = false;
  private forceFull = false;
  private lastStart = 0;
  private backoffMs = 0;
  private stopped = false;

  constructor(private readonly store: ClusterStore, private readonly opts: SyncerOptions) {
    for (const f of opts.families) {
      this.states.set(f, { applier: new IptablesApplier(f, opts.run ?? runCommand), active: null, changed: new Set(), comments: true });
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
    const partialPossible = !force && st.active !== null && st.prev !== undefined;
    const model = buildModel(snap, { family, nodeName: this.opts.nodeName }, partialPossible ? { prev: st.prev!, changed } : undefined);
    const comments = model.endpointCount <= LARGE_CLUSTER_ENDPOINTS;
    const full = !partialPossible || comments !== st.comments;
    const kind = full ? 'full' : 'partial';
    try {
      const kernel = full ? await st.applier.readState() : undefined;
      const r = renderIptables(model, {
        ...familyRenderBase(this.opts, family), changed: full ? null : changed,
        existingChains: kernel ? kernel.natChains : st.active!,
        entry: kernel && { jumps: kernel.missingJumps, canary: !kernel.canary },
      });
      await st.applier.restore(r.text);
      // After the restore, so that new packets of a flushed flow already meet the new rules.
      for (const e of await st.applier.conntrackDelete(conntrackCleanup(st.prev, model))) log.warn(`IPv${family}: ${e}`);
      st.prev = model;
      st.active = r.activeChains;
      st.comments = comments;
      for (const s of changed) st.changed.delete(s);
      const secs = (performance.now() - t0) / 1000;
      metrics?.syncDuration.observe({ family: `IPv${family}`, sync: kind }, secs);
      metrics?.rules.set({ family: `IPv${family}` }, r.rules);
      metrics?.lastSync.set({ family: `IPv${family}` }, Date.now() / 1000);
      if (full || r.deletedChains.length > 0) {
        log.info(`IPv${family} ${kind} sync: ${model.ports.length} service ports, ${r.rules} rules, ${r.deletedChains.length} stale chains deleted in ${secs.toFixed(3)}s`);
      }
      return true;
    } catch (e) {
      st.active = null;
      metrics?.errors.inc({ family: `IPv${family}`, sync: kind });
      const msg = e instanceof RestoreError ? e.message : `IPv${family} ${kind} sync failed: ${(e as Error).message}`;
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
      if (st.active === null) continue;
      if (!(await st.applier.canaryPresent().catch(() => false))) {
        this.opts.log.warn(`IPv${family}: ${CANARY} is gone (tables flushed by someone else); full resync`);
        st.active = null;
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
      return;
    }
    // Failed families already have active === null, so the retry is a full sync for them.
    this.backoffMs = Math.min(this.backoffMs ? this.backoffMs * 2 : 1000, this.opts.syncPeriodMs);
    this.again = true;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    for (const t of [this.timer, this.periodic, this.canaryTimer]) if (t) clearTimeout(t);
    await this.running;
  }
}
