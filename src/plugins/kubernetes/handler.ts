import { canonicalIP, ipFamily } from '../../pkg/ip.js';
import type { LabelSelector } from '../../cluster/selector.js';
import type { ClusterSource } from '../../cluster/source.js';
import type { ClusterStore } from '../../cluster/store.js';
import type { Endpoint, EndpointSlice, Service } from '../../cluster/types.js';
import { CLASS, HEADER_SIZE, RCODE, TYPE } from '../../server/wire/constants.js';
import type { Message, RR, SoaData } from '../../server/wire/message.js';
import { nameToWire, skipName } from '../../server/wire/name.js';
import { answerMemo, messageBytes } from '../../server/memo.js';
import { canonicalWire } from '../../server/respond.js';
import { Fall } from '../../pkg/fall.js';
import { isSubdomain, matchZone } from '../../pkg/zone.js';
import { PluginError, type Next, type Plugin, type Query, type Reply, type SharedServices } from '../../server/types.js';
import { isPending, resolvePending, type Pending } from '../../server/requery.js';
import { ipFromReverseName } from '../../pkg/reverse.js';
import type { AutoPather, ExternalEntry, Externaler, Transferer } from '../interfaces.js';
import { podSearchPath } from './autopath.js';
import { endpointLabel, isReverse, join, parseExternalRequest, parseRequest, podLabelToIP, trimZone, type RecordRequest } from './names.js';

export type PodMode = 'disabled' | 'insecure' | 'verified';

/** Everything `kubernetes { ... }` configures that answering needs (source options live in setup). */
export interface KubernetesOptions {
  /** Lower-case FQDNs, reverse zones included, in the order written. */
  zones: string[];
  /** First non-reverse zone: PTR targets always use it. */
  primaryZone: string;
  ttl: number;
  /** Empty: every namespace. */
  namespaces: Set<string>;
  namespaceLabels: LabelSelector | null;
  labels: LabelSelector | null;
  pods: PodMode;
  endpointPodNames: boolean;
  noEndpoints: boolean;
  /** Which NXDOMAIN answers pass on to the next plugin. */
  fallthrough: Fall;
  ignoreEmptyService: boolean;
  /** The server's own non-loopback addresses (NS answers). */
  localIPs: string[];
  /** Search domains of the server's own resolv.conf: autopath appends them to a pod's path. */
  hostSearch: string[];
}

/** What a name lookup yields before it becomes records (CoreDNS's msg.Service). */
interface Entry {
  /** An IP, or the target name for ExternalName (then `cname`). */
  host: string;
  cname?: true;
  /** -1 for endpoints of a portless slice: no SRV record. */
  port: number;
  /** Owner the record would have as SRV target, without the zone: `web-0.web.ns.svc`. */
  target: string;
}

/** A record, or a CNAME target outside our zones, resolved through the whole chain after the fact. */
type Item = RR | Pending;

/** An answer before CNAME targets outside the zone are resolved; `tc`: records were left out (too many). */
interface Answered { rcode: number; answer: Item[]; authority: RR[]; additional: RR[]; tc?: boolean }

const DNS_SCHEMA_VERSION = '1.1.0';
const MAX_CNAME_CHAIN = 10;
/** Largest message (TCP): records past it are never sent, so they are not built either. */
const MAX_MESSAGE = 65535;

/**
 * Bounds of the reply memo. CoreDNS keeps no such memo (its `cache` plugin, with its own capacity, is
 * what remembers answers); ours spares building and encoding hot names, so it must not grow with the
 * names askers make up: least recently used entries go first, by count and by estimated bytes.
 */
export const MEMO_ENTRIES = 10_000;
export const MEMO_BYTES = 16 << 20;

/**
 * A memoised answer to (type, lower-case name), in two spellings, each built when first asked: `lower`,
 * the Message for askers who spell the name in lower case (nearly all), and `upper`, an encoding built
 * for the name in upper case that every other spelling is made from (see respell). `next`: passed on.
 */
interface Memo { next?: true; lower?: Reply; upper?: Respellable }

/**
 * An answer encoded for the question in upper case. Names that come from the question (owners, the zone
 * in the SOA and NS names) are then the only ones spelled in upper case, so name compression (exact
 * spelling, as in miekg/dns) points only them at the question; names from cluster data never do. Copying
 * an asker's question over it gives them the asker's spelling, as CoreDNS writes them; the one place the
 * question's spelling is written out in full is the zone at the end of SRV targets (never compressed,
 * RFC 2782): `zoneAt` lists where, `zoneLength` its bytes.
 */
