import { spawn } from 'node:child_process';
import type { Family } from './model.js';
import { FILTER_CHAINS, NAT_CHAINS, isServiceChain } from './render-iptables.js';

export interface CommandResult { code: number; stdout: string; stderr: string }

/** Runs a program with optional stdin; never throws for a non-zero exit (callers decide what failure means). */
export function runCommand(cmd: string, args: string[], input?: string): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => reject(new Error(`cannot run ${cmd}: ${e.message}`)));
    child.on('close', (code, signal) => resolve({
      code: code ?? (signal ? 128 : 1),
      stdout: Buffer.concat(out).toString(),
      stderr: Buffer.concat(err).toString(),
    }));
    // EPIPE when the program exits before reading all of its input: its exit status says why.
    child.stdin.on('error', () => {});
    child.stdin.end(input ?? '');
  });
}

export class RestoreError extends Error {
  constructor(readonly family: Family, readonly line: number | undefined, readonly lineText: string | undefined, readonly stderr: string) {
    super(`ip${family === 6 ? '6' : ''}tables-restore failed${line ? ` at line ${line}: ${lineText ?? '?'}` : ''}: ${firstLine(stderr)}`);
  }
}

function firstLine(s: string): string {
  return s.split('\n').map((l) => l.trim()).find(Boolean) ?? '(no message)';
}

/** `-w 5`: wait for the xtables lock (legacy backend; iptables-nft has none) instead of failing at once. */
const WAIT = ['-w', '5'];
/** kube-proxy's choice (kubernetes#85771): poll the lock every 100 ms rather than every second. */
const RESTORE_FLAGS = ['-w', '5', '-W', '100000', '--noflush'];

export const CANARY = 'KUBE-PROXY-CANARY';
const CANARY_TABLES = ['mangle', 'nat', 'filter'] as const;

interface Jump { table: 'nat' | 'filter'; chain: string; target: string; comment: string; extra: string[] }

const NEW = ['-m', 'conntrack', '--ctstate', 'NEW'];
/** Entry points from built-in chains: the only rules outside our own chains, inserted first and never duplicated. */
export const JUMPS: Jump[] = [
  { table: 'filter', chain: 'INPUT', target: 'KUBE-EXTERNAL-SERVICES', comment: 'kubernetes externally-visible service portals', extra: NEW },
  { table: 'filter', chain: 'FORWARD', target: 'KUBE-EXTERNAL-SERVICES', comment: 'kubernetes externally-visible service portals', extra: NEW },
  { table: 'filter', chain: 'INPUT', target: 'KUBE-NODEPORTS', comment: 'kubernetes health check service ports', extra: [] },
  { table: 'filter', chain: 'FORWARD', target: 'KUBE-SERVICES', comment: 'kubernetes service portals', extra: NEW },
  { table: 'filter', chain: 'OUTPUT', target: 'KUBE-SERVICES', comment: 'kubernetes service portals', extra: NEW },
  { table: 'filter', chain: 'FORWARD', target: 'KUBE-FORWARD', comment: 'kubernetes forwarding rules', extra: [] },
  { table: 'filter', chain: 'INPUT', target: 'KUBE-PROXY-FIREWALL', comment: 'kubernetes load balancer firewall', extra: NEW },
  { table: 'filter', chain: 'OUTPUT', target: 'KUBE-PROXY-FIREWALL', comment: 'kubernetes load balancer firewall', extra: NEW },
  { table: 'filter', chain: 'FORWARD', target: 'KUBE-PROXY-FIREWALL', comment: 'kubernetes load balancer firewall', extra: NEW },
  { table: 'nat', chain: 'OUTPUT', target: 'KUBE-SERVICES', comment: 'kubernetes service portals', extra: [] },
  { table: 'nat', chain: 'PREROUTING', target: 'KUBE-SERVICES', comment: 'kubernetes service portals', extra: [] },
  { table: 'nat', chain: 'POSTROUTING', target: 'KUBE-POSTROUTING', comment: 'kubernetes postrouting rules', extra: [] },
];

