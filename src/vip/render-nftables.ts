import { reachability, type EndpointModel, type Family, type FamilyModel, type ServicePortModel } from './model.js';
import { nftEndpointBase, nftServiceBase } from './hash.js';
import { cidrContains } from '../pkg/ip.js';
import { MASQ_MARK } from './render-iptables.js';

/** One private table per family: everything the nftables mode owns, and nothing else is touched. */
export const NFT_TABLE = 'clusterdns';

export function nftTable(family: Family): string {
  return `${family === 6 ? 'ip6' : 'ip'} ${NFT_TABLE}`;
}

export interface NftRenderOptions {
  /** Pod CIDRs of this family (first one used): traffic from outside to a ClusterIP is masqueraded. */
  clusterCIDRs: string[];
  masqueradeAll: boolean;
  /** This family's `--node-ip`s: NodePorts answer only on these. Empty: every local address but loopback. */
  nodeIPs: string[];
}

/**
 * One service port's claim on a map or set element. Two ports may claim one key (two services with the same
 * VIP:port, invalid but possible): the claims of a key form a list in model order and the first one is in
 * the kernel, so removing the winner hands the key to the next claimant. Lists are never changed in place:
 * a render builds new heads, so the state it read from stays valid.
 */
interface Claim {
  readonly value: string;
  /** null: not from a service port (the node IPs). */
  readonly port: ServicePortModel | null;
  readonly next: Claim | undefined;
}

type Claims = Map<MapName, Map<string, Claim>>;

/**
 * Set or map name → element key → its claims, for every element in the kernel: the one structure too large
 * to copy per sync (~120k elements at 10k services). Successive states share it: a partial render reads it
 * and returns its changes, and `commit()` writes them in once the kernel holds them. Only the newest committed
 * state reads it correctly; `generation` makes a render from an older one fail loudly instead of diffing
 * against the wrong elements.
 */
class ElementIndex {
  generation = 0;
  constructor(readonly claims: Claims) {}
}

/**
 * What the kernel holds after a successful transaction, as far as the next diff needs to know. Everything
 * but the element index belongs to this state alone (unchanged rule arrays are shared with the previous
 * state by identity, never modified); a render never changes the state it reads.
 */
export interface NftState {
  /** Options the base chains were written with; different options rewrite everything. */
  readonly base: string;
  readonly elements: ElementIndex;
  /** `elements.generation` while this state is the newest committed one. */
  readonly generation: number;
  /**
   * The model's service ports and what each rendered to. It is also the render memo: the syncer reuses the
   * model objects of unchanged services, so the next render takes their output from here (a lookup per
   * port) and a partial sync diffs the elements of the others only.
   */
  readonly ports: ReadonlyMap<ServicePortModel, PortOut>;
  /** Per-service chain → its rules. */
  readonly chains: ReadonlyMap<string, readonly string[]>;
  /** Affinity set → timeout (seconds). */
  readonly sets: ReadonlyMap<string, number>;
  /** Flushed by an earlier transaction, deleted by the next one (an object still referenced cannot go). */
  readonly staleChains: readonly string[];
  /** Stale affinity set → its timeout (re-creatable for a robust delete). */
  readonly staleSets: ReadonlyMap<string, number>;
}

export type NftSyncKind = 'fresh' | 'full' | 'partial';

export interface NftRenderResult {
  /** One `nft -f` transaction. */
  text: string;
  /**
   * The state after this transaction, to call once the kernel accepted it (at most once). Until then the
   * state rendered from is untouched, so after a failed transaction the next render starts from it again.
   */
  commit(): NftState;
  kind: NftSyncKind;
  /** Rules in the table after this transaction (metrics). */
  rules: number;
  /** Per-service chains written by this transaction. */
  writtenChains: number;
  /** Stale chains and sets deleted by this transaction. */
  deleted: number;
}