interface Respellable { rcode: number; wire: Buffer; zoneAt: number[]; zoneLength: number }

/**
 * The `kubernetes` plugin: a pure read of the cluster store, mirroring CoreDNS's plugin/kubernetes and
 * plugin/backend_lookup.go. Finished replies are memoised per (type, lower-case name) until the store
 * changes (see Memo); the same Message object is returned for the same question (the server memoises its
 * encoding).
 */
export class KubernetesPlugin implements Plugin, Externaler, AutoPather, Transferer {
  readonly name = 'kubernetes';
  private readonly memo = answerMemo<Memo>(MEMO_ENTRIES, MEMO_BYTES, (m) =>
    64 + (m.lower ? messageBytes(m.lower.msg!) : 0) + (m.upper ? 256 + m.upper.wire.length : 0));
  private memoGeneration = -1;

  constructor(
    readonly opts: KubernetesOptions,
    readonly store: ClusterStore,
    private readonly source: ClusterSource,
    private readonly shared: Pick<SharedServices, 'resolve'>,
  ) {}

  /** Entries memoised now (tests: the memo stays bounded). */
  get memoised(): number {
    return this.memo.size;
  }

  ready(): boolean {
    return this.store.synced;
  }

  async close(): Promise<void> {
    await this.source.stop();
  }

  serve(q: Query, next: Next): Reply | Promise<Reply> {
    const lname = q.lname;
    const zone = matchZone(lname, this.opts.zones);
    if (zone === undefined) return next(q);
    if (q.type === TYPE.AXFR || q.type === TYPE.IXFR) return { rcode: RCODE.REFUSED };

    if (this.memoGeneration !== this.store.generation) {
      this.memo.clear();
      this.memoGeneration = this.store.generation;
    }
    // Other classes reach here only on a listener with forward or chaos; their replies echo their class.
    const key = `${q.class === CLASS.IN ? q.type : `${q.type}c${q.class}`}/${lname}`;
    const lower = q.name === lname;
    const m = this.memo.get(key);
    if (m?.next) return next(q);
    if (lower && m?.lower) return m.lower;
    const respelled = !lower && m?.upper && respell(q, m.upper);
    if (respelled) return respelled;

    const spelling = lower ? lname : lname.toUpperCase();
    const res = this.answer(q, spelling, zone);
    if (res === 'next') {
      this.memo.set(key, { next: true });
      return next(q);
    }
    if (res.answer.some(isPending)) {
      // Answers that include upstream data are not memoised (their TTLs are the upstream's): built as asked.
      const own = lower ? res : this.answer(q, q.name, zone) as Answered;
      // A target that cannot be resolved leaves the CNAME alone (CoreDNS drops it, see README); a truncated
      // target answer makes ours truncated too (CoreDNS backend_lookup).
      return resolvePending(this.shared, own.answer, q).then(({ records, tc }) => this.reply(q, q.name, own, records, tc));
    }
    const reply = this.reply(q, spelling, res, res.answer as RR[]);
    if (lower) {
      this.memo.set(key, { ...m, lower: reply });
      return reply;
    }
    const upper = respellable(reply, nameToWire(zone).length - 1);
    this.memo.set(key, { ...m, upper });
    const out = respell(q, upper);
    if (out) return out;
    // A question respell cannot take (a compression pointer in it) gets an answer of its own.
    const own = this.answer(q, q.name, zone) as Answered;
    return this.reply(q, q.name, own, own.answer as RR[]);
  }

  private reply(q: Query, name: string, res: Answered, answer: RR[], tc = false): Reply {
    const msg: Message = {
      id: 0, qr: true, aa: true, tc: tc || res.tc, rcode: res.rcode, question: { name, type: q.type, class: q.class },
      answer, authority: res.authority, additional: res.additional,
    };
    return { rcode: res.rcode, msg, plugin: this.name };
  }

  /* ------------------------------------------------------------------ answering */

