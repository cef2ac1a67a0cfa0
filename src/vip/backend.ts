import { runCommand, type Run } from '../pkg/command.js';
import { IptablesApplier } from './apply.js';
import type { Family, FamilyModel } from './model.js';
import { CANARY, JUMPS, LARGE_CLUSTER_ENDPOINTS, renderIptables, type RenderOptions, type SyncState } from './render-iptables.js';

export interface BackendSync {
  kind: 'full' | 'partial';
  /** Rules the kernel holds in what we own after the sync (metrics). */
  rules: number;
  /** Stale per-service objects deleted by this sync. */
  deleted: number;
}

/**
 * One IP family of one mode (iptables or nftables): everything the syncer needs from the kernel side.
 * A failed sync must leave the previous rules in place (both modes apply in one atomic step).
 */
export interface VipBackend {
  readonly family: Family;
  /** True while the kernel state is known, so the next sync may be partial. */
  readonly synced: boolean;
  /** Objects flushed by the last sync wait for a later one to delete them. */
  readonly stale: boolean;
  /** Programs `model`. `changed`: services changed since the last successful sync; null asks for a full sync. */
  sync(model: FamilyModel, changed: ReadonlySet<string> | null): Promise<BackendSync>;
  /** Makes the next sync a full one (after a failure, or when the kernel state drifted). */
  invalidate(): void;
  /** Polled between syncs: a reason to resync in full (our rules were removed by someone), or null. */
  drift(): Promise<string | null>;
  conntrackDelete(argLists: string[][]): Promise<string[]>;
  /** Removes everything this mode owns in this family. */
  cleanup(): Promise<void>;
  /** What a first sync on a fresh node would apply, with the command that would apply it. */
  dryRun(model: FamilyModel): string;
}

export type FamilyRenderOptions = Pick<RenderOptions, 'clusterCIDRs' | 'masqueradeAll' | 'nodeIPs'>;

/** iptables mode: partial restores of the changed services' chains (KEP-3453), full ones with stale-chain collection. */
export class IptablesBackend implements VipBackend {
  private readonly applier: IptablesApplier;
  /** What the last successful sync wrote; null forces a full sync. */
  private active: SyncState | null = null;
  /** Whether per-endpoint comments were written: flipping it changes every chain, so it needs a full sync. */
  private comments = true;

  constructor(readonly family: Family, private readonly opts: FamilyRenderOptions, run: Run = runCommand) {
    this.applier = new IptablesApplier(family, run);
  }

  get synced(): boolean {
    return this.active !== null;
  }

  /** A restore deletes stale chains itself. */
  readonly stale = false;

  async sync(model: FamilyModel, changed: ReadonlySet<string> | null): Promise<BackendSync> {
    const comments = model.endpointCount <= LARGE_CLUSTER_ENDPOINTS;
    const full = changed === null || this.active === null || comments !== this.comments;
    try {
      const kernel = full ? await this.applier.readState() : undefined;
      const r = renderIptables(model, {
        ...this.opts, changed: full ? null : changed,
        existingChains: kernel?.natChains, previous: this.active ?? undefined,
        entry: kernel && { jumps: kernel.missingJumps, canary: !kernel.canary },
      });
      await this.applier.restore(r.input);
      this.active = r.state;
      this.comments = comments;
      return { kind: full ? 'full' : 'partial', rules: r.rules, deleted: r.deletedChains.length };
    } catch (e) {
      this.active = null;
      throw e;
    }
  }

  invalidate(): void {
    this.active = null;
  }

  async drift(): Promise<string | null> {
    return (await this.applier.canaryPresent().catch(() => false)) ? null : `${CANARY} is gone (tables flushed by someone else)`;
  }

  conntrackDelete(argLists: string[][]): Promise<string[]> {
    return this.applier.conntrackDelete(argLists);
  }

  cleanup(): Promise<void> {
    return this.applier.cleanup();
  }

  dryRun(model: FamilyModel): string {
    // As on a fresh node: no chains of ours yet, every entry jump and the canary created.
    const r = renderIptables(model, { ...this.opts, changed: null, existingChains: [], entry: { jumps: JUMPS, canary: true } });
    return `# ${this.applier.iptables}-restore -w 5 -W 100000 --noflush\n${r.text}`;
  }
}