function jumpArgs(j: Jump): string[] {
  return [...j.extra, '-m', 'comment', '--comment', j.comment, '-j', j.target];
}

/** `iptables -S` prints the comment quoted; a rule is ours when it jumps to our chain with our comment. */
function hasJump(listing: string, j: Jump): boolean {
  return listing.split('\n').some((l) => l.startsWith(`-A ${j.chain} `) && l.endsWith(` -j ${j.target}`) && l.includes(j.comment));
}

/** Names declared in `iptables-save` output (`:NAME POLICY [p:b]`). */
export function chainsInSave(save: string): string[] {
  const out: string[] = [];
  for (const line of save.split('\n')) if (line.startsWith(':')) out.push(line.slice(1, line.indexOf(' ')));
  return out;
}

export type Run = typeof runCommand;

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

  async restore(text: string): Promise<void> {
    const r = await this.run(this.restoreCmd, RESTORE_FLAGS, text);
    if (r.code === 0) return;
    const m = /line:? (\d+)/.exec(r.stderr);
    const line = m ? Number(m[1]) : undefined;
    throw new RestoreError(this.family, line, line ? text.split('\n')[line - 1] : undefined, r.stderr);
  }

  /** nat chains that exist now: what stale-chain collection compares against on a full sync. */
  async natChains(): Promise<string[]> {
    const r = await this.run(this.save, ['-t', 'nat']);
    if (r.code !== 0) throw new Error(`${this.save} -t nat: ${firstLine(r.stderr)}`);
    return chainsInSave(r.stdout);
  }

  /** Inserts missing entry jumps at the top of the built-in chains (after a restore created their targets). */
  async ensureJumps(): Promise<void> {
    const listings = new Map<string, string>();
    for (const j of JUMPS) {
      const key = `${j.table} ${j.chain}`;
      let listing = listings.get(key);
      if (listing === undefined) {
        const r = await this.run(this.iptables, [...WAIT, '-t', j.table, '-S', j.chain]);
        if (r.code !== 0) throw new Error(`${this.iptables} -t ${j.table} -S ${j.chain}: ${firstLine(r.stderr)}`);
        listings.set(key, (listing = r.stdout));
      }
      if (hasJump(listing, j)) continue;
      const r = await this.run(this.iptables, [...WAIT, '-t', j.table, '-I', j.chain, '1', ...jumpArgs(j)]);
      if (r.code !== 0) throw new Error(`${this.iptables} -t ${j.table} -I ${j.chain}: ${firstLine(r.stderr)}`);
    }
  }

  /** Empty chains in three tables whose disappearance means someone flushed the tables under us. */
  async ensureCanary(): Promise<void> {
    for (const t of CANARY_TABLES) {
      if (await this.canaryIn(t)) continue;
      const r = await this.run(this.iptables, [...WAIT, '-t', t, '-N', CANARY]);
      if (r.code !== 0) throw new Error(`${this.iptables} -t ${t} -N ${CANARY}: ${firstLine(r.stderr)}`);
    }
  }

  async canaryPresent(): Promise<boolean> {
    for (const t of CANARY_TABLES) if (!(await this.canaryIn(t))) return false;
    return true;
  }

  private async canaryIn(table: string): Promise<boolean> {
    return (await this.run(this.iptables, [...WAIT, '-t', table, '-S', CANARY])).code === 0;
  }

  /** Runs `conntrack -D` lists; "0 flow entries" (exit 1) is success. Returns the failures' messages. */
  async conntrackDelete(argLists: string[][]): Promise<string[]> {
    const errors: string[] = [];
    const fam = this.family === 6 ? ['-f', 'ipv6'] : [];
    for (const args of argLists) {
      const r = await this.run('conntrack', [...args, ...fam]);
      if (r.code !== 0 && !/0 flow entries/.test(r.stderr)) errors.push(`conntrack ${args.join(' ')}: ${firstLine(r.stderr)}`);
    }
    return errors;
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