  /** The answer with owner names, and the zone where CoreDNS writes it as asked, spelled as `name`. */
  private answer(q: Query, name: string, zone: string): Answered | 'next' {
    const lname = q.lname;
    const zoneTyped = zone === '.' ? '.' : name.slice(name.length - zone.length);
    let answer: Item[] = [];
    let additional: RR[] = [];
    let tc = false;
    let nameError = false;
    const ttl = this.opts.ttl;

    switch (q.type) {
      case TYPE.A:
      case TYPE.AAAA: {
        const r = this.address(name, lname, q.type, [], zone, zoneTyped);
        if (r === null) nameError = true;
        else answer = r;
        break;
      }
      case TYPE.TXT:
        if (trimZone(lname, zone) === 'dns-version') {
          answer = [{ name: name, type: TYPE.TXT, ttl: 28800, data: [DNS_SCHEMA_VERSION] }];
        } else if (this.records(lname, zone) === null) {
          nameError = true;
        }
        break;
      case TYPE.CNAME: {
        const r = this.services(lname, zone, zoneTyped, q.type);
        if (r === null) nameError = true;
        else if (r[0]?.cname) answer = [{ name: name, type: TYPE.CNAME, ttl, data: r[0].host + '.' }];
        break;
      }
      case TYPE.PTR: {
        const r = this.ptr(name, lname, zone);
        if (r === null) nameError = true;
        else answer = r;
        break;
      }
      case TYPE.SRV: {
        const r = this.srv(name, lname, zone, zoneTyped);
        if (r === null) nameError = true;
        else [answer, additional, tc] = r;
        break;
      }
      case TYPE.SOA:
        if (lname === zone) answer = [this.soa(zoneTyped)];
        break;
      case TYPE.NS:
        if (lname === zone) {
          [answer, additional] = this.ns(name, zoneTyped);
          break;
        }
        nameError = this.services(lname, zone, zoneTyped, TYPE.A) === null;
        break;
      default:
        // Like CoreDNS: a fake A lookup only decides between NXDOMAIN and NODATA (MX, ANY, HINFO, ...).
        nameError = this.services(lname, zone, zoneTyped, TYPE.A) === null;
    }

    if (nameError) {
      if (this.opts.fallthrough.through(lname)) return 'next';
      const rcode = this.store.synced ? RCODE.NXDOMAIN : RCODE.SERVFAIL;
      return { rcode, answer: [], authority: [this.soa(zoneTyped)], additional: [] };
    }
    if (answer.length === 0) return { rcode: RCODE.NOERROR, answer: [], authority: [this.soa(zoneTyped)], additional: [] };
    return { rcode: RCODE.NOERROR, answer, authority: [], additional, tc };
  }

  private soa(zoneTyped: string): RR {
    const ttl = this.opts.ttl;
    return {
      name: zoneTyped, type: TYPE.SOA, ttl: Math.min(ttl, 300),
      data: {
        mname: join('ns.dns', zoneTyped), rname: join('hostmaster', zoneTyped), serial: this.store.serial >>> 0,
        refresh: 7200, retry: 1800, expire: 86400, minimum: ttl,
      },
    };
  }

  /** plugin.A / plugin.AAAA: addresses of the name, CNAMEs chased inside the zone or marked for upstream. */
  private address(owner: string, lname: string, type: number, chain: RR[], zone: string, zoneTyped: string): Item[] | null {
    const found = this.services(lname, zone, zoneTyped, type);
    if (found === null) return null;
    const out: Item[] = [];
    const seen = new Set<string>();
    const family = type === TYPE.A ? 4 : 6;
    for (const e of found) {
      if (!e.cname) {
        if (ipFamily(e.host) === family && !seen.has(e.host)) {
          seen.add(e.host);
          out.push({ name: owner, type, ttl: this.opts.ttl, data: e.host });
        }
        continue;
      }
      const target = e.host + '.';
      if (target === lname || chain.length > MAX_CNAME_CHAIN) continue;
      const cname: RR = { name: owner, type: TYPE.CNAME, ttl: this.opts.ttl, data: target };
      if (chain.some((c) => c.name.toLowerCase() === lname && c.data === target)) continue;
      if (isSubdomain(target, zone)) {
        // Inside the zone: the CNAME only appears together with records of the asked type (else NODATA).
        const sub = this.address(target, target, type, [...chain, cname], zone, zoneTyped);
        if (sub && sub.length > 0) out.push(cname, ...sub);
        continue;
      }
      out.push(cname, { pending: target, type });
    }
    return out;
  }

