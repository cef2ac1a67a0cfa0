import { RCODE, TYPE } from '../../server/wire/constants.js';
import type { MxData, RR, SoaData, SrvData } from '../../server/wire/message.js';
import { isSubdomain } from '../../pkg/zone.js';
import { ZoneFileError, type ZoneFile } from './zonefile.js';

/** What a lookup inside one zone produced. `chase` names an out-of-zone CNAME target still to resolve. */
export interface Answer {
  rcode: number;
  aa: boolean;
  answer: RR[];
  authority: RR[];
  additional: RR[];
  chase?: string;
}

/** CoreDNS follows at most this many CNAMEs inside a zone, then answers with what it has. */
const MAX_CHASE = 8;

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

  /** The NS set of the highest zone cut at or above `lname` (strictly below the apex), if any. */
  private cut(lname: string, qtype: number): RR[] | undefined {
    const chain: string[] = [];
    for (let a = lname; a !== this.origin && a !== '.'; a = parent(a)) chain.push(a);
    for (let i = chain.length - 1; i >= 0; i--) {
      const ns = this.nodes.get(chain[i]!)?.get(TYPE.NS);
      // DS lives in the parent side of the cut (RFC 4035 §3.1.4.1).
      if (ns && !(i === 0 && qtype === 43)) return ns;
    }
    return undefined;
  }

  /**
   * Answers `name` (as asked; `lname` lower-case) inside this zone: referral below a cut, apex SOA/NS, exact
   * match with CNAME chasing, RFC 4592 wildcards, NODATA/NXDOMAIN with the SOA in the authority section.
   */
  lookup(name: string, lname: string, qtype: number, depth = 0): Answer {
    const ns = this.cut(lname, qtype);
    if (ns) return { rcode: RCODE.NOERROR, aa: false, answer: [], authority: ns, additional: this.glue(ns) };
    if (lname === this.origin && qtype === TYPE.SOA) return { rcode: RCODE.NOERROR, aa: true, answer: [this.soa], authority: this.ns, additional: [] };
    if (lname === this.origin && qtype === TYPE.NS) return { rcode: RCODE.NOERROR, aa: true, answer: this.ns, authority: [], additional: this.glue(this.ns) };
    const node = this.nodes.get(lname);
    if (node) return this.fromNode(node, name, qtype, depth, false);
    // An empty non-terminal exists: NODATA, and it blocks wildcard synthesis (RFC 4592 §2.2.2).
    if (this.interior.has(lname)) return this.negative(RCODE.NOERROR);
    let encloser = parent(lname);
    while (encloser !== this.origin && !this.exists(encloser)) encloser = parent(encloser);
    const wild = '*.' + encloser;
    const wnode = this.nodes.get(wild);
    if (wnode) return this.fromNode(wnode, name, qtype, depth, true);
    if (this.interior.has(wild)) return this.negative(RCODE.NOERROR);
    return this.negative(RCODE.NXDOMAIN);
  }

  private fromNode(node: Map<number, RR[]>, name: string, qtype: number, depth: number, synthesize: boolean): Answer {
    const own = (rrs: RR[]) => (synthesize ? rrs.map((rr) => ({ ...rr, name })) : rrs);
    const cname = node.get(TYPE.CNAME);
    if (cname && qtype !== TYPE.CNAME) {
      const rr = own(cname)[0]!;
      const target = rr.data as string;
      const lt = target.toLowerCase();
      if (!isSubdomain(lt, this.origin)) return { rcode: RCODE.NOERROR, aa: true, answer: [rr], authority: [], additional: [], chase: target };
      if (depth >= MAX_CHASE) return { rcode: RCODE.NOERROR, aa: true, answer: [rr], authority: this.ns, additional: [] };
      const sub = this.lookup(target, lt, qtype, depth + 1);
      return { ...sub, answer: [rr, ...sub.answer] };
    }
    const rrs = node.get(qtype);
    if (!rrs) return this.negative(RCODE.NOERROR);
    const answer = own(rrs);
    return { rcode: RCODE.NOERROR, aa: true, answer, authority: this.ns, additional: this.glue(answer) };
  }
}
