import { firstLine, type Run } from '../pkg/command.js';
import {
  NFT_DELETE, NFT_TABLE, nftComments, ourSavedRules, renderIptablesDelete, renderIptablesInsert, renderNftables, type Family, type Rule,
} from './rules.js';

export type Mode = 'iptables' | 'nftables';

export interface EnsureResult {
  /** Our rules found in the kernel before this pass. */
  present: number;
  /** Rules (re)added by this pass. */
  added: number;
  /** Stale or duplicate rules of ours removed by this pass. */
  removed: number;
}

/** Programs a rule list into the kernel and takes it out again; each call reads the kernel first. */
export interface RuleBackend {
  readonly mode: Mode;
  ensure(rules: readonly Rule[]): Promise<EnsureResult>;
  /** Removes every rule of ours, also ones a previous run with other local IPs left. */
  remove(): Promise<void>;
}

export class XtablesLockError extends Error {}

/** kube-proxy's choice (kubernetes#85771): wait up to 5 s for the xtables lock, polling every 100 ms. */
const WAIT = ['-w', '5', '-W', '100000'];

/**
 * iptables mode: one `iptables-save` per table to see what is there, then at most one
 * `iptables-restore --noflush` that prepends what is missing and deletes leftovers. Rules are recognised
 * by their comment, so iptables-save's normalisation (`-m udp`, `/32`, quoting) never matters.
 */
export class IptablesRules implements RuleBackend {
  readonly mode = 'iptables';

  constructor(private readonly run: Run) {}

  private tool(family: Family): string {
    return family === 6 ? 'ip6tables' : 'iptables';
  }

  private async saved(family: Family): Promise<ReturnType<typeof ourSavedRules>> {
    const out: ReturnType<typeof ourSavedRules> = [];
    for (const table of ['raw', 'filter']) {
      const r = await this.run(`${this.tool(family)}-save`, ['-t', table]);
      if (r.code !== 0) throw new Error(`${this.tool(family)}-save -t ${table}: ${firstLine(r.stderr)}`);
      out.push(...ourSavedRules(table, r.stdout));
    }
    return out;
  }

  private async restore(family: Family, text: string): Promise<void> {
    const r = await this.run(`${this.tool(family)}-restore`, [...WAIT, '--noflush'], text);
    if (r.code === 0) return;
    const msg = `${this.tool(family)}-restore: ${firstLine(r.stderr)}`;
    throw /xtables lock/.test(r.stderr) ? new XtablesLockError(msg) : new Error(msg);
  }

  async ensure(rules: readonly Rule[]): Promise<EnsureResult> {
    const total: EnsureResult = { present: 0, added: 0, removed: 0 };
    for (const family of [4, 6] as const) {
      const wanted = rules.filter((r) => r.family === family);
      // An IPv4-only node may have no ip6tables at all; leftovers of an earlier IPv6 run go at teardown.
      if (!wanted.length) continue;
      const saved = await this.saved(family);
      const seen = new Set<string>();
      const leftovers = saved.filter((s) => {
        const keep = wanted.some((r) => r.comment === s.comment) && !seen.has(s.comment);
        seen.add(s.comment);
        return !keep;
      });
      const missing = wanted.filter((r) => !seen.has(r.comment));
      total.present += wanted.length - missing.length;
      if (leftovers.length) await this.restore(family, renderIptablesDelete(leftovers));
      if (missing.length) await this.restore(family, renderIptablesInsert(missing));
      total.added += missing.length;
      total.removed += leftovers.length;
    }
    return total;
  }

  async remove(): Promise<void> {
    for (const family of [4, 6] as const) {
      const saved = await this.saved(family).catch(() => []);
      if (saved.length) await this.restore(family, renderIptablesDelete(saved));
    }
  }
}

/**
 * nftables mode: one table of our own (never a rule in someone else's table), read with one
 * `nft list table` and, when anything differs, replaced whole in one transaction.
 */
export class NftablesRules implements RuleBackend {
  readonly mode = 'nftables';

  constructor(private readonly run: Run) {}

  private async apply(text: string): Promise<void> {
    const r = await this.run('nft', ['-f', '-'], text);
    if (r.code !== 0) throw new Error(`nft -f (table ${NFT_TABLE}): ${/Error: (.*)/.exec(r.stderr)?.[1]?.trim() ?? firstLine(r.stderr)}`);
  }

  async ensure(rules: readonly Rule[]): Promise<EnsureResult> {
    const r = await this.run('nft', ['list', 'table', ...NFT_TABLE.split(' ')]);
    const found = r.code === 0 ? nftComments(r.stdout) : [];
    const wanted = new Set(rules.map((x) => x.comment));
    const present = new Set(found.filter((c) => wanted.has(c))).size;
    if (present === wanted.size && found.length === wanted.size) return { present, added: 0, removed: 0 };
    await this.apply(renderNftables(rules));
    return { present, added: wanted.size - present, removed: found.length - present };
  }

  async remove(): Promise<void> {
    await this.apply(NFT_DELETE);
  }
}
