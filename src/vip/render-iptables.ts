import { reachability, type FamilyModel, type ServicePortModel, type EndpointModel } from './model.js';
import { ipFamily } from '../cluster/ip.js';

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

export interface RenderOptions {
  /** Pod CIDRs of this family: traffic from outside them to a ClusterIP is masqueraded. Empty: no local detection. */
  clusterCIDRs: string[];
  masqueradeAll: boolean;
  /** This family's `--node-ip`s: NodePorts answer only on these (and they gate loadBalancerSourceRanges from the node). Empty: any local address. */
  nodeIPs: string[];
  /** Services (`ns/name`) whose chains are rewritten; null for a full sync (every chain). */
  changed: ReadonlySet<string> | null;
  /** nat chains known to exist now; the per-service ones not active any more are flushed and deleted. */
  existingChains: Iterable<string>;
  /** Full syncs: entry jumps missing from the built-in chains, and whether to (re)create the canary chains. */
  entry?: { jumps: Jump[]; canary: boolean };
}

export interface RenderResult {
  /** iptables-restore input: *filter then *nat, for `--noflush`. */
  text: string;
  /** Per-service nat chains the rules use (written now or kept from an earlier sync). */
  activeChains: Set<string>;
  /** Per-service chains deleted by this input. */
  deletedChains: string[];
  /** Rules the kernel holds after this restore, written or not (metrics). */
  rules: number;
  /** Lines of `text` that are rules (`-A`): the size of the work handed to iptables-restore. */
  writtenRules: number;
}

const PROBABILITIES: string[] = [];
/** `%0.10f` of 1/n like kube-proxy: 5 digits repeated themselves past 319 endpoints (kubernetes#83599). */
function probability(n: number): string {
  return (PROBABILITIES[n] ??= (1 / n).toFixed(10));
}

/** kube-proxy quotes comments that hold spaces; the others stay bare. */
function comment(text: string): string {
  return text.includes(' ') ? `-m comment --comment "${text}"` : `-m comment --comment ${text}`;
}

