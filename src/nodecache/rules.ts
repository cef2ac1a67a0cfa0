/**
 * The rules NodeLocal DNSCache needs, rendered for iptables and for nftables. Pure: no kernel access.
 *
 * The list is node-cache's (kubernetes/dns cmd/node-cache/app/cache_app.go), per local IP: raw NOTRACK so
 * queries to the cache and its answers never enter conntrack (no conntrack races, no full tables, and in
 * the transparent setup no kube-proxy DNAT of the kube-dns ClusterIP, which nat only sees for tracked
 * packets), filter ACCEPT because firewalls accept "ESTABLISHED" and untracked packets are never that,
 * and NOTRACK for the liveness probe to `health` on the local IP.
 */

export type Family = 4 | 6;

export interface RuleSpec {
  /** Addresses the cache listens on (node-cache's -localip), canonical text. */
  localIPs: string[];
  dnsPort: number;
  healthPort: number;
}

export interface Rule {
  family: Family;
  /** iptables table; in nftables the base chain of the same hook at the same priority. */
  table: 'raw' | 'filter';
  chain: 'PREROUTING' | 'INPUT' | 'OUTPUT';
  proto: 'tcp' | 'udp';
  /** Which end of the packet is the local IP:port. */
  side: 'dst' | 'src';
  ip: string;
  port: number;
  verdict: 'NOTRACK' | 'ACCEPT';
  /** Unique per rule: what the periodic check looks for, and what names clusterdns in `iptables -L`. */
  comment: string;
}

export const COMMENT_PREFIX = 'clusterdns nodecache:';

export function familyOf(ip: string): Family {
  return ip.includes(':') ? 6 : 4;
}

/** Every rule for every local IP, in the order they should appear at the top of their chains. */
export function buildRules(spec: RuleSpec): Rule[] {
  const rules: Rule[] = [];
  const add = (r: Omit<Rule, 'family' | 'comment'>) => {
    const endpoint = r.ip.includes(':') ? `[${r.ip}]:${r.port}` : `${r.ip}:${r.port}`;
    const what = r.verdict === 'NOTRACK' ? 'no conntrack' : 'accept';
    rules.push({ ...r, family: familyOf(r.ip), comment: `${COMMENT_PREFIX} ${what} ${r.proto} ${r.side === 'dst' ? 'to' : 'from'} ${endpoint} (${r.table} ${r.chain})` });
  };
  for (const ip of spec.localIPs) {
    const dns = { ip, port: spec.dnsPort };
    for (const proto of ['tcp', 'udp'] as const) add({ table: 'raw', chain: 'PREROUTING', proto, side: 'dst', ...dns, verdict: 'NOTRACK' });
    for (const proto of ['tcp', 'udp'] as const) add({ table: 'filter', chain: 'INPUT', proto, side: 'dst', ...dns, verdict: 'ACCEPT' });
    for (const proto of ['tcp', 'udp'] as const) add({ table: 'raw', chain: 'OUTPUT', proto, side: 'src', ...dns, verdict: 'NOTRACK' });
    for (const proto of ['tcp', 'udp'] as const) add({ table: 'filter', chain: 'OUTPUT', proto, side: 'src', ...dns, verdict: 'ACCEPT' });
    // Queries from the node itself (hostNetwork pods, the kubelet) leave through OUTPUT, not PREROUTING.
    for (const proto of ['tcp', 'udp'] as const) add({ table: 'raw', chain: 'OUTPUT', proto, side: 'dst', ...dns, verdict: 'NOTRACK' });
    const health = { ip, port: spec.healthPort, proto: 'tcp' as const, table: 'raw' as const, chain: 'OUTPUT' as const, verdict: 'NOTRACK' as const };
    add({ ...health, side: 'dst' });
    add({ ...health, side: 'src' });
  }
  return rules;
}

/** The match and target of a rule as `iptables -A CHAIN` takes them. */
export function iptablesArgs(r: Rule): string[] {
  const bits = r.family === 6 ? '/128' : '/32';
  return [
    r.side === 'dst' ? '-d' : '-s', r.ip + bits, '-p', r.proto, '-m', r.proto, r.side === 'dst' ? '--dport' : '--sport', String(r.port),
    '-m', 'comment', '--comment', r.comment, '-j', r.verdict,
  ];
}