/** Global sets and maps; elements are diffed between syncs. */
const MAPS = {
  'cluster-ips': (a: string) => `type ${a} ; comment "Active ClusterIPs: other ports are rejected"`,
  'nodeport-ips': (a: string) => `type ${a} ; comment "IPs that accept NodePort traffic"`,
  'service-ips': (a: string) => `type ${a} . inet_proto . inet_service : verdict ; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic"`,
  'service-nodeports': () => 'type inet_proto . inet_service : verdict ; comment "NodePort traffic"',
  'no-endpoint-services': (a: string) => `type ${a} . inet_proto . inet_service : verdict ; comment "reject or drop: services without usable endpoints"`,
  'no-endpoint-nodeports': () => 'type inet_proto . inet_service : verdict ; comment "reject or drop: NodePorts without usable endpoints"',
  'firewall-ips': (a: string) => `type ${a} . inet_proto . inet_service : verdict ; comment "destinations subject to loadBalancerSourceRanges"`,
  'hairpin-endpoints': (a: string) => `type ${a} . ${a} ; comment "endpoint . endpoint: a pod reaching itself through a VIP is masqueraded"`,
} as const;
type MapName = keyof typeof MAPS;
const MAP_NAMES = Object.keys(MAPS) as MapName[];

/** Priorities by number: nft 1.0.6 accepts the name `dstnat` only in prerouting. -100 = dstnat, 100 = srcnat. */
const BASE_CHAINS: [name: string, spec: string][] = [
  ['filter-prerouting-pre-dnat', 'type filter hook prerouting priority -110 ;'],
  ['filter-output-pre-dnat', 'type filter hook output priority -110 ;'],
  ['filter-input', 'type filter hook input priority 0 ;'],
  ['filter-forward', 'type filter hook forward priority 0 ;'],
  ['filter-output', 'type filter hook output priority 0 ;'],
  ['nat-prerouting', 'type nat hook prerouting priority -100 ;'],
  ['nat-output', 'type nat hook output priority -100 ;'],
  ['nat-postrouting', 'type nat hook postrouting priority 100 ;'],
];
const HELPER_CHAINS = ['services', 'masquerading', 'mark-for-masquerade', 'reject-chain', 'firewall-check',
  'service-endpoints-check', 'nodeport-endpoints-check', 'cluster-ips-check'];

/** Everything that is not per service: base chains, helpers and their rules. */
function baseRules(family: Family, opts: NftRenderOptions): [chain: string, rule: string][] {
  const ipx = family === 6 ? 'ip6' : 'ip';
  const loopback = family === 6 ? '::1' : '127.0.0.0/8';
  // NodePorts on localhost would need route_localnet=1 (CVE-2020-8558): not offered.
  const nodePortDst = opts.nodeIPs.length ? `${ipx} daddr @nodeport-ips` : `fib daddr type local ${ipx} daddr != ${loopback}`;
  return [
    // Source ranges are checked before DNAT hides the LB IP.
    ['filter-prerouting-pre-dnat', 'ct state new jump firewall-check'],
    ['filter-output-pre-dnat', 'ct state new jump firewall-check'],
    // No-endpoint verdicts after routing (a REJECT needs a route back), on packets nat left alone.
    ['filter-input', 'ct state new jump nodeport-endpoints-check'],
    ['filter-input', 'ct state new jump service-endpoints-check'],
    ['filter-forward', 'ct state new jump service-endpoints-check'],
    ['filter-forward', 'ct state new jump cluster-ips-check'],
    ['filter-output', 'ct state new jump service-endpoints-check'],
    ['filter-output', 'ct state new jump cluster-ips-check'],
    ['nat-prerouting', 'jump services'],
    ['nat-output', 'jump services'],
    ['nat-postrouting', `ct status dnat ${ipx} saddr . ${ipx} daddr @hairpin-endpoints jump mark-for-masquerade`],
    ['nat-postrouting', 'jump masquerading'],
    ['firewall-check', `${ipx} daddr . meta l4proto . th dport vmap @firewall-ips`],
    ['service-endpoints-check', `${ipx} daddr . meta l4proto . th dport vmap @no-endpoint-services`],
    ['nodeport-endpoints-check', `${nodePortDst} meta l4proto . th dport vmap @no-endpoint-nodeports`],
    // A valid port was DNATed in nat already: what still has a ClusterIP as destination is an unknown port.
    ['cluster-ips-check', `${ipx} daddr @cluster-ips counter reject comment "Reject traffic to invalid ports of ClusterIPs"`],
    ['services', `${ipx} daddr . meta l4proto . th dport vmap @service-ips`],
    ['services', `${nodePortDst} meta l4proto . th dport vmap @service-nodeports`],
    ['mark-for-masquerade', `mark set mark or ${MASQ_MARK}`],
    ['masquerading', `mark and ${MASQ_MARK} == 0 return`],
    // XOR clears the mark so a packet re-traversing the stack (e.g. an IPsec tunnel) is not masqueraded twice.
    ['masquerading', `mark set mark xor ${MASQ_MARK}`],
    ['masquerading', 'masquerade fully-random'],
    // TCP clients get a reset, everything else ICMP port unreachable: both fail at once instead of timing out.
    // Counters (on these few shared rules only) show rejects happened here, not at routing.
    ['reject-chain', 'meta l4proto tcp counter reject with tcp reset'],
    ['reject-chain', 'counter reject'],
  ];
}

