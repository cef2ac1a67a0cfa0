import { firstLine, runCommand, type Run } from '../pkg/command.js';
import type { Family } from './model.js';
import { CANARY, FILTER_CHAINS, JUMPS, NAT_CHAINS, isServiceChain, jumpArgs, type Jump } from './render-iptables.js';

export class RestoreError extends Error {
  constructor(readonly family: Family, readonly line: number | undefined, readonly lineText: string | undefined, readonly stderr: string) {
    super(`ip${family === 6 ? '6' : ''}tables-restore failed${line ? ` at line ${line}: ${lineText ?? '?'}` : ''}: ${firstLine(stderr)}`);
  }
}

/** Runs `conntrack -D` lists; "0 flow entries" (exit 1) is success. Returns the failures' messages. */
export async function conntrackDelete(run: Run, family: Family, argLists: string[][]): Promise<string[]> {
  const errors: string[] = [];
  const fam = family === 6 ? ['-f', 'ipv6'] : [];
  for (const args of argLists) {
    const r = await run('conntrack', [...args, ...fam]);
    if (r.code !== 0 && !/0 flow entries/.test(r.stderr)) errors.push(`conntrack ${args.join(' ')}: ${firstLine(r.stderr)}`);
  }
  return errors;
}

/** `-w 5`: wait for the xtables lock (legacy backend; iptables-nft has none) instead of failing at once. */
const WAIT = ['-w', '5'];
/** kube-proxy's choice (kubernetes#85771): poll the lock every 100 ms rather than every second. */
const RESTORE_FLAGS = ['-w', '5', '-W', '100000', '--noflush'];

/** Names declared in `iptables-save` output (`:NAME POLICY [p:b]`). */
export function chainsInSave(save: string): string[] {
  const out: string[] = [];
  for (const line of save.split('\n')) if (line.startsWith(':')) out.push(line.slice(1, line.indexOf(' ')));
  return out;
}

/** What a full sync needs to know about the kernel, from one `iptables-save`. */
export interface KernelState {
  natChains: string[];
  /** Entry jumps not found in the built-in chains. */
  missingJumps: Jump[];
  /** KUBE-PROXY-CANARY present in mangle, nat and filter. */
  canary: boolean;
}

/** Splits `iptables-save` output into table name -> lines. */
function tables(save: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let cur: string[] | undefined;
  for (const line of save.split('\n')) {
    if (line.startsWith('*')) out.set(line.slice(1), (cur = []));
    else cur?.push(line);
  }
  return out;
}

/** `iptables-save` prints the comment quoted; a rule is ours when it jumps to our chain with our comment. */
function hasJump(lines: string[], j: Jump): boolean {
  return lines.some((l) => l.startsWith(`-A ${j.chain} `) && l.endsWith(` -j ${j.target}`) && l.includes(j.comment));
}

/** Every kernel side effect of one IP family: restore, entry jumps, canary, conntrack, cleanup. */
export class IptablesApplier {
  readonly iptables: string;
  private readonly save: string;
  private readonly restoreCmd: string;

  constructor(readonly family: Family, private readonly run: Run = runCommand) {
    const p = family === 6 ? 'ip6tables' : 'iptables';
    this.iptables = p;
    this.save = `${p}-save`;
    this.restoreCmd = `${p}-restore`;
  }

  async restore(input: string | readonly Buffer[]): Promise<void> {
    const r = await this.run(this.restoreCmd, RESTORE_FLAGS, input);
    if (r.code === 0) return;
    const m = /line:? (\d+)/.exec(r.stderr);
    const line = m ? Number(m[1]) : undefined;
    const text = typeof input === 'string' ? input : Buffer.concat(input).toString('latin1');
    throw new RestoreError(this.family, line, line ? text.split('\n')[line - 1] : undefined, r.stderr);
  }

  /**
   * One `iptables-save` instead of a call per built-in chain: with iptables-nft every invocation loads the
   * whole ruleset, which at tens of thousands of rules costs about a second each.
   */
  async readState(): Promise<KernelState> {
    const r = await this.run(this.save, []);
    if (r.code !== 0) throw new Error(`${this.save}: ${firstLine(r.stderr)}`);
    const t = tables(r.stdout);
    const declared = (table: string) => chainsInSave((t.get(table) ?? []).join('\n'));
    return {
      natChains: declared('nat'),
      missingJumps: JUMPS.filter((j) => !hasJump(t.get(j.table) ?? [], j)),
      canary: ['mangle', 'nat', 'filter'].every((table) => declared(table).includes(CANARY)),
    };
  }

  /** Polled between full syncs; stops at the first missing one. */
  async canaryPresent(): Promise<boolean> {
    for (const t of ['mangle', 'nat', 'filter']) {
      if ((await this.run(this.iptables, [...WAIT, '-t', t, '-S', CANARY])).code !== 0) return false;
    }
    return true;
  }

  conntrackDelete(argLists: string[][]): Promise<string[]> {
    return conntrackDelete(this.run, this.family, argLists);
  }

  /** Removes the entry jumps, then every chain we own, in one restore per table. */
  async cleanup(): Promise<void> {
    for (const j of JUMPS) {
      // A jump inserted twice by someone else's copy: delete until none is left.
      for (let i = 0; i < 10; i++) {
        if ((await this.run(this.iptables, [...WAIT, '-t', j.table, '-D', j.chain, ...jumpArgs(j)])).code !== 0) break;
      }
    }
    const own: Record<string, (c: string) => boolean> = {
      filter: (c) => (FILTER_CHAINS as readonly string[]).includes(c) || c === CANARY,
      nat: (c) => (NAT_CHAINS as readonly string[]).includes(c) || isServiceChain(c) || c === CANARY,
      mangle: (c) => c === CANARY,
    };
    let text = '';
    for (const [table, owned] of Object.entries(own)) {
      const r = await this.run(this.save, ['-t', table]);
      if (r.code !== 0) throw new Error(`${this.save} -t ${table}: ${firstLine(r.stderr)}`);
      const chains = chainsInSave(r.stdout).filter(owned).sort();
      if (chains.length === 0) continue;
      // Declaring flushes, so no rule of ours still references a chain being deleted.
      text += [`*${table}`, ...chains.map((c) => `:${c} - [0:0]`), ...chains.map((c) => `-X ${c}`), 'COMMIT', ''].join('\n');
    }
    if (text) await this.restore(text);
  }
}
