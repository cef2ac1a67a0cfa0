import { reachability, type FamilyModel, type ServicePortModel, type EndpointModel } from './model.js';
import { cidrContains } from '../pkg/ip.js';
import { ByteWriter, LineCounter, StringSink, type LineSink } from './byte-writer.js';

export const MASQ_MARK = '0x4000';

/** Top-level chains, written on every sync (full or partial); kube-proxy's names and order. */
export const FILTER_CHAINS = ['KUBE-SERVICES', 'KUBE-EXTERNAL-SERVICES', 'KUBE-FORWARD', 'KUBE-NODEPORTS', 'KUBE-PROXY-FIREWALL'] as const;
export const NAT_CHAINS = ['KUBE-SERVICES', 'KUBE-NODEPORTS', 'KUBE-POSTROUTING', 'KUBE-MARK-MASQ'] as const;

/** Per-service nat chains: the only chains stale-chain collection may delete. */
export function isServiceChain(name: string): boolean {
  return /^KUBE-(SVC|SVL|EXT|FW|SEP)-[A-Z2-7]{16}$/.test(name);
}

/** An empty chain in mangle, nat and filter: its disappearance means someone flushed the tables under us. */
export const CANARY = 'KUBE-PROXY-CANARY';

export interface Jump { table: 'nat' | 'filter'; chain: string; target: string; comment: string; extra: string[] }

const NEW = ['-m', 'conntrack', '--ctstate', 'NEW'];
/** Entry points from built-in chains (kube-proxy's list): the only rules we place outside our own chains. */
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

export function jumpArgs(j: Jump): string[] {
  return [...j.extra, '-m', 'comment', '--comment', j.comment, '-j', j.target];
}

/**
 * Inserted at position 1 without declaring the built-in chain (that would flush other software's rules):
 * `--noflush` restore input may modify chains it does not declare.
 */
function jumpLine(j: Jump): string {
  return `-I ${j.chain} 1 ${j.extra.join(' ')}${j.extra.length ? ' ' : ''}${comment(j.comment)} -j ${j.target}`;
}

/** kube-proxy stops writing per-endpoint comments above this many endpoints (~40% smaller restore input). */
export const LARGE_CLUSTER_ENDPOINTS = 1000;

/** Service (`ns/name`) → the per-service nat chains its ports use: what a partial sync may have to delete. */
export type ChainIndex = ReadonlyMap<string, readonly string[]>;

export interface RenderOptions {
  /** Pod CIDRs of this family: traffic from outside them to a ClusterIP is masqueraded. Empty: no local detection. */
  clusterCIDRs: string[];
  masqueradeAll: boolean;
  /** This family's `--node-ip`s: NodePorts answer only on these (and they gate loadBalancerSourceRanges from the node). Empty: any local address. */
  nodeIPs: string[];
  /** Services (`ns/name`) whose chains are rewritten; null for a full sync (every chain). */
  changed: ReadonlySet<string> | null;
  /** Full syncs: nat chains in the kernel now; the per-service ones no longer used are flushed and deleted. */
  existingChains?: Iterable<string>;
  /** Partial syncs: what the last successful sync wrote (its result's `state`). */
  previous?: SyncState;
  /** Full syncs: entry jumps missing from the built-in chains, and whether to (re)create the canary chains. */
  entry?: { jumps: Jump[]; canary: boolean };
}

/** What a partial sync needs to know about the previous one. */
export interface SyncState {
  /**
   * Only changed services can leave chains behind, so stale chains are found per changed service instead
   * of across the whole ruleset.
   */
  readonly chains: ChainIndex;
  /**
   * The top-level chains' rules (filter; nat KUBE-SERVICES and friends). When they come out the same, a
   * partial sync leaves them alone: an endpoint change then restores a few dozen lines instead of a line
   * per service (iptables-nft: ~20 ms instead of ~70 ms at 1k services).
   */
  readonly filter: Buffer;
  readonly natTop: Buffer;
  /**
   * What each service port of the model rendered to, with the options it was rendered with. Partial
   * syncs skip most services but still need their top-level lines (KUBE-SERVICES is compared with the last
   * sync's), chain names (stale-chain collection) and rule counts (metrics); the syncer hands in the same
   * model object for a service that did not change, so the next render takes all of that from here instead
   * of rendering it again: a partial sync at 10k services then costs a pass over the ports, not a render.
   */
  readonly ports: ReadonlyMap<ServicePortModel, PortMemo>;
  readonly signature: string;
}