/** What one service port contributes: its own chains, affinity sets and global elements. */
interface PortOut {
  chains: [name: string, rules: string[]][];
  sets: [name: string, timeout: number][];
  elements: [map: MapName, key: string, value: string][];
}

function renderPort(sp: ServicePortModel, family: Family, opts: NftRenderOptions): PortOut {
  const ipx = family === 6 ? 'ip6' : 'ip';
  const base = nftServiceBase(sp.spn, sp.proto);
  const names = { svc: `service-${base}`, svl: `local-${base}`, ext: `external-${base}`, fw: `firewall-${base}` };
  const out: PortOut = { chains: [], sets: [], elements: [] };
  const el = (map: MapName, key: string, value = '') => out.elements.push([map, key, value]);
  const key = (ip: string) => `${ip} . ${sp.proto} . ${sp.port}`;
  const localCIDR = opts.clusterCIDRs[0];

  const { hasInternal, hasExternal, usesExt } = reachability(sp);
  const internalChain = sp.internalLocal ? names.svl : names.svc;
  const externalPolicyChain = sp.externalLocal ? names.svl : names.svc;
  const usesFW = sp.loadBalancerIPs.length > 0 && sp.sourceRanges.length > 0;
  // No endpoint anywhere: reject. Endpoints, but none this policy may use here: drop (clients retry elsewhere).
  const internalVerdict = !sp.hasEndpoints ? 'goto reject-chain' : 'drop';
  const externalVerdict = internalVerdict;

  el('cluster-ips', sp.clusterIP);
  if (hasInternal) el('service-ips', key(sp.clusterIP), `goto ${internalChain}`);
  else el('no-endpoint-services', key(sp.clusterIP), internalVerdict);
  for (const ip of [...sp.externalIPs, ...sp.loadBalancerIPs]) {
    if (usesExt) el('service-ips', key(ip), `goto ${names.ext}`);
    if (!hasExternal) el('no-endpoint-services', key(ip), externalVerdict);
  }
  if (usesFW) for (const ip of sp.loadBalancerIPs) el('firewall-ips', key(ip), `goto ${names.fw}`);
  if (sp.nodePort !== 0) {
    // NodePorts are deliberately not subject to loadBalancerSourceRanges (kube-proxy behaviour users rely on).
    if (usesExt) el('service-nodeports', `${sp.proto} . ${sp.nodePort}`, `goto ${names.ext}`);
    if (!hasExternal) el('no-endpoint-nodeports', `${sp.proto} . ${sp.nodePort}`, externalVerdict);
  }

  if (usesFW) {
    const allowed = [...sp.sourceRanges];
    // A node reaching its own LB IP loops back with the LB IP as source: allow it when the node is in range.
    if (sp.sourceRanges.some((cidr) => opts.nodeIPs.some((ip) => cidrContains(cidr, ip)))) allowed.push(...sp.loadBalancerIPs);
    out.chains.push([names.fw, [`${ipx} saddr != { ${allowed.join(', ')} } drop`]]);
  }
  if (!sp.hasEndpoints) return out;

  const masq: string[] = [];
  if (hasInternal) {
    if (opts.masqueradeAll) masq.push(`${ipx} daddr ${sp.clusterIP} jump mark-for-masquerade`);
    // Off-cluster clients reaching a ClusterIP through a static route must get replies back via this node.
    else if (localCIDR) masq.push(`${ipx} daddr ${sp.clusterIP} ${ipx} saddr != ${localCIDR} jump mark-for-masquerade`);
  }

  if (usesExt) {
    const rules: string[] = [];
    if (!sp.externalLocal) {
      rules.push('jump mark-for-masquerade');
    } else {
      // Pods reaching an external IP behave as if they went out to the load balancer and back: any endpoint.
      if (localCIDR) rules.push(`${ipx} saddr ${localCIDR} goto ${names.svc} comment "short-circuit pod traffic"`);
      // The node itself would use the external IP as source: it must be masqueraded and may use any endpoint.
      rules.push('fib saddr type local jump mark-for-masquerade comment "masquerade local traffic"');
      rules.push(`fib saddr type local goto ${names.svc} comment "short-circuit local traffic"`);
    }
    if (hasExternal) rules.push(`goto ${externalPolicyChain}`);
    out.chains.push([names.ext, rules]);
  }

  const affinity = (ep: EndpointModel) => `affinity-${nftEndpointBase(sp.spn, sp.proto, ep.ip, ep.port)}`;
  if (sp.affinityTimeout > 0) for (const ep of sp.reachable) out.sets.push([affinity(ep), sp.affinityTimeout]);
  const endpointRules = (eps: EndpointModel[], withMasq: boolean): string[] => {
    const rules = withMasq ? [...masq] : [];
    const dnat = (ep: EndpointModel) => {
      const update = sp.affinityTimeout > 0 ? `update @${affinity(ep)} { ${ipx} saddr } ` : '';
      return `${update}meta l4proto ${sp.proto} dnat to ${ep.hostPort}`;
    };
    // A known client sticks to its endpoint; the update refreshes the timeout like xt_recent --set.
    if (sp.affinityTimeout > 0) for (const ep of eps) rules.push(`${ipx} saddr @${affinity(ep)} ${dnat(ep)}`);
    // Rule i of n matches with 1/(n-i), so every endpoint gets 1/n: the spread of kube-proxy's numgen vmap
    // without an anonymous map per service, whose creation the kernel makes O(sets in the table).
    const n = eps.length;
    eps.forEach((ep, i) => rules.push(i < n - 1 ? `numgen random mod ${n - i} == 0 ${dnat(ep)}` : dnat(ep)));
    return rules;
  };
  if (sp.clusterEndpoints.length > 0) out.chains.push([names.svc, endpointRules(sp.clusterEndpoints, internalChain === names.svc)]);
  if (sp.localEndpoints.length > 0) out.chains.push([names.svl, endpointRules(sp.localEndpoints, internalChain === names.svl)]);
  for (const ep of sp.reachable) el('hairpin-endpoints', `${ep.ip} . ${ep.ip}`);
  return out;
}