  /** The SRV records and their glue, and whether answers were left out because they cannot fit. */
  private srv(owner: string, lname: string, zone: string, zoneTyped: string): [RR[], RR[], boolean] | null {
    const found = this.services(lname, zone, zoneTyped, TYPE.SRV);
    if (found === null) return null;
    // CoreDNS divides before removing duplicates: weight = ⌊100 / candidates⌋, at least 1.
    const weight = Math.max(1, Math.floor(100 / found.length));
    const answer: RR[] = [];
    const extra: RR[] = [];
    const seen = new Set<string>();
    // Least wire bytes of what is built so far: an SRV record takes at least an owner pointer, 16 fixed
    // bytes and its whole target; a glue record a pointer, 10 fixed bytes and the address. Records past
    // MAX_MESSAGE are never sent, so a headless Service with thousands of endpoints stops here.
    let answerBytes = HEADER_SIZE;
    let extraBytes = 0;
    for (const e of found) {
      if (e.port < 0) continue;
      const target = join(e.target, zoneTyped);
      const lt = target.toLowerCase();
      if (!seen.has(`${lt} ${e.port}`)) {
        answerBytes += 18 + (target.includes('\\') ? nameToWire(target).length : target.length + 1);
        if (answerBytes > MAX_MESSAGE) return [answer, extra, true];
        seen.add(`${lt} ${e.port}`);
        answer.push({ name: owner, type: TYPE.SRV, ttl: this.opts.ttl, data: { priority: 0, weight, port: e.port, target } });
      }
      if (!seen.has(`${lt} @${e.host}`)) {
        seen.add(`${lt} @${e.host}`);
        const v4 = ipFamily(e.host) === 4;
        extraBytes += v4 ? 16 : 28;
        if (answerBytes + extraBytes <= MAX_MESSAGE) extra.push({ name: target, type: v4 ? TYPE.A : TYPE.AAAA, ttl: this.opts.ttl, data: e.host });
      }
    }
    return [answer, extra, false];
  }

  private ptr(owner: string, lname: string, zone: string): RR[] | null {
    const ip = isReverse(lname) ? ipFromReverseName(lname) : undefined;
    if (ip === undefined) return this.records(lname, zone) === null ? null : [];
    const targets = this.namesForIP(ip);
    if (targets.length === 0) return null;
    return targets.map((t) => ({ name: owner, type: TYPE.PTR, ttl: this.opts.ttl, data: t }));
  }

  /** PTR targets: a ClusterIP wins; else one name per (service, endpoint label) holding the IP. */
  private namesForIP(ip: string): string[] {
    const { namespaces, primaryZone } = this.opts;
    const filtered = (ns: string) => namespaces.size > 0 && !this.namespaceExposed(ns);
    for (const svc of this.store.servicesByClusterIP(ip)) {
      if (filtered(svc.namespace) || !this.visible(svc)) continue;
      return [`${svc.name}.${svc.namespace}.svc.${primaryZone}`];
    }
    if (this.opts.noEndpoints) return [];
    const out = new Set<string>();
    for (const sl of this.store.slicesByAddress(ip)) {
      if (filtered(sl.namespace) || !this.visible(sl) || sl.addressType === 'FQDN') continue;
      for (const ep of sl.endpoints) {
        if (!ep.ready) continue;
        ep.addresses.forEach((a, i) => {
          if (a === ip) out.add(`${this.label(ep, i)}.${sl.service}.${sl.namespace}.svc.${primaryZone}`);
        });
      }
    }
    return [...out];
  }

  private ns(owner: string, zoneTyped: string): [RR[], RR[]] {
    const answer: RR[] = [];
    const extra: RR[] = [];
    const seen = new Set<string>();
    for (const a of this.nameServers(zoneTyped)) {
      extra.push({ name: a.name, type: ipFamily(a.ip) === 4 ? TYPE.A : TYPE.AAAA, ttl: this.opts.ttl, data: a.ip });
      if (seen.has(a.name)) continue;
      seen.add(a.name);
      answer.push({ name: owner, type: TYPE.NS, ttl: this.opts.ttl, data: a.name });
    }
    return [answer, extra];
  }