interface PortMemo { readonly top: TopLevel; readonly rules: number; readonly chains: string[] }

export interface RenderResult {
  /** iptables-restore input: *filter then *nat, for `--noflush`, in pieces (tens of MB at 10k services). */
  readonly input: Buffer[];
  /** The same, decoded. */
  readonly text: string;
  /** For the next partial sync, once this input is restored. */
  readonly state: SyncState;
  /** Per-service chains deleted by this input. */
  readonly deletedChains: string[];
  /** Rules the kernel holds after this restore, written or not (metrics). */
  readonly rules: number;
  /** Lines of `text` that are rules (`-A`): the size of the work handed to iptables-restore. */
  readonly writtenRules: number;
}

/** kube-proxy quotes comments that hold spaces; the others stay bare. */
function comment(text: string): string {
  return text.includes(' ') ? `-m comment --comment "${text}"` : `-m comment --comment ${text}`;
}

/** A service port's lines in the top-level chains, and what its own chains need (null: it has none). */
interface TopLevel { nat: string; natLines: number; filter: string; filterLines: number; derived: Derived | null }

/** Restore input with its text decoded only when someone reads it (tests, dry-run, errors). */
class Rendered implements RenderResult {
  constructor(
    readonly input: Buffer[], readonly state: SyncState, readonly deletedChains: string[],
    readonly rules: number, readonly writtenRules: number,
  ) {}

  get text(): string {
    return Buffer.concat(this.input).toString('latin1');
  }
}

const decl = (chain: string) => `:${chain} - [0:0]`;

/**
 * Chains of ours that `existing` has and the new state does not use. A full sync compares the kernel's
 * whole list; a partial one only the chains the changed services had.
 */
function staleChains(index: ChainIndex, opts: RenderOptions): string[] {
  if (opts.changed === null) {
    const candidates = new Set<string>();
    for (const c of opts.existingChains ?? []) if (isServiceChain(c)) candidates.add(c);
    if (candidates.size > 0) for (const list of index.values()) for (const c of list) candidates.delete(c);
    // Not push(...candidates): after a mass deletion that is 100k+ arguments.
    return Array.from(candidates).sort();
  }
  if (!opts.previous) throw new Error('a partial render needs the state of the previous sync');
  const stale: string[] = [];
  for (const service of opts.changed) {
    const now = new Set(index.get(service));
    for (const c of opts.previous.chains.get(service) ?? []) if (!now.has(c)) stale.push(c);
  }
  return stale.sort();
}

/** Rank of a per-service chain's `KUBE-<kind>-` prefix in strcmp order: EXT, FW, SEP, SVC, SVL. */
function kindRank(name: string): number {
  switch (name.charCodeAt(5)) {
    case 69: return 0; // EXT
    case 70: return 1; // FW
    default: return name.charCodeAt(6) === 69 ? 2 : name.charCodeAt(7) === 67 ? 3 : 4; // SEP, SVC, SVL
  }
}

/** Sort key bits: kind (3) and the first 6 base32 characters of the hash (30) leave 20 for the index. */
const INDEX_BITS = 20;

/**
 * Declarations in descending name order. iptables-nft (1.8.x) keeps user chains in a list sorted by name
 * and inserts each new one by walking it from the smallest: declared in random order, 11k chains took
 * 6.8 s to restore, in descending order 1.9 s (1k services × 10 endpoints, measured here). A string sort
 * of 110k names costs ~60 ms, so each name becomes a number sorted natively; names that share their
 * kind and first 30 hash bits may come out in either order, which costs iptables one step.
 */
function writeDeclarations(out: ByteWriter, names: string[]): void {
  const n = names.length;
  if (n === 0) return;
  // One join, not a rope of three pieces per chain.
  const write = (sorted: string[]) => out.raw(`:${sorted.join(' - [0:0]\n:')} - [0:0]\n`, n);
  if (n >= 2 ** INDEX_BITS) return write([...names].sort().reverse());
  const keys = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const name = names[i]!;
    let k = kindRank(name);
    // Base32 in strcmp order: the digits 2-7 come before the letters.
    for (let j = name.length - 16, end = j + 6; j < end; j++) {
      const c = name.charCodeAt(j);
      k = k * 32 + (c < 65 ? c - 50 : c - 59);
    }
    keys[i] = k * 2 ** INDEX_BITS + i;
  }
  keys.sort();
  const sorted = new Array<string>(n);
  for (let i = 0; i < n; i++) sorted[i] = names[keys[n - 1 - i]! % 2 ** INDEX_BITS]!;
  write(sorted);
}