/** Ports in model order (spn, then protocol): the order that decides which claim of a key wins. */
function before(a: ServicePortModel | null, b: ServicePortModel | null): boolean {
  if (a === null || b === null) return a === null && b !== null;
  return a.spn < b.spn || (a.spn === b.spn && a.proto < b.proto);
}

/** The list with a claim added after every claim of ports ordered before (or equal to) its port. */
function withClaim(head: Claim | undefined, value: string, port: ServicePortModel | null): Claim {
  if (!head || before(port, head.port)) return { value, port, next: head };
  return { ...head, next: withClaim(head.next, value, port) };
}

/** The list without the claims of `port`; the unchanged tail is shared. */
function withoutClaims(head: Claim | undefined, port: ServicePortModel): Claim | undefined {
  if (!head) return undefined;
  const rest = withoutClaims(head.next, port);
  if (head.port === port) return rest;
  return rest === head.next ? head : { ...head, next: rest };
}

interface ElementChanges {
  /** A new index (fresh and full syncs), or the previous one with `updates` to write in on commit. */
  elements: ElementIndex;
  /** Key → its new claim list (undefined: gone), per map. */
  updates: Map<MapName, Map<string, Claim | undefined>>;
  /** Per map: keys to delete and `key : value` (or key) to add. */
  diff: Map<MapName, { del: string[]; add: string[] }>;
}

const emptyDiff = () => new Map(MAP_NAMES.map((m) => [m, { del: [] as string[], add: [] as string[] }]));
const element = (k: string, v: string) => (v ? `${k} : ${v}` : k);

/** Every element from scratch, all of them to add (fresh and full syncs start from empty maps). */
function freshElements(ports: Map<ServicePortModel, PortOut>, nodeIPs: string[]): ElementChanges {
  const claims: Claims = new Map(MAP_NAMES.map((m) => [m, new Map<string, Claim>()]));
  const add = (map: MapName, k: string, v: string, port: ServicePortModel | null) => {
    const m = claims.get(map)!;
    m.set(k, withClaim(m.get(k), v, port));
  };
  for (const ip of nodeIPs) add('nodeport-ips', ip, '', null);
  for (const [sp, out] of ports) for (const [map, k, v] of out.elements) add(map, k, v, sp);
  const diff = emptyDiff();
  for (const [m, els] of claims) {
    const { add: adds } = diff.get(m)!;
    for (const [k, c] of els) adds.push(element(k, c.value));
  }
  return { elements: new ElementIndex(claims), updates: new Map(), diff };
}