function ipToBigInt(ip: string): bigint {
  if (ipFamily(ip) === 4) return ip.split('.').reduce((acc, o) => (acc << 8n) | BigInt(o), 0n);
  const [head = '', tail = ''] = ip.split('::');
  const h = head ? head.split(':') : [];
  const t = ip.includes('::') ? (tail ? tail.split(':') : []) : [];
  const groups = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

export function cidrContains(cidr: string, ip: string): boolean {
  const [base = '', lenText] = cidr.split('/');
  const fam = ipFamily(base);
  if (fam === 0 || fam !== ipFamily(ip)) return false;
  const bits = fam === 4 ? 32 : 128;
  const len = lenText === undefined ? bits : Number(lenText);
  const shift = BigInt(bits - len);
  return ipToBigInt(base) >> shift === ipToBigInt(ip) >> shift;
}

/**
 * Partial syncs skip most services, but still need their chain names (stale-chain collection) and rule
 * counts (metrics). The syncer hands in the same model object for a service that did not change, so what
 * its chains came to is remembered per object instead of rendering them again.
 */
const skippedMemo = new WeakMap<ServicePortModel, { signature: string; rules: number; chains: string[] }>();

/** Collects lines, or only counts them for chains a partial sync leaves alone. */
interface Sink { push(line: string): void }
class Counter implements Sink {
  n = 0;
  push(): void {
    this.n++;
  }
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

  const filterRules: string[] = [];
  const natChains: string[] = NAT_CHAINS.map((c) => `:${c} - [0:0]`);
  const natRules: string[] = [
    `-A KUBE-POSTROUTING -m mark ! --mark ${MASQ_MARK}/${MASQ_MARK} -j RETURN`,
    // XOR clears the mark so a packet re-traversing the stack (e.g. an IPsec tunnel) is not masqueraded twice.
    `-A KUBE-POSTROUTING -j MARK --xor-mark ${MASQ_MARK}`,
    `-A KUBE-POSTROUTING ${comment('kubernetes service traffic requiring SNAT')} -j MASQUERADE --random-fully`,
    `-A KUBE-MARK-MASQ -j MARK --or-mark ${MASQ_MARK}`,
  ];
  filterRules.push(
    '-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP',
    `-A KUBE-FORWARD ${comment('kubernetes forwarding rules')} -m mark --mark ${MASQ_MARK}/${MASQ_MARK} -j ACCEPT`,
    `-A KUBE-FORWARD ${comment('kubernetes forwarding conntrack rule')} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
  );
  const activeChains = new Set<string>();
  const skippedRules = new Counter();
  const skippedDecls = new Counter();

  const signature = `${localCIDR}|${opts.masqueradeAll}|${opts.nodeIPs.join(',')}`;
  for (const sp of model.ports) {
    const write = opts.changed === null || opts.changed.has(sp.service);
    const cx: PortContext = {
      filterRules, natRules, natChains, activeChains,
      chainRules: write ? natRules : skippedRules, chainDecls: write ? natChains : skippedDecls,
      reject, localCIDR, masqueradeAll: opts.masqueradeAll, nodeIPs: opts.nodeIPs, endpointComments,
    };
    const d = renderServicePort(sp, cx);
    if (!d) continue;
    const memo = skippedMemo.get(sp);
    if (!write && memo?.signature === signature) {
      // Unchanged model object, same options: the same chains and rule count as when last rendered.
      skippedRules.n += memo.rules;
      for (const c of memo.chains) activeChains.add(c);
      continue;
    }
    const rulesBefore = write ? natRules.length : skippedRules.n;
    const chains = renderServiceChains(sp, cx, d);
    skippedMemo.set(sp, { signature, rules: (write ? natRules.length : skippedRules.n) - rulesBefore, chains });
  }

  const nodePortsComment = comment('kubernetes service nodeports; NOTE: this must be the last rule in this chain');
  if (opts.nodeIPs.length > 0) {
    for (const ip of opts.nodeIPs) natRules.push(`-A KUBE-SERVICES ${nodePortsComment} -d ${ip} -j KUBE-NODEPORTS`);
  } else {
    // NodePorts on localhost would need route_localnet=1 (CVE-2020-8558): not offered.
    const loopback = family === 4 ? '127.0.0.0/8' : '::1/128';
    natRules.push(`-A KUBE-SERVICES ${nodePortsComment} -m addrtype --dst-type LOCAL ! -d ${loopback} -j KUBE-NODEPORTS`);
  }

  const deletedChains = [...new Set(opts.existingChains)].filter((c) => isServiceChain(c) && !activeChains.has(c)).sort();
  for (const c of deletedChains) natChains.push(`:${c} - [0:0]`);
  const deletions = deletedChains.map((c) => `-X ${c}`);

  const jumps = (table: string) => (opts.entry?.jumps ?? []).filter((j) => j.table === table).map(jumpLine);
  const canary = opts.entry?.canary ? [`:${CANARY} - [0:0]`] : [];
  const text = [
    ...(canary.length ? ['*mangle', ...canary, 'COMMIT'] : []),
    '*filter', ...FILTER_CHAINS.map((c) => `:${c} - [0:0]`), ...canary, ...filterRules, ...jumps('filter'), 'COMMIT',
    '*nat', ...natChains, ...canary, ...natRules, ...deletions, ...jumps('nat'), 'COMMIT', '',
  ].join('\n');
  const writtenRules = filterRules.length + natRules.length;
  return { text, activeChains, deletedChains, rules: writtenRules + skippedRules.n, writtenRules };
}

interface PortContext {
  filterRules: string[];
  /** Top-level nat rules (KUBE-SERVICES, KUBE-NODEPORTS): always written. */
  natRules: string[];
  natChains: string[];
  activeChains: Set<string>;
  /** Where this service's own chains go: the output, or a counter when a partial sync skips them. */
  chainRules: Sink;
  chainDecls: Sink;
  reject: string;
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

/**
 * One service port's top-level rules, following kube-proxy's syncProxyRules loop body. Returns what its
 * own chains need, or null when it has none (no endpoints).
 */
function renderServicePort(sp: ServicePortModel, cx: PortContext): Derived | null {
  const { spn, proto, port, chains } = sp;
  const match = `-m ${proto} -p ${proto}`;
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
  const filterTarget = sp.hasEndpoints ? 'DROP' : cx.reject;

  if (hasInternal) {
    cx.natRules.push(`-A KUBE-SERVICES ${comment(`${spn} cluster IP`)} ${match} -d ${sp.clusterIP} --dport ${port} -j ${internalChain}`);
  } else {
    cx.filterRules.push(`-A KUBE-SERVICES ${internalFilter} -d ${sp.clusterIP} --dport ${port} -j ${filterTarget}`);
  }
  for (const ip of sp.externalIPs) {
    if (sp.hasEndpoints) cx.natRules.push(`-A KUBE-SERVICES ${comment(`${spn} external IP`)} ${match} -d ${ip} --dport ${port} -j ${chains.ext}`);
    if (!hasExternal) cx.filterRules.push(`-A KUBE-EXTERNAL-SERVICES ${externalFilter} -d ${ip} --dport ${port} -j ${filterTarget}`);
  }
  for (const ip of sp.loadBalancerIPs) {
    if (sp.hasEndpoints) cx.natRules.push(`-A KUBE-SERVICES ${comment(`${spn} loadbalancer IP`)} ${match} -d ${ip} --dport ${port} -j ${lbChain}`);
    // Packets the FW chain did not accept leave nat un-DNATed and are dropped here.
    if (usesFW) cx.filterRules.push(`-A KUBE-PROXY-FIREWALL ${comment(`${spn} traffic not accepted by ${chains.fw}`)} ${match} -d ${ip} --dport ${port} -j DROP`);
    if (!hasExternal) cx.filterRules.push(`-A KUBE-EXTERNAL-SERVICES ${externalFilter} -d ${ip} --dport ${port} -j ${filterTarget}`);
  }
  if (sp.nodePort !== 0) {
    // NodePorts are deliberately not subject to loadBalancerSourceRanges (kube-proxy behaviour users rely on).
    if (sp.hasEndpoints) cx.natRules.push(`-A KUBE-NODEPORTS ${comment(spn)} ${match} --dport ${sp.nodePort} -j ${chains.ext}`);
    if (!hasExternal) cx.filterRules.push(`-A KUBE-EXTERNAL-SERVICES ${externalFilter} -m addrtype --dst-type LOCAL --dport ${sp.nodePort} -j ${filterTarget}`);
  }
  if (sp.healthCheckNodePort !== 0) {
    cx.filterRules.push(`-A KUBE-NODEPORTS ${comment(`${spn} health check node port`)} -m tcp -p tcp --dport ${sp.healthCheckNodePort} -j ACCEPT`);
  }
  if (!sp.hasEndpoints) return null;
  return { hasInternal, hasExternal, internalChain, externalPolicyChain, usesExt, usesFW };
}

/** The service port's own chains: SVC/SVL, EXT, FW and one SEP per endpoint. Returns their names. */
function renderServiceChains(sp: ServicePortModel, cx: PortContext, d: Derived): string[] {
  const { spn, proto, port, chains } = sp;
  const { hasInternal, hasExternal, internalChain, externalPolicyChain, usesExt, usesFW } = d;
  const match = `-m ${proto} -p ${proto}`;
  const out = cx.chainRules;
  const declared: string[] = [];
  const declare = (chain: string) => {
    declared.push(chain);
    cx.activeChains.add(chain);
    cx.chainDecls.push(`:${chain} - [0:0]`);
  };

  if (hasInternal) {
    const vip = `${comment(`${spn} cluster IP`)} ${match} -d ${sp.clusterIP} --dport ${port}`;
    if (cx.masqueradeAll) out.push(`-A ${internalChain} ${vip} -j KUBE-MARK-MASQ`);
    // Off-cluster clients reaching a ClusterIP through a static route must get replies back via this node.
    else if (cx.localCIDR) out.push(`-A ${internalChain} ${vip} ! -s ${cx.localCIDR} -j KUBE-MARK-MASQ`);
  }

  if (usesExt) {
    declare(chains.ext);
    if (!sp.externalLocal) {
      out.push(`-A ${chains.ext} ${comment(`masquerade traffic for ${spn} external destinations`)} -j KUBE-MARK-MASQ`);
    } else {
      // Pods reaching an external IP behave as if they went out to the load balancer and back: any endpoint.
      if (cx.localCIDR) out.push(`-A ${chains.ext} ${comment(`pod traffic for ${spn} external destinations`)} -s ${cx.localCIDR} -j ${chains.svc}`);
      // The node itself would use the external IP as source: it must be masqueraded and may use any endpoint.
      out.push(`-A ${chains.ext} ${comment(`masquerade LOCAL traffic for ${spn} external destinations`)} -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ`);
      out.push(`-A ${chains.ext} ${comment(`route LOCAL traffic for ${spn} external destinations`)} -m addrtype --src-type LOCAL -j ${chains.svc}`);
    }
    if (hasExternal) out.push(`-A ${chains.ext} -j ${externalPolicyChain}`);
  }

  if (usesFW) {
    declare(chains.fw);
    const head = `-A ${chains.fw} ${comment(`${spn} loadbalancer IP`)}`;
    for (const cidr of sp.sourceRanges) out.push(`${head} -s ${cidr} -j ${chains.ext}`);
    // A node reaching its own LB IP loops back with the LB IP as source: allow it when the node is in range.
    if (sp.sourceRanges.some((cidr) => cx.nodeIPs.some((ip) => cidrContains(cidr, ip)))) {
      for (const ip of sp.loadBalancerIPs) out.push(`${head} -s ${ip} -j ${chains.ext}`);
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

  const sepComment = cx.endpointComments ? ` ${comment(spn)}` : '';
  for (const ep of sp.reachable) {
    declare(ep.chain);
    // Hairpin: an endpoint reaching its own service must see a source that is not itself.
    out.push(`-A ${ep.chain}${sepComment} -s ${ep.ip} -j KUBE-MARK-MASQ`);
    const affinity = sp.affinityTimeout > 0 ? ` -m recent --name ${ep.chain} --set` : '';
    out.push(`-A ${ep.chain}${sepComment}${affinity} ${match} -j DNAT --to-destination ${ep.hostPort}`);
  }
  return declared;
}

/** Affinity checks first (a known client sticks), then random spread: rule i of n matches with 1/(n-i). */
function writeEndpointRules(out: Sink, sp: ServicePortModel, chain: string, eps: EndpointModel[], comments: boolean): void {
  const c = (ep: EndpointModel) => (comments ? ` ${comment(`${sp.spn} -> ${ep.hostPort}`)}` : '');
  if (sp.affinityTimeout > 0) {
    for (const ep of eps) {
      out.push(`-A ${chain}${c(ep)} -m recent --name ${ep.chain} --rcheck --seconds ${sp.affinityTimeout} --reap -j ${ep.chain}`);
    }
  }
  const n = eps.length;
  for (let i = 0; i < n; i++) {
    const ep = eps[i]!;
    const stat = i < n - 1 ? ` -m statistic --mode random --probability ${probability(n - i)}` : '';
    out.push(`-A ${chain}${c(ep)}${stat} -j ${ep.chain}`);
  }
}