/**
 * Pure: iptables-restore input for one family's desired state. Only owned chains are declared (declaring
 * flushes, so never a built-in one); every declared chain is written completely. A partial sync writes
 * the top-level chains plus the chains of `changed` services, like kube-proxy with KEP-3453.
 */
export function renderIptables(model: FamilyModel, opts: RenderOptions): RenderResult {
  const { family } = model;
  const reject = `REJECT --reject-with ${family === 4 ? 'icmp-port-unreachable' : 'icmp6-port-unreachable'}`;
  const localCIDR = opts.clusterCIDRs[0];
  const endpointComments = model.endpointCount <= LARGE_CLUSTER_ENDPOINTS;
  /** Rules of the top-level nat chains. */
  const natTop = new ByteWriter();
  /** Per-service chains written now, and their rules. */
  const declared: string[] = [];
  const natRules = new ByteWriter();
  const filterRules = new ByteWriter();

  natTop.end(`-A KUBE-POSTROUTING -m mark ! --mark ${MASQ_MARK}/${MASQ_MARK} -j RETURN`);
  // XOR clears the mark so a packet re-traversing the stack (e.g. an IPsec tunnel) is not masqueraded twice.
  natTop.end(`-A KUBE-POSTROUTING -j MARK --xor-mark ${MASQ_MARK}`);
  natTop.end(`-A KUBE-POSTROUTING ${comment('kubernetes service traffic requiring SNAT')} -j MASQUERADE --random-fully`);
  natTop.end(`-A KUBE-MARK-MASQ -j MARK --or-mark ${MASQ_MARK}`);
  filterRules.end('-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP');
  filterRules.end(`-A KUBE-FORWARD ${comment('kubernetes forwarding rules')} -m mark --mark ${MASQ_MARK}/${MASQ_MARK} -j ACCEPT`);
  filterRules.end(`-A KUBE-FORWARD ${comment('kubernetes forwarding conntrack rule')} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`);

  const index = new Map<string, string[]>();
  const skippedRules = new LineCounter();

  const signature = `${localCIDR}|${opts.masqueradeAll}|${opts.nodeIPs.join(',')}`;
  const known = opts.previous?.signature === signature ? opts.previous.ports : undefined;
  const ports = new Map<ServicePortModel, PortMemo>();
  for (const sp of model.ports) {
    const write = opts.changed === null || opts.changed.has(sp.service);
    const memo = known?.get(sp);
    const top = memo?.top ?? topLevel(sp, reject);
    natTop.raw(top.nat, top.natLines);
    filterRules.raw(top.filter, top.filterLines);
    if (!top.derived) {
      ports.set(sp, memo ?? { top, rules: 0, chains: [] });
      continue;
    }
    let { rules = 0, chains = [] } = memo ?? {};
    if (write || !memo) {
      // Written, or counted only (a partial sync meeting a model object it has not rendered before).
      const cx: PortContext = {
        chainRules: write ? natRules : skippedRules, declared: write ? declared : null,
        localCIDR, masqueradeAll: opts.masqueradeAll, nodeIPs: opts.nodeIPs, endpointComments,
      };
      const before = cx.chainRules.lines;
      chains = renderServiceChains(sp, cx, top.derived);
      rules = cx.chainRules.lines - before;
      ports.set(sp, { top, rules, chains });
    } else {
      skippedRules.lines += rules;
      ports.set(sp, memo);
    }
    const had = index.get(sp.service);
    index.set(sp.service, had ? had.concat(chains) : chains);
  }

  const nodePortsComment = comment('kubernetes service nodeports; NOTE: this must be the last rule in this chain');
  if (opts.nodeIPs.length > 0) {
    for (const ip of opts.nodeIPs) natTop.end(`-A KUBE-SERVICES ${nodePortsComment} -d ${ip} -j KUBE-NODEPORTS`);
  } else {
    // NodePorts on localhost would need route_localnet=1 (CVE-2020-8558): not offered.
    const loopback = family === 4 ? '127.0.0.0/8' : '::1/128';
    natTop.end(`-A KUBE-SERVICES ${nodePortsComment} -m addrtype --dst-type LOCAL ! -d ${loopback} -j KUBE-NODEPORTS`);
  }

  const deletedChains = staleChains(index, opts);
  const natChains = new ByteWriter();
  writeDeclarations(natChains, deletedChains.length ? declared.concat(deletedChains) : declared);
  // A writer, not an argument list: after a mass deletion these are 100k+ lines.
  const deletions = new ByteWriter();
  for (const c of deletedChains) deletions.put('-X ').end(c);

  const state: SyncState = { chains: index, filter: Buffer.concat(filterRules.chunks()), natTop: Buffer.concat(natTop.chunks()), ports, signature };
  // Declaring a chain flushes it, so unchanged top-level chains are neither declared nor written.
  const writeFilter = opts.changed === null || !opts.previous!.filter.equals(state.filter);
  const writeNatTop = opts.changed === null || !opts.previous!.natTop.equals(state.natTop);
  const jumps = (table: string) => (opts.entry?.jumps ?? []).filter((j) => j.table === table).map(jumpLine);
  const canary = opts.entry?.canary ? [decl(CANARY)] : [];
  const lines = (...l: string[]) => Buffer.from(l.length ? `${l.join('\n')}\n` : '', 'latin1');
  const filter = [
    lines(...(writeFilter ? FILTER_CHAINS.map(decl) : []), ...canary), ...(writeFilter ? [state.filter] : []), lines(...jumps('filter')),
  ].filter((b) => b.length > 0);
  const input = [
    lines(...(canary.length ? ['*mangle', ...canary, 'COMMIT'] : [])),
    ...(filter.length ? [lines('*filter'), ...filter, lines('COMMIT')] : []),
    lines('*nat', ...(writeNatTop ? NAT_CHAINS.map(decl) : [])), ...natChains.chunks(), lines(...canary),
    ...(writeNatTop ? [state.natTop] : []), ...natRules.chunks(), ...deletions.chunks(), lines(...jumps('nat'), 'COMMIT'),
  ].filter((b) => b.length > 0);
  const writtenRules = (writeFilter ? filterRules.lines : 0) + (writeNatTop ? natTop.lines : 0) + natRules.lines;
  const rules = filterRules.lines + natTop.lines + natRules.lines + skippedRules.lines;
  return new Rendered(input, state, deletedChains, rules, writtenRules);
}