/**
 * The claim lists of the keys that ports leaving or joining the model touch (a changed service's ports
 * are new objects), and the kernel changes that amounts to: cost proportional to the change, not the
 * cluster. The previous index is only read.
 */
function elementChanges(prev: NftState, ports: Map<ServicePortModel, PortOut>): ElementChanges {
  const { claims } = prev.elements;
  const updates = new Map(MAP_NAMES.map((m) => [m, new Map<string, Claim | undefined>()]));
  const update = (map: MapName, k: string, change: (head: Claim | undefined) => Claim | undefined) => {
    const u = updates.get(map)!;
    u.set(k, change(u.has(k) ? u.get(k) : claims.get(map)!.get(k)));
  };
  for (const [sp, out] of prev.ports) {
    if (ports.has(sp)) continue;
    for (const [map, k] of out.elements) update(map, k, (head) => withoutClaims(head, sp));
  }
  for (const [sp, out] of ports) {
    if (prev.ports.has(sp)) continue;
    for (const [map, k, v] of out.elements) update(map, k, (head) => withClaim(head, v, sp));
  }
  const diff = emptyDiff();
  for (const [m, keys] of updates) {
    const { del, add } = diff.get(m)!;
    for (const [k, now] of keys) {
      const had = claims.get(m)!.get(k)?.value;
      const want = now?.value;
      if (had === want) continue;
      if (had !== undefined) del.push(k);
      if (want !== undefined) add.push(element(k, want));
    }
  }
  return { elements: prev.elements, updates, diff };
}

const sameRules = (a: readonly string[] | undefined, b: readonly string[]) =>
  a === b || (a !== undefined && a.length === b.length && a.every((r, i) => r === b[i]));

/**
 * Pure: one `nft -f` transaction that brings the family's table from `prev` to `model`.
 * - `prev` null ('fresh', first sync of a process): the table is deleted and rebuilt in the same transaction.
 * - `full`: every rule and global element is rewritten (repairs any drift) but the table, its chains and
 *   the affinity sets stay, so sticky clients keep their endpoint.
 * - otherwise ('partial'): only changed elements are deleted/added and only changed chains are flushed
 *   and refilled; chains no longer used are flushed now and deleted by the next transaction.
 */