function quote(arg: string): string {
  return /^[\w./:[\]-]+$/.test(arg) ? arg : `"${arg}"`;
}

/**
 * `iptables-restore --noflush` input that prepends `rules` (built-in chains are never declared, which
 * would flush them). Each `-I` goes to the top, so they are written last first to keep their order.
 */
export function renderIptablesInsert(rules: readonly Rule[]): string {
  let out = '';
  for (const table of ['raw', 'filter'] as const) {
    const mine = rules.filter((r) => r.table === table).reverse();
    if (mine.length) out += [`*${table}`, ...mine.map((r) => `-I ${r.chain} 1 ${iptablesArgs(r).map(quote).join(' ')}`), 'COMMIT', ''].join('\n');
  }
  return out;
}

/** Restore input deleting saved rule lines (`-A CHAIN ...` from `iptables-save`), grouped by table. */
export function renderIptablesDelete(saved: readonly { table: string; line: string }[]): string {
  const byTable = new Map<string, string[]>();
  for (const s of saved) {
    const lines = byTable.get(s.table) ?? [];
    lines.push(`-D ${s.line.slice(3)}`);
    byTable.set(s.table, lines);
  }
  return [...byTable].map(([t, lines]) => [`*${t}`, ...lines, 'COMMIT', ''].join('\n')).join('');
}

/** Our rule lines in `iptables-save -t TABLE` output, and the comment each carries. */
export function ourSavedRules(table: string, save: string): { table: string; line: string; comment: string }[] {
  const out: { table: string; line: string; comment: string }[] = [];
  for (const line of save.split('\n')) {
    if (!line.startsWith('-A ')) continue;
    const comment = /--comment "?((?:[^"\\]|\\.)*?)"? -j /.exec(line)?.[1];
    if (comment?.startsWith(COMMENT_PREFIX)) out.push({ table, line, comment });
  }
  return out;
}

/** One table for both families: nftables evaluates `ip`/`ip6` matches inside an `inet` table. */
export const NFT_TABLE = 'inet clusterdns-nodecache';

/** nft base chains standing for the iptables built-in chains, at the same hooks and priorities. */
const NFT_CHAINS: Record<string, { name: string; hook: string; priority: string }> = {
  'raw PREROUTING': { name: 'raw-prerouting', hook: 'prerouting', priority: 'raw' },
  'raw OUTPUT': { name: 'raw-output', hook: 'output', priority: 'raw' },
  'filter INPUT': { name: 'filter-input', hook: 'input', priority: 'filter' },
  'filter OUTPUT': { name: 'filter-output', hook: 'output', priority: 'filter' },
};

export function nftRule(r: Rule): string {
  const addr = `${r.family === 6 ? 'ip6' : 'ip'} ${r.side === 'dst' ? 'daddr' : 'saddr'} ${r.ip}`;
  return `${addr} ${r.proto} ${r.side === 'dst' ? 'dport' : 'sport'} ${r.port} ${r.verdict === 'NOTRACK' ? 'notrack' : 'accept'} comment "${r.comment}"`;
}

/**
 * One atomic `nft -f` transaction replacing our whole table: adding first makes the delete valid whether
 * it exists or not, so a restart or a repair never leaves duplicates.
 */
export function renderNftables(rules: readonly Rule[]): string {
  const lines = [`add table ${NFT_TABLE}`, `delete table ${NFT_TABLE}`, `table ${NFT_TABLE} {`];
  for (const [key, c] of Object.entries(NFT_CHAINS)) {
    const mine = rules.filter((r) => `${r.table} ${r.chain}` === key);
    if (!mine.length) continue;
    lines.push(`  chain ${c.name} {`, `    type filter hook ${c.hook} priority ${c.priority}; policy accept;`, ...mine.map((r) => `    ${nftRule(r)}`), '  }');
  }
  lines.push('}', '');
  return lines.join('\n');
}

/** Comments of our rules in `nft list table` output. */
export function nftComments(listing: string): string[] {
  return [...listing.matchAll(/comment "([^"]*)"/g)].map((m) => m[1]!).filter((c) => c.startsWith(COMMENT_PREFIX));
}

export const NFT_DELETE = `add table ${NFT_TABLE}\ndelete table ${NFT_TABLE}\n`;
