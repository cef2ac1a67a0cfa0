import { firstLine, runCommand, type Run } from '../pkg/command.js';
import { conntrackDelete } from './apply.js';
import type { BackendSync, FamilyRenderOptions, VipBackend } from './backend.js';
import type { Family, FamilyModel } from './model.js';
import { NFT_TABLE, nftTable, renderNftables, type NftState } from './render-nftables.js';

export class NftError extends Error {
  constructor(readonly family: Family, readonly line: number | undefined, readonly lineText: string | undefined, readonly stderr: string) {
    super(`nft -f (${nftTable(family)}) failed${line ? ` at line ${line}: ${truncate(lineText ?? '?')}` : ''}: ${nftMessage(stderr)}`);
  }
}

function truncate(s: string): string {
  return s.length > 300 ? `${s.slice(0, 300)}…` : s;
}

/** nft prints `/dev/stdin:12:5-10: Error: what` followed by the line and a caret: keep the message. */
function nftMessage(stderr: string): string {
  return /Error: (.*)/.exec(stderr)?.[1]?.trim() ?? firstLine(stderr);
}

/** Runs one transaction; nothing of it is applied when it fails. */
export async function nftApply(run: Run, family: Family, text: string, check = false): Promise<void> {
  const r = await run('nft', [...(check ? ['--check'] : []), '-f', '-'], text);
  if (r.code === 0) return;
  const m = /^[^:\n]*:(\d+):\d+/m.exec(r.stderr);
  const line = m ? Number(m[1]) : undefined;
  throw new NftError(family, line, line ? text.split('\n')[line - 1] : undefined, r.stderr);
}

/**
 * nftables mode: one private table per family, one `nft -f` transaction per sync. After the first sync of
 * the process, a transaction carries only changed map elements and chains. The render state is committed
 * only when the kernel accepted the transaction; a failed one changes nothing on either side, so any next
 * sync (partial or full) is rendered against what the kernel really holds. The syncer still asks for a full
 * one after a failure, to repair whatever made it fail.
 */
export class NftablesBackend implements VipBackend {
  private state: NftState | null = null;
  private full = false;

  constructor(readonly family: Family, private readonly opts: FamilyRenderOptions, private readonly run: Run = runCommand) {}

  get synced(): boolean {
    return this.state !== null && !this.full;
  }

  get stale(): boolean {
    return this.state !== null && (this.state.staleChains.length > 0 || this.state.staleSets.size > 0);
  }

  async sync(model: FamilyModel, changed: ReadonlySet<string> | null): Promise<BackendSync> {
    const r = renderNftables(model, this.opts, this.state, changed === null || this.full);
    await nftApply(this.run, this.family, r.text);
    this.state = r.commit();
    this.full = false;
    return { kind: r.kind === 'partial' ? 'partial' : 'full', rules: r.rules, deleted: r.deleted };
  }

  invalidate(): void {
    this.full = true;
  }

  /** Cheap: lists table names only (listing our table would dump every rule). */
  async drift(): Promise<string | null> {
    const r = await this.run('nft', ['list', 'tables']).catch(() => undefined);
    if (!r || r.code !== 0) return `nft list tables failed: ${r ? firstLine(r.stderr) : 'nft not runnable'}`;
    return r.stdout.split('\n').some((l) => l.trim() === `table ${nftTable(this.family)}`) ? null : `table ${nftTable(this.family)} is gone (deleted by someone else)`;
  }

  conntrackDelete(argLists: string[][]): Promise<string[]> {
    return conntrackDelete(this.run, this.family, argLists);
  }

  /** Adding first makes the delete valid whether the table exists or not. */
  async cleanup(): Promise<void> {
    await nftApply(this.run, this.family, `add table ${nftTable(this.family)}\ndelete table ${nftTable(this.family)}\n`);
    this.state = null;
  }

  dryRun(model: FamilyModel): string {
    return `# nft -f -   (table ${nftTable(this.family)})\n${renderNftables(model, this.opts, null).text}`;
  }
}

/** Whether this kernel and nft can run the nftables mode: a scratch transaction checked (`--check`), never committed. */
export async function nftablesUsable(run: Run = runCommand): Promise<string | null> {
  const t = `ip ${NFT_TABLE}-probe`;
  const probe = [
    `add table ${t}`,
    `add set ${t} a { type ipv4_addr ; flags dynamic,timeout ; timeout 10s ; }`,
    `add map ${t} m { type ipv4_addr . inet_proto . inet_service : verdict ; }`,
    `add chain ${t} c`,
    `add chain ${t} p { type nat hook prerouting priority -100 ; }`,
    `add rule ${t} p ip daddr . meta l4proto . th dport vmap @m`,
    `add rule ${t} p fib daddr type local meta l4proto . th dport vmap { tcp . 1 : goto c }`,
    `add rule ${t} c ip saddr @a update @a { ip saddr } numgen random mod 2 == 0 meta l4proto tcp dnat to 10.0.0.1:1`,
    '',
  ].join('\n');
  try {
    await nftApply(run, 4, probe, true);
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}
