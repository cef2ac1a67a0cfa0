import { RCODE, TYPE } from '../../server/wire/constants.js';
import type { MxData, RR, SoaData, SrvData } from '../../server/wire/message.js';
import { isSubdomain } from '../../pkg/zone.js';
import { nameToWire } from '../../server/wire/name.js';
import { ZoneFileError, type ZoneFile } from './zonefile.js';

/**
 * What a lookup inside one zone produced. `chase` names an out-of-zone CNAME target still to resolve;
 * `fall` marks answers `fallthrough` may pass on (NXDOMAIN, an empty non-terminal: CoreDNS's NameError and
 * its empty-non-terminal Success).
 */
export interface Answer {
  rcode: number;
  aa: boolean;
  answer: RR[];
  authority: RR[];
  additional: RR[];
  chase?: string;
  fall?: boolean;
}

/** CoreDNS follows at most this many CNAMEs inside a zone, then answers with what it has. */
const MAX_CHASE = 8;

/** A CNAME or DNAME chain that comes back to a name it passed: SERVFAIL with nothing else (CoreDNS #8418, #8475). */
const LOOP: Answer = { rcode: RCODE.SERVFAIL, aa: false, answer: [], authority: [], additional: [] };

/** RFC 4034 §6.1: names compared label by label from the root, lower-case. */
function canonicalOrder(a: string, b: string): number {
  const la = a.split('.').reverse();
  const lb = b.split('.').reverse();
  for (let i = 0; i < Math.min(la.length, lb.length); i++) {
    if (la[i] !== lb[i]) return la[i]! < lb[i]! ? -1 : 1;
  }
  return la.length - lb.length;
}

function parent(name: string): string {
  const i = name.indexOf('.');
  return i < 0 || i === name.length - 1 ? '.' : name.slice(i + 1);
}

/** One loaded zone: records by lower-case owner and type, plus the empty non-terminals (RFC 4592 §2.2.2). */
export class Zone {
  readonly origin: string;
  readonly soa: RR;
  readonly ns: RR[];
  private readonly nodes = new Map<string, Map<number, RR[]>>();
  /** Every proper ancestor (down from the apex) of an owner: names that exist though they own nothing. */
  private readonly interior = new Set<string>();

  constructor(zf: ZoneFile, file: string) {
    this.origin = zf.origin;
    for (const rr of zf.records) {
      const owner = rr.name.toLowerCase();
      let node = this.nodes.get(owner);
      if (!node) this.nodes.set(owner, (node = new Map()));
      const set = node.get(rr.type);
      if (set) set.push(rr);
      else node.set(rr.type, [rr]);
      for (let a = parent(owner); a !== this.origin && isSubdomain(a, this.origin); a = parent(a)) this.interior.add(a);
    }
    for (const [owner, node] of this.nodes) {
      if (node.has(TYPE.CNAME) && node.size > 1) {
        throw new ZoneFileError(file, 0, `${owner} has a CNAME and other data (RFC 1034 §3.6.2)`);
      }
      if ((node.get(TYPE.CNAME)?.length ?? 0) > 1) throw new ZoneFileError(file, 0, `${owner} has more than one CNAME`);
    }
    const apex = this.nodes.get(this.origin);
    const soa = apex?.get(TYPE.SOA);
    if (!soa || soa.length !== 1) throw new ZoneFileError(file, 0, `zone ${this.origin} needs exactly one SOA record at its apex, found ${soa?.length ?? 0}`);
    this.soa = soa[0]!;
    this.ns = apex!.get(TYPE.NS) ?? [];
  }

  get serial(): number {
    return (this.soa.data as SoaData).serial;
  }

  /**
   * Every record for a zone transfer: the SOA, the apex NS, then the rest by owner in canonical order (RFC 4034
   * §6.1, CoreDNS's tree walk), and the SOA again.
   */
  *transfer(): Generator<RR[]> {
    yield [this.soa];
    yield this.ns;
    for (const owner of [...this.nodes.keys()].sort(canonicalOrder)) {
      const node = this.nodes.get(owner)!;
      const rrs = [...node.entries()].flatMap(([type, set]) => (owner === this.origin && (type === TYPE.SOA || type === TYPE.NS) ? [] : set));
      if (rrs.length) yield rrs;
    }
    yield [this.soa];
  }

  private exists(name: string): boolean {
    return this.nodes.has(name) || this.interior.has(name);
  }

  /** A/AAAA of in-zone targets of NS/MX/SRV records (additional section processing, RFC 1035 §4.3.2). */
  private glue(rrs: RR[]): RR[] {
    const out: RR[] = [];
    const seen = new Set<string>();
    for (const rr of rrs) {
      let target: string | undefined;
      if (rr.type === TYPE.NS) target = rr.data as string;
      else if (rr.type === TYPE.MX) target = (rr.data as MxData).exchange;
      else if (rr.type === TYPE.SRV) target = (rr.data as SrvData).target;
      if (!target) continue;
      const t = target.toLowerCase();
      if (seen.has(t)) continue;
      seen.add(t);
      const node = this.nodes.get(t);
      if (node) out.push(...(node.get(TYPE.A) ?? []), ...(node.get(TYPE.AAAA) ?? []));
    }
    return out;
  }

  private negative(rcode: number): Answer {
    return { rcode, aa: true, answer: [], authority: [this.soa], additional: [] };
  }