  /**
   * The names and addresses of this server: the Services whose ready endpoints hold one of our own
   * addresses (kube-dns when running in the cluster), else `ns.dns.<zone>` with our addresses.
   */
  private nameServers(zoneTyped: string, external?: { headless: boolean }): { name: string; ip: string }[] {
    const out: { name: string; ip: string }[] = [];
    let found = false;
    for (const local of this.opts.localIPs) {
      for (const sl of this.readySlicesByAddress(local)) {
        found = true;
        const svc = this.store.service(sl.namespace, sl.service);
        if (!svc || !this.visible(svc)) continue;
        // k8s_external names its own zone without `svc` and offers external addresses instead of cluster ones.
        const svcName = `${svc.name}.${svc.namespace}.${external ? '' : 'svc.'}${zoneTyped}`;
        const byEndpoint = svc.headless && (!external || external.headless);
        if (byEndpoint) {
          for (const ep of sl.endpoints) {
            if (ep.ready) ep.addresses.forEach((ip, i) => out.push({ name: `${this.label(ep, i)}.${svcName}`, ip }));
          }
        } else {
          // A balancer's hostname is no address to give as glue.
          for (const ip of external ? [...svc.externalIPs, ...svc.loadBalancerIngress] : svc.clusterIPs) if (ipFamily(ip)) out.push({ name: svcName, ip });
        }
      }
    }
    if (!found) for (const ip of this.opts.localIPs) out.push({ name: join('ns.dns', zoneTyped), ip });
    return out;
  }

  private readySlicesByAddress(ip: string): EndpointSlice[] {
    if (this.opts.noEndpoints) return [];
    return this.store.slicesByAddress(ip).filter((sl) => this.visible(sl) && sl.endpoints.some((ep) => ep.ready && ep.addresses.includes(ip)));
  }

  /* ------------------------------------------------------------------ the store, as DNS sees it */

  /** Listed in `namespaces` (if given), present in the store, matching `namespace_labels` (if given). */
  private namespaceExposed(ns: string): boolean {
    if (this.opts.namespaces.size > 0 && !this.opts.namespaces.has(ns)) return false;
    const n = this.store.namespace(ns);
    if (!n) return false;
    return !this.opts.namespaceLabels || this.opts.namespaceLabels.matches(n.labels);
  }

  /** Objects outside the `labels` selector do not exist for DNS. */
  private visible(o: { labels: Record<string, string> }): boolean {
    return !this.opts.labels || this.opts.labels.matches(o.labels);
  }

  /** The slices DNS reads for a service: none with `noendpoints`, never FQDN slices. */
  private slices(namespace: string, service: string): EndpointSlice[] {
    if (this.opts.noEndpoints) return [];
    return this.store.slicesFor(namespace, service).filter((sl) => sl.addressType !== 'FQDN' && this.visible(sl));
  }

  /** The label of address `i` of an endpoint (hostname, pod name, dashed IP). */
  private label(ep: Endpoint, i: number): string {
    return endpointLabel(ep.rawAddresses[i]!, ep.hostname, ep.targetRef?.name, this.opts.endpointPodNames);
  }

  /**
   * Ready endpoint addresses of a service with their label and every slice port matching `_port._proto`
   * (a portless slice gives port -1), filtered to one endpoint label when `filter.endpoint` is set.
   * CoreDNS's endpoint walk; external() reuses it for headless services.
   */
  private endpointTargets(svc: Service, filter: Pick<RecordRequest, 'endpoint' | 'port' | 'protocol'>): { ip: string; label: string; port: number }[] {
    const out: { ip: string; label: string; port: number }[] = [];
    for (const sl of this.slices(svc.namespace, svc.name)) {
      const ports = sl.ports.length > 0 ? sl.ports : [{ name: '', port: null, protocol: '' }];
      for (const ep of sl.endpoints) {
        if (!ep.ready) continue;
        ep.addresses.forEach((ip, i) => {
          const label = this.label(ep, i);
          if (filter.endpoint && filter.endpoint !== label.toLowerCase()) return;
          for (const p of ports) if (matchPort(filter, p.name, p.protocol)) out.push({ ip, label, port: p.port ?? -1 });
        });
      }
    }
    return out;
  }

  /** kubernetes.go Services(): the ns.dns name, else Records; ExternalName never yields SRV. */
  private services(lname: string, zone: string, zoneTyped: string, type: number): Entry[] | null {
    if (lname === 'ns.dns.' + zone) {
      if (type !== TYPE.A && type !== TYPE.AAAA) return [];
      const family = type === TYPE.A ? 4 : 6;
      return this.nameServers(zoneTyped).filter((a) => ipFamily(a.ip) === family)
        .map((a) => ({ host: a.ip, port: 0, target: 'ns.dns' }));
    }
    const r = this.records(lname, zone);
    if (r === null || type !== TYPE.SRV) return r;
    return r.filter((e) => !e.cname);
  }