interface PortContext {
  /** Where this service's own chains go: the output, or a counter when a partial sync skips them. */
  chainRules: LineSink;
  /** Where the chains written are listed for declaration; null when a partial sync skips them. */
  declared: string[] | null;
  localCIDR: string | undefined;
  masqueradeAll: boolean;
  nodeIPs: string[];
  endpointComments: boolean;
}

interface Derived {
  hasInternal: boolean;
  hasExternal: boolean;
  internalChain: string;
  externalPolicyChain: string;
  usesExt: boolean;
  usesFW: boolean;
}

const MATCH: Record<ServicePortModel['proto'], string> = { tcp: '-m tcp -p tcp', udp: '-m udp -p udp', sctp: '-m sctp -p sctp' };

/** One service port's top-level rules, following kube-proxy's syncProxyRules loop body. */
function topLevel(sp: ServicePortModel, reject: string): TopLevel {
  const nat = new StringSink();
  const filter = new StringSink();
  const derived = writeTopLevel(sp, reject, nat, filter);
  return { nat: nat.text, natLines: nat.lines, filter: filter.text, filterLines: filter.lines, derived };
}

function writeTopLevel(sp: ServicePortModel, reject: string, natTop: LineSink, filterRules: LineSink): Derived | null {
  const { spn, port, chains } = sp;
  const match = MATCH[sp.proto];
  const { hasInternal, hasExternal, usesExt } = reachability(sp);
  const internalChain = sp.internalLocal ? chains.svl : chains.svc;
  const externalPolicyChain = sp.externalLocal ? chains.svl : chains.svc;
  const usesFW = sp.hasEndpoints && sp.loadBalancerIPs.length > 0 && sp.sourceRanges.length > 0;
  const lbChain = usesFW ? chains.fw : chains.ext;

  let internalFilter = '';
  let externalFilter = '';
  if (!sp.hasEndpoints) {
    internalFilter = externalFilter = `${comment(`${spn} has no endpoints`)} ${match}`;
  } else {
    // Endpoints exist but none on this node: dropping (not rejecting) lets clients retry elsewhere.
    if (!hasInternal) internalFilter = `${comment(`${spn} has no local endpoints`)} ${match}`;
    if (!hasExternal) externalFilter = `${comment(`${spn} has no local endpoints`)} ${match}`;
  }
  const filterTarget = sp.hasEndpoints ? 'DROP' : reject;

  if (hasInternal) {
    natTop.end(`-A KUBE-SERVICES ${comment(`${spn} cluster IP`)} ${match} -d ${sp.clusterIP} --dport ${port} -j ${internalChain}`);
  } else {
    filterRules.end(`-A KUBE-SERVICES ${internalFilter} -d ${sp.clusterIP} --dport ${port} -j ${filterTarget}`);
  }
  for (const ip of sp.externalIPs) {
    if (sp.hasEndpoints) natTop.end(`-A KUBE-SERVICES ${comment(`${spn} external IP`)} ${match} -d ${ip} --dport ${port} -j ${chains.ext}`);
    if (!hasExternal) filterRules.end(`-A KUBE-EXTERNAL-SERVICES ${externalFilter} -d ${ip} --dport ${port} -j ${filterTarget}`);
  }
  for (const ip of sp.loadBalancerIPs) {
    if (sp.hasEndpoints) natTop.end(`-A KUBE-SERVICES ${comment(`${spn} loadbalancer IP`)} ${match} -d ${ip} --dport ${port} -j ${lbChain}`);
    // Packets the FW chain did not accept leave nat un-DNATed and are dropped here.
    if (usesFW) filterRules.end(`-A KUBE-PROXY-FIREWALL ${comment(`${spn} traffic not accepted by ${chains.fw}`)} ${match} -d ${ip} --dport ${port} -j DROP`);
    if (!hasExternal) filterRules.end(`-A KUBE-EXTERNAL-SERVICES ${externalFilter} -d ${ip} --dport ${port} -j ${filterTarget}`);
  }
  if (sp.nodePort !== 0) {
    // NodePorts are deliberately not subject to loadBalancerSourceRanges (kube-proxy behaviour users rely on).
    if (sp.hasEndpoints) natTop.end(`-A KUBE-NODEPORTS ${comment(spn)} ${match} --dport ${sp.nodePort} -j ${chains.ext}`);
    if (!hasExternal) filterRules.end(`-A KUBE-EXTERNAL-SERVICES ${externalFilter} -m addrtype --dst-type LOCAL --dport ${sp.nodePort} -j ${filterTarget}`);
  }
  if (sp.healthCheckNodePort !== 0) {
    filterRules.end(`-A KUBE-NODEPORTS ${comment(`${spn} health check node port`)} -m tcp -p tcp --dport ${sp.healthCheckNodePort} -j ACCEPT`);
  }
  if (!sp.hasEndpoints) return null;
  return { hasInternal, hasExternal, internalChain, externalPolicyChain, usesExt, usesFW };
}