export function renderNftables(model: FamilyModel, opts: NftRenderOptions, prev: NftState | null, full = false): NftRenderResult {
  const { family } = model;
  const table = nftTable(family);
  const addr = family === 6 ? 'ipv6_addr' : 'ipv4_addr';
  const base = JSON.stringify([opts.clusterCIDRs[0] ?? '', opts.masqueradeAll, opts.nodeIPs]);
  if (prev && prev.generation !== prev.elements.generation) {
    throw new Error('renderNftables: the previous state is not the newest committed one (render from the state of the last successful transaction)');
  }
  const kind: NftSyncKind = prev === null ? 'fresh' : full || prev.base !== base ? 'full' : 'partial';
  // A full or fresh transaction starts from empty chains and maps: everything is written.
  const oldChains = kind === 'partial' ? prev!.chains : new Map<string, readonly string[]>();
  // Output of ports the previous state rendered with the same options, taken over as it is.
  const known = prev?.base === base ? prev.ports : undefined;

  // Desired state. Chains and sets are collected from every port (a lookup each for unchanged ones);
  // elements change only for ports that are not in the previous model, so a partial sync diffs just those.
  const ports = new Map<ServicePortModel, PortOut>();
  const chains = new Map<string, readonly string[]>();
  const sets = new Map<string, number>();
  for (const sp of model.ports) {
    const out = known?.get(sp) ?? renderPort(sp, family, opts);
    ports.set(sp, out);
    for (const [name, rules] of out.chains) chains.set(name, rules);
    for (const [name, timeout] of out.sets) sets.set(name, timeout);
  }
  const changes = kind === 'partial' ? elementChanges(prev!, ports) : freshElements(ports, opts.nodeIPs);

  const lines: string[] = [];
  const push = (l: string) => lines.push(l);
  const setSpec = (timeout: number) => `{ type ${addr} ; flags dynamic,timeout ; timeout ${timeout}s ; }`;
  if (kind === 'fresh') {
    // Adding first makes the delete valid whether or not a previous run left the table.
    push(`add table ${table}`);
    push(`delete table ${table}`);
  }
  push(`add table ${table} { comment "clusterdns vip: Service virtual IPs" ; }`);
  if (kind !== 'partial') {
    if (kind === 'full') push(`flush table ${table}`);
    for (const m of MAP_NAMES) {
      const type = MAPS[m](addr).includes(': verdict') ? 'map' : 'set';
      push(`add ${type} ${table} ${m} { ${MAPS[m](addr)} ; }`);
      if (kind === 'full') push(`flush ${type} ${table} ${m}`);
    }
    for (const [name, spec] of BASE_CHAINS) push(`add chain ${table} ${name} { ${spec} }`);
    for (const name of HELPER_CHAINS) push(`add chain ${table} ${name}`);
  }

  // Elements to delete: gone, or their value changed (an element's verdict cannot be replaced in place).
  const adds: [string, string[]][] = [];
  for (const m of MAP_NAMES) {
    const { del, add } = changes.diff.get(m)!;
    if (del.length) push(`delete element ${table} ${m} { ${del.sort().join(', ')} }`);
    if (add.length) adds.push([m, add.sort()]);
  }

  // Stale objects flushed by the previous transaction: nothing references them any more. Each delete is
  // preceded by an add, so a full sync still succeeds when someone removed them already.
  let deleted = 0;
  if (kind !== 'fresh') {
    for (const c of prev!.staleChains) {
      if (chains.has(c)) continue;
      push(`add chain ${table} ${c}`);
      push(`delete chain ${table} ${c}`);
      deleted++;
    }
    for (const [s, timeout] of prev!.staleSets) {
      if (sets.has(s)) continue;
      push(`add set ${table} ${s} ${setSpec(timeout)}`);
      push(`delete set ${table} ${s}`);
      deleted++;
    }
  }

  let rules = baseRules(family, opts).length;
  const written: string[] = [];
  for (const [name, r] of chains) {
    rules += r.length;
    if (!sameRules(oldChains.get(name), r)) written.push(name);
  }
  written.sort();
  for (const c of written) {
    push(`add chain ${table} ${c}`);
    // A full sync flushed the whole table already; a new chain is empty.
    if (oldChains.has(c)) push(`flush chain ${table} ${c}`);
  }
  const before = kind === 'fresh' ? new Map<string, readonly string[]>() : prev!.chains;
  const staleChains = [...before.keys()].filter((c) => !chains.has(c)).sort();
  if (kind === 'partial') for (const c of staleChains) push(`flush chain ${table} ${c}`);

  // Affinity sets. A changed timeout needs a new set, once the flushes above removed the rules using it.
  const beforeSets = kind === 'fresh' ? new Map<string, number>() : prev!.sets;
  for (const [s, timeout] of [...sets].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    const had = beforeSets.get(s);
    if (kind === 'partial' && had === timeout) continue;
    if (had !== undefined && had !== timeout) {
      push(`add set ${table} ${s} ${setSpec(had)}`);
      push(`delete set ${table} ${s}`);
    }
    push(`add set ${table} ${s} ${setSpec(timeout)}`);
  }
  const staleSets = new Map([...beforeSets].filter(([s]) => !sets.has(s)));

  if (kind !== 'partial') for (const [chain, rule] of baseRules(family, opts)) push(`add rule ${table} ${chain} ${rule}`);
  for (const c of written) for (const r of chains.get(c)!) push(`add rule ${table} ${c} ${r}`);
  for (const [m, add] of adds) push(`add element ${table} ${m} { ${add.join(', ')} }`);

  let committed: NftState | undefined;
  const commit = (): NftState => {
    if (committed) return committed;
    const { elements, updates } = changes;
    if (elements.generation !== (prev?.elements === elements ? prev.generation : 0)) {
      throw new Error('renderNftables: another result rendered from the same state was committed already');
    }
    for (const [m, keys] of updates) {
      const claims = elements.claims.get(m)!;
      for (const [k, head] of keys) {
        if (head) claims.set(k, head);
        else claims.delete(k);
      }
    }
    const generation = ++elements.generation;
    committed = { base, elements, generation, ports, chains, sets, staleChains, staleSets };
    return committed;
  };
  return { text: `${lines.join('\n')}\n`, commit, kind, rules, writtenChains: written.length, deleted };
}