  /** kubernetes.go Records(): null is a name error (NXDOMAIN), [] a name that exists without data. */
  private records(lname: string, zone: string): Entry[] | null {
    const req = parseRequest(lname, zone);
    if (req === null) return null;
    if (req.podOrSvc === '') return [];
    if (isReverse(lname)) return null;
    if (!this.namespaceExposed(req.namespace)) return null;
    return req.podOrSvc === 'pod' ? this.findPods(req) : this.findServices(req);
  }

  private findPods(req: RecordRequest): Entry[] | null {
    if (this.opts.pods === 'disabled') return null;
    if (req.service === '') return [];
    const ip = podLabelToIP(req.service);
    if (ip === undefined) return null;
    const target = `${req.service}.${req.namespace}.pod`;
    if (this.opts.pods === 'insecure') return [{ host: ip, port: 0, target }];
    const pods = this.store.podsByAddress(ip).filter((p) => p.namespace === req.namespace && this.visible(p));
    return pods.length > 0 ? [{ host: ip, port: 0, target }] : null;
  }

  private findServices(req: RecordRequest): Entry[] | null {
    if (req.service === '') return [];
    const svc = this.store.service(req.namespace, req.service);
    if (!svc || !this.visible(svc)) return null;
    if (this.opts.ignoreEmptyService && svc.type !== 'ExternalName' && !svc.headless && this.readyCount(svc) === 0) return null;

    if (svc.type === 'ExternalName') {
      if (req.endpoint || req.port || req.protocol) return null;
      // An IP literal is not a valid ExternalName target: CoreDNS ignores it.
      if (!svc.externalName || canonicalIP(svc.externalName)) return null;
      return [{ host: svc.externalName, cname: true, port: 0, target: `${svc.name}.${svc.namespace}.svc` }];
    }

    const out: Entry[] = [];
    if (svc.headless || req.endpoint) {
      for (const e of this.endpointTargets(svc, req)) {
        out.push({ host: e.ip, port: e.port, target: `${e.label}.${svc.name}.${svc.namespace}.svc` });
      }
      return out.length > 0 ? out : null;
    }

    let matched = false;
    for (const p of svc.ports) {
      if (!matchPort(req, p.name, p.protocol)) continue;
      matched = true;
      for (const ip of svc.clusterIPs) out.push({ host: ip, port: p.port, target: `${svc.name}.${svc.namespace}.svc` });
    }
    return matched ? out : null;
  }

  /* ------------------------------------------------------------------ for other plugins (interfaces.ts) */

  external(lname: string, zone: string, headless: boolean): { entries: ExternalEntry[]; rcode: number } {
    const req = parseExternalRequest(lname, zone);
    if (req === null || !this.namespaceExposed(req.namespace)) return { entries: [], rcode: RCODE.NXDOMAIN };
    if (req.service === '') return { entries: [], rcode: RCODE.NOERROR };
    const svc = this.store.service(req.namespace, req.service);
    const out: ExternalEntry[] = [];
    const ttl = this.opts.ttl;
    if (svc && this.visible(svc)) {
      const external = [...svc.externalIPs, ...svc.loadBalancerIngress];
      const base = `${svc.name}.${svc.namespace}.${zone}`;
      if (headless && external.length === 0 && (svc.headless || req.endpoint)) {
        for (const e of this.endpointTargets(svc, req)) out.push({ host: e.ip, port: e.port, target: `${e.label}.${base}`, ttl });
      } else {
        // Like CoreDNS, an endpoint label on a non-headless name is ignored and the service answers; a
        // Service without ports still answers its addresses (CoreDNS's port -1 sentinel).
        const ports = svc.ports.length > 0 ? svc.ports : [{ name: '', port: -1, protocol: '' }];
        for (const host of external) {
          const cname = ipFamily(host) === 0;
          for (const p of ports) {
            if (matchPort(req, p.name, p.protocol)) out.push({ host, ...(cname ? { cname } : {}), port: p.port, target: base, ttl });
          }
        }
      }
    }
    return { entries: out, rcode: out.length > 0 ? RCODE.NOERROR : RCODE.NXDOMAIN };
  }