/** The service port's own chains: SVC/SVL, EXT, FW and one SEP per endpoint. Returns their names. */
function renderServiceChains(sp: ServicePortModel, cx: PortContext, d: Derived): string[] {
  const { spn, port, chains } = sp;
  const { hasInternal, hasExternal, internalChain, externalPolicyChain, usesExt, usesFW } = d;
  const match = MATCH[sp.proto];
  const out = cx.chainRules;
  const declared: string[] = [];
  const declare = (chain: string) => {
    declared.push(chain);
    cx.declared?.push(chain);
  };

  if (hasInternal) {
    const vip = `${comment(`${spn} cluster IP`)} ${match} -d ${sp.clusterIP} --dport ${port}`;
    if (cx.masqueradeAll) out.end(`-A ${internalChain} ${vip} -j KUBE-MARK-MASQ`);
    // Off-cluster clients reaching a ClusterIP through a static route must get replies back via this node.
    else if (cx.localCIDR) out.end(`-A ${internalChain} ${vip} ! -s ${cx.localCIDR} -j KUBE-MARK-MASQ`);
  }

  if (usesExt) {
    declare(chains.ext);
    if (!sp.externalLocal) {
      out.end(`-A ${chains.ext} ${comment(`masquerade traffic for ${spn} external destinations`)} -j KUBE-MARK-MASQ`);
    } else {
      // Pods reaching an external IP behave as if they went out to the load balancer and back: any endpoint.
      if (cx.localCIDR) out.end(`-A ${chains.ext} ${comment(`pod traffic for ${spn} external destinations`)} -s ${cx.localCIDR} -j ${chains.svc}`);
      // The node itself would use the external IP as source: it must be masqueraded and may use any endpoint.
      out.end(`-A ${chains.ext} ${comment(`masquerade LOCAL traffic for ${spn} external destinations`)} -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ`);
      out.end(`-A ${chains.ext} ${comment(`route LOCAL traffic for ${spn} external destinations`)} -m addrtype --src-type LOCAL -j ${chains.svc}`);
    }
    if (hasExternal) out.end(`-A ${chains.ext} -j ${externalPolicyChain}`);
  }

  if (usesFW) {
    declare(chains.fw);
    const head = `-A ${chains.fw} ${comment(`${spn} loadbalancer IP`)}`;
    for (const cidr of sp.sourceRanges) out.end(`${head} -s ${cidr} -j ${chains.ext}`);
    // A node reaching its own LB IP loops back with the LB IP as source: allow it when the node is in range.
    if (sp.sourceRanges.some((cidr) => cx.nodeIPs.some((ip) => cidrContains(cidr, ip)))) {
      for (const ip of sp.loadBalancerIPs) out.end(`${head} -s ${ip} -j ${chains.ext}`);
    }
  }

  if (sp.clusterEndpoints.length > 0) {
    declare(chains.svc);
    writeEndpointRules(out, sp, chains.svc, sp.clusterEndpoints, cx.endpointComments);
  }
  if (sp.localEndpoints.length > 0) {
    declare(chains.svl);
    writeEndpointRules(out, sp, chains.svl, sp.localEndpoints, cx.endpointComments);
  }

  // Per-endpoint rules are most of the output: a few large pieces per rule, no string per rule.
  const sepComment = cx.endpointComments ? ` ${comment(spn)}` : '';
  const hairpin = `${sepComment} -s `;
  const dnat = `${sp.affinityTimeout > 0 ? '' : sepComment} ${match} -j DNAT --to-destination `;
  for (const ep of sp.reachable) {
    declare(ep.chain);
    // Hairpin: an endpoint reaching its own service must see a source that is not itself.
    out.put('-A ').put(ep.chain).put(hairpin).put(ep.ip).line(' -j KUBE-MARK-MASQ\n-A ');
    out.put(ep.chain);
    if (sp.affinityTimeout > 0) out.put(sepComment).put(' -m recent --name ').put(ep.chain).put(' --set');
    out.put(dnat).end(ep.hostPort);
  }
  return declared;
}