  /**
   * Walking down from the apex to just above `lname` (and `lname` itself for a cut): the first DNAME that
   * rewrites `lname` or the first zone cut, whichever is higher (CoreDNS checks DNAME before NS per label).
   */
  private above(lname: string, qtype: number): { dname: RR; owner: string } | { ns: RR[] } | undefined {
    const chain: string[] = [];
    for (let a = lname; a !== '.' && isSubdomain(a, this.origin); a = parent(a)) chain.push(a);
    for (let i = chain.length - 1; i >= 0; i--) {
      const owner = chain[i]!;
      const node = this.nodes.get(owner);
      if (!node) continue;
      const dname = node.get(TYPE.DNAME);
      if (dname && i > 0) return { dname: dname[0]!, owner };
      if (owner === this.origin) continue;
      const ns = node.get(TYPE.NS);
      // DS lives in the parent side of the cut (RFC 4035 §3.1.4.1).
      if (ns && !(i === 0 && qtype === 43)) return { ns };
    }
    return undefined;
  }

  /**
   * Answers `name` (as asked; `lname` lower-case) inside this zone: DNAME substitution, referral below a cut,
   * apex SOA/NS, exact match with CNAME chasing, RFC 4592 wildcards, NODATA/NXDOMAIN with the SOA in the
   * authority section.
   */
  lookup(name: string, lname: string, qtype: number): Answer {
    return this.find(name, lname, qtype, new Set([lname]));
  }

  /** `seen`: the names the chain passed so far (lower-case), to stop CNAME/DNAME loops. */
  private find(name: string, lname: string, qtype: number, seen: Set<string>): Answer {
    const up = this.above(lname, qtype);
    if (up && 'dname' in up) return this.substitute(name, qtype, up.dname, up.owner, seen);
    if (up) return { rcode: RCODE.NOERROR, aa: false, answer: [], authority: up.ns, additional: this.glue(up.ns) };
    if (lname === this.origin && qtype === TYPE.SOA) return { rcode: RCODE.NOERROR, aa: true, answer: [this.soa], authority: this.ns, additional: [] };
    if (lname === this.origin && qtype === TYPE.NS) return { rcode: RCODE.NOERROR, aa: true, answer: this.ns, authority: [], additional: this.glue(this.ns) };
    const node = this.nodes.get(lname);
    if (node) return this.fromNode(node, name, qtype, seen, false);
    // An empty non-terminal exists: NODATA, and it blocks wildcard synthesis (RFC 4592 §2.2.2).
    if (this.interior.has(lname)) return { ...this.negative(RCODE.NOERROR), fall: true };
    let encloser = parent(lname);
    while (encloser !== this.origin && !this.exists(encloser)) encloser = parent(encloser);
    const wild = '*.' + encloser;
    const wnode = this.nodes.get(wild);
    if (wnode) return this.fromNode(wnode, name, qtype, seen, true);
    if (this.interior.has(wild)) return this.negative(RCODE.NOERROR);
    return { ...this.negative(RCODE.NXDOMAIN), fall: true };
  }

  /** RFC 6672 §2.2: the DNAME, a CNAME synthesized from it (the DNAME's TTL), then whatever the new name gives. */
  private substitute(name: string, qtype: number, dname: RR, owner: string, seen: Set<string>): Answer {
    const to = dname.data as string;
    // CoreDNS synthesizes from the lower-cased question (request.Name), so the CNAME is spelled in lower case.
    const lname = name.toLowerCase();
    const target = lname.slice(0, lname.length - owner.length) + (to === '.' ? '' : to);
    try {
      nameToWire(target);
    } catch {
      return { rcode: RCODE.YXDOMAIN, aa: true, answer: [dname], authority: [], additional: [] };
    }
    const cname: RR = { name: lname, type: TYPE.CNAME, class: dname.class, ttl: dname.ttl, data: target };
    if (qtype === TYPE.CNAME) return { rcode: RCODE.NOERROR, aa: true, answer: [dname, cname], authority: this.ns, additional: [] };
    return this.follow([dname, cname], target, qtype, seen);
  }

  /** Continues a chain at `target`: inside the zone directly, outside through `chase`; a name seen before is a loop. */
  private follow(prefix: RR[], target: string, qtype: number, seen: Set<string>): Answer {
    const lt = target.toLowerCase();
    if (seen.has(lt)) return LOOP;
    if (!isSubdomain(lt, this.origin)) return { rcode: RCODE.NOERROR, aa: true, answer: prefix, authority: [], additional: [], chase: target };
    if (seen.size > MAX_CHASE) return { rcode: RCODE.NOERROR, aa: true, answer: prefix, authority: this.ns, additional: [] };
    seen.add(lt);
    const sub = this.find(target, lt, qtype, seen);
    if (sub === LOOP) return LOOP;
    return { ...sub, answer: [...prefix, ...sub.answer], fall: false };
  }

  private fromNode(node: Map<number, RR[]>, name: string, qtype: number, seen: Set<string>, synthesize: boolean): Answer {
    const own = (rrs: RR[]) => (synthesize ? rrs.map((rr) => ({ ...rr, name })) : rrs);
    const cname = node.get(TYPE.CNAME);
    if (cname && qtype !== TYPE.CNAME) {
      const rr = own(cname)[0]!;
      return this.follow([rr], rr.data as string, qtype, seen);
    }
    const rrs = node.get(qtype);
    if (!rrs) return this.negative(RCODE.NOERROR);
    const answer = own(rrs);
    return { rcode: RCODE.NOERROR, aa: true, answer, authority: this.ns, additional: this.glue(answer) };
  }
}