  externalReverse(ip: string, zone: string): string[] {
    return this.store.servicesByExternalIP(ip)
      .filter((s) => this.visible(s) && (this.opts.namespaces.size === 0 || this.namespaceExposed(s.namespace)))
      .map((s) => `${s.name}.${s.namespace}.${zone}`);
  }

  externalAddress(zone: string, headless: boolean): { name: string; ip: string }[] {
    return this.nameServers(zone, { headless });
  }

  externalSerial(): number {
    return this.store.serial;
  }

  externalNames(zone: string, headless: boolean): string[] | undefined {
    if (!this.store.synced) return undefined;
    const out: string[] = [];
    for (const svc of this.store.services()) {
      if (!this.namespaceExposed(svc.namespace) || !this.visible(svc)) continue;
      const base = `${svc.name}.${svc.namespace}.${zone}`;
      const named = (ports: { name: string; protocol: string }[]) => {
        for (const p of ports) if (p.name) out.push(`_${p.name.toLowerCase()}._${p.protocol.toLowerCase()}.${base}`);
      };
      if (svc.externalIPs.length > 0 || svc.loadBalancerIngress.length > 0) {
        out.push(base);
        named(svc.ports);
      } else if (headless && svc.headless) {
        const eps = this.endpointTargets(svc, { endpoint: '', port: '', protocol: '' });
        if (eps.length === 0) continue;
        out.push(base, ...new Set(eps.map((e) => `${e.label.toLowerCase()}.${base}`)));
        for (const sl of this.slices(svc.namespace, svc.name)) named(sl.ports);
      }
    }
    return [...new Set(out)];
  }

  /* ------------------------------------------------------------------ zone transfers (CoreDNS xfr.go) */

  /**
   * Transferer: the forward zone `zone` as CoreDNS's kubernetes Transfer() writes it. Reverse zones are not
   * transferred (CoreDNS would write service names under them).
   */
  transfer(zone: string, serial: number): Iterable<RR[]> | undefined {
    if (!this.opts.zones.includes(zone) || isReverse(zone)) return undefined;
    // An empty zone handed to a secondary would wipe its copy: nothing until the first listing is in.
    if (!this.store.synced) throw new PluginError(this.name, `zone ${zone} cannot be transferred before the cluster data is synced`);
    return this.zoneRecords(zone, serial);
  }

  onZoneChange(changed: (zone: string) => void): () => void {
    return this.store.onChange((changes) => {
      if (!this.store.synced || !changes.some((c) => c.dns)) return;
      for (const z of this.opts.zones) if (!isReverse(z)) changed(z);
    });
  }

  private *zoneRecords(zone: string, serial: number): Generator<RR[]> {
    const soa = this.soa(zone);
    yield [soa];
    if (serial !== 0 && (soa.data as SoaData).serial === serial) return;
    const [ns, glue] = this.ns(zone, zone);
    yield ns;
    yield glue;
    const byName = (a: Service, b: Service) => (a.name === b.name ? cmp(a.namespace, b.namespace) : cmp(a.name, b.name));
    const services = [...this.store.services()].filter((s) => this.namespaceExposed(s.namespace) && this.visible(s)).sort(byName);
    for (const svc of services) yield this.serviceRecords(svc, zone);
    yield [soa];
  }

  /** One Service's records in CoreDNS's transfer order: addresses and SRVs of the ClusterIP, else of each endpoint. */
  private serviceRecords(svc: Service, zone: string): RR[] {
    const ttl = this.opts.ttl;
    const base = `${svc.name}.${svc.namespace}.svc.${zone}`;
    const addr = (name: string, ip: string): RR => ({ name, type: ipFamily(ip) === 4 ? TYPE.A : TYPE.AAAA, ttl, data: ip });
    const srv = (name: string, weight: number, port: number, target: string): RR => ({ name, type: TYPE.SRV, ttl, data: { priority: 0, weight, port, target } });
    const portName = (name: string, protocol: string) => `_${name.toLowerCase()}._${protocol.toLowerCase()}.${base}`;
    const out: RR[] = [];
    if (svc.type === 'ExternalName') {
      if (svc.externalName && !canonicalIP(svc.externalName)) out.push({ name: base, type: TYPE.CNAME, ttl, data: svc.externalName + '.' });
      return out;
    }
    if (!svc.headless && svc.clusterIPs.length > 0) {
      for (const ip of svc.clusterIPs) out.push(addr(base, ip));
      for (const p of svc.ports) {
        // The bare SRV at the service name is for peer-finder (coredns/coredns#823); unnamed ports have no other.
        out.push(srv(base, 100, p.port, base));
        if (p.name) out.push(srv(portName(p.name, p.protocol), 100, p.port, base));
      }
      return out;
    }
    for (const sl of this.slices(svc.namespace, svc.name)) {
      const ready = sl.endpoints.filter((ep) => ep.ready);
      const weight = Math.max(1, Math.floor(100 / ready.reduce((n, ep) => n + ep.addresses.length, 0)));
      for (const ep of ready) {
        ep.addresses.forEach((ip, i) => {
          const target = `${this.label(ep, i)}.${base}`;
          out.push(addr(base, ip), addr(target, ip));
          for (const p of sl.ports) if (p.name && p.port !== null) out.push(srv(portName(p.name, p.protocol), weight, p.port, target));
        });
      }
    }
    return out;
  }