/** Affinity checks first (a known client sticks), then random spread: rule i of n matches with 1/(n-i). */
function writeEndpointRules(out: LineSink, sp: ServicePortModel, chain: string, eps: EndpointModel[], comments: boolean): void {
  const c = (ep: EndpointModel) => (comments ? ` ${comment(`${sp.spn} -> ${ep.hostPort}`)}` : '');
  if (sp.affinityTimeout > 0) {
    const check = ` --rcheck --seconds ${sp.affinityTimeout} --reap -j `;
    for (const ep of eps) out.put(`-A ${chain}${c(ep)} -m recent --name `).put(ep.chain).put(check).end(ep.chain);
  }
  const n = eps.length;
  const head = `-A ${chain}`;
  for (let i = 0; i < n; i++) {
    const ep = eps[i]!;
    out.put(head);
    if (comments) out.put(c(ep));
    out.put(i < n - 1 ? spreadMatch(n - i) : ' -j ').end(ep.chain);
  }
}

const SPREAD: string[] = [];
/** `%0.10f` of 1/n like kube-proxy: 5 digits repeated themselves past 319 endpoints (kubernetes#83599). */
function spreadMatch(n: number): string {
  return (SPREAD[n] ??= ` -m statistic --mode random --probability ${(1 / n).toFixed(10)} -j `);
}