  /** Needs `pods verified`: the asking pod is found by its address. */
  autoPath(q: Query): string[] | undefined {
    if (this.opts.pods !== 'verified') return undefined;
    const zone = matchZone(q.lname, this.opts.zones);
    if (!zone) return undefined;
    const pods = this.store.podsByAddress(q.remoteAddress);
    // A node's address (hostNetwork pods share it) says nothing about the asker's namespace (CoreDNS #7122).
    if (pods.length === 0 || pods.some((p) => p.hostNetwork)) return undefined;
    return podSearchPath(pods[0]!.namespace, zone, this.opts.hostSearch);
  }

  autoPathProblem(): string | undefined {
    return this.opts.pods === 'verified' ? undefined : 'needs "pods verified" in the kubernetes block (the client pod is found by its IP)';
  }

  private readyCount(svc: Service): number {
    let n = 0;
    for (const sl of this.slices(svc.namespace, svc.name)) for (const ep of sl.endpoints) if (ep.ready) n += ep.addresses.length;
    return n;
  }
}

const fold = (c: number) => (c >= 0x41 && c <= 0x5a ? c | 0x20 : c);

/** The upper-case spelling's encoding and where its SRV targets end in the zone (see Respellable). */
function respellable(reply: Reply, zoneLength: number): Respellable {
  const wire = canonicalWire(reply.msg!);
  const zoneAt: number[] = [];
  let off = skipName(wire, HEADER_SIZE) + 4;
  const records = wire.readUInt16BE(6) + wire.readUInt16BE(8) + wire.readUInt16BE(10);
  for (let i = 0; i < records; i++) {
    const o = skipName(wire, off);
    off = o + 10 + wire.readUInt16BE(o + 8);
    if (zoneLength > 0 && wire.readUInt16BE(o) === TYPE.SRV) zoneAt.push(off - 1 - zoneLength);
  }
  return { rcode: reply.rcode, wire, zoneAt, zoneLength };
}

/**
 * The answer for this asker's spelling of the question: a copy of the upper-case encoding with the
 * asker's question bytes, and its spelling of the zone in SRV targets. No build, no encoding and nothing
 * kept per spelling (0x20 case randomisation makes nearly every query a new one). Undefined when the
 * question is not the same name byte for byte but for case (a compression pointer in it).
 */
function respell(q: Query, u: Respellable): Reply | undefined {
  const raw = q.raw;
  const end = q.questionEnd;
  const w = u.wire;
  if (w.length < end) return undefined;
  for (let i = HEADER_SIZE; i < end - 4; i++) if (fold(raw[i]!) !== fold(w[i]!)) return undefined;
  for (let i = end - 4; i < end; i++) if (raw[i] !== w[i]) return undefined;
  const out = Buffer.allocUnsafe(w.length);
  w.copy(out);
  raw.copy(out, HEADER_SIZE, HEADER_SIZE, end - 4);
  // The zone's labels end the question name, before its root label and QTYPE/QCLASS.
  const at = end - 5 - u.zoneLength;
  for (const off of u.zoneAt) raw.copy(out, off, at, at + u.zoneLength);
  return { rcode: u.rcode, wire: out, plugin: 'kubernetes' };
}

/** `_port._proto` filters; '' matches anything, comparison ignores case. */
function matchPort(req: Pick<RecordRequest, 'port' | 'protocol'>, name: string, protocol: string): boolean {
  return (req.port === '' || req.port === name.toLowerCase()) && (req.protocol === '' || req.protocol === protocol.toLowerCase());
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
