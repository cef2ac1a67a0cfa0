import { ipFamily } from '../../pkg/ip.js';
import { ipFromReverseName } from '../../pkg/reverse.js';
import { CLASS, RCODE, TYPE } from '../../server/wire/constants.js';
import type { Message, RR, SoaData } from '../../server/wire/message.js';
import { Fall } from '../../pkg/fall.js';
import { isSubdomain, matchZone } from '../../pkg/zone.js';
import { isPending, resolvePending, type Pending } from '../../server/requery.js';
import { PluginError, type Next, type Plugin, type Query, type Reply, type SharedServices } from '../../server/types.js';
import type { ExternalEntry, Externaler, Transferer } from '../interfaces.js';
import { join, trimZone } from '../kubernetes/names.js';

export interface ExternalOptions {
  /** Lower-case FQDNs. */
  zones: string[];
  /** Label under which the zone's own name servers live (`dns` → `ns1.dns.<zone>`). */
  apex: string;
  ttl: number;
  /** Also answer endpoint addresses of headless services without external IPs. */
  headless: boolean;
  /** Which NXDOMAIN answers pass on to the next plugin. */
  fallthrough: Fall;
}

/**
 * `k8s_external`: Service externalIPs and LoadBalancer ingress IPs as `<svc>.<ns>.<zone>` (CoreDNS
 * plugin/k8s_external over plugin/kubernetes/external.go), asked of the block's kubernetes plugin
 * through its Externaler interface.
 */
export class ExternalPlugin implements Plugin, Transferer {
  readonly name = 'k8s_external';

  constructor(
    readonly opts: ExternalOptions,
    private readonly backend: () => Externaler,
    /** Asks the whole server for a LoadBalancer hostname's addresses (CoreDNS's upstream.Lookup). */
    private readonly shared: Pick<SharedServices, 'resolve'>,
  ) {}

  serve(q: Query, next: Next): Reply | Promise<Reply> {
    return this.answerQuery(q, next, true);
  }

  /** `lookups` false: a balancer hostname's records are not asked for (transfers hold only the zone's records). */
  private answerQuery(q: Query, next: Next, lookups: boolean): Reply | Promise<Reply> {
    const lname = q.lname;
    const zone = matchZone(lname, this.opts.zones);
    if (zone === undefined) return next(q);
    const k = this.backend();
    if (lname === zone) return this.apex(q, zone, k);
    if (isSubdomain(lname, `${this.opts.apex}.${zone}`)) return this.subApex(q, zone, k);

    const [entries, rcode] = this.lookup(k, q, lname, zone);
    if (entries.length === 0) {
      if (rcode === RCODE.NXDOMAIN && this.opts.fallthrough.through(lname)) return next(q);
      return this.reply(q, rcode, [], [this.soa(zone, k)]);
    }
    switch (q.type) {
      case TYPE.A:
      case TYPE.AAAA:
        return this.address(q, zone, k, entries, lookups);
      case TYPE.SRV:
        return this.srv(q, zone, k, entries, lookups);
      case TYPE.PTR: {
        const answer = [...new Set(entries.map((e) => e.target))].map((t) => ({ name: q.name, type: TYPE.PTR, ttl: this.opts.ttl, data: t }));
        return this.reply(q, RCODE.NOERROR, answer, []);
      }
    }
    return this.reply(q, RCODE.NOERROR, [], [this.soa(zone, k)]);
  }

  /**
   * External addresses of the asked family; a LoadBalancer's hostname as a CNAME followed by the target's
   * records asked of the whole server (CoreDNS k8s_external a()/aaaa(): the CNAME stays even if that fails,
   * a truncated target answer truncates ours).
   */
  private address(q: Query, zone: string, k: Externaler, entries: ExternalEntry[], lookups: boolean): Reply | Promise<Reply> {
    const family = q.type === TYPE.A ? 4 : 6;
    const answer: (RR | Pending)[] = [];
    const seen = new Set<string>();
    for (const e of entries) {
      if (seen.has(e.host) || (!e.cname && ipFamily(e.host) !== family)) continue;
      seen.add(e.host);
      if (e.cname) {
        answer.push({ name: q.name, type: TYPE.CNAME, ttl: e.ttl, data: `${e.host}.` });
        if (lookups) answer.push({ pending: `${e.host}.`, type: q.type });
      }
      else answer.push({ name: q.name, type: q.type, ttl: this.opts.ttl, data: e.host });
    }
    if (!answer.some(isPending)) return this.found(q, zone, k, answer as RR[], []);
    return resolvePending(this.shared, answer, q).then(({ records, tc }) => this.found(q, zone, k, records, [], tc));
  }

  /**
   * SRV records (the cluster plugin's TTL, weight 100 / candidates) with glue: our TTL for external IPs, the
   * target's A and AAAA records asked of the whole server for a LoadBalancer hostname, which is the target.
   */
  private srv(q: Query, zone: string, k: Externaler, entries: ExternalEntry[], lookups: boolean): Reply | Promise<Reply> {
    const weight = Math.max(1, Math.floor(100 / entries.length));
    const answer: RR[] = [];
    const additional: (RR | Pending)[] = [];
    const seen = new Set<string>();
    for (const e of entries) {
      if (e.port < 0) continue;
      const target = e.cname ? `${e.host}.` : e.target;
      if (!seen.has(`${target} ${e.port}`)) {
        seen.add(`${target} ${e.port}`);
        answer.push({ name: q.name, type: TYPE.SRV, ttl: e.ttl, data: { priority: 0, weight, port: e.port, target } });
      }
      if (seen.has(`${target} @${e.host}`)) continue;
      seen.add(`${target} @${e.host}`);
      if (e.cname) {
        if (lookups) additional.push({ pending: target, type: TYPE.A }, { pending: target, type: TYPE.AAAA });
      }
      else additional.push({ name: target, type: ipFamily(e.host) === 4 ? TYPE.A : TYPE.AAAA, ttl: this.opts.ttl, data: e.host });
    }
    if (!additional.some(isPending)) return this.found(q, zone, k, answer, additional as RR[]);
    // CoreDNS does not carry a truncated glue answer's TC into SRV replies: glue is optional.
    return resolvePending(this.shared, additional, q).then(({ records }) => this.found(q, zone, k, answer, records));
  }

  /** The reply for a name that exists: NODATA (with our SOA) when nothing of the asked type was found. */
  private found(q: Query, zone: string, k: Externaler, answer: RR[], additional: RR[], tc = false): Reply {
    if (answer.length === 0) return this.reply(q, RCODE.NOERROR, [], [this.soa(zone, k)]);
    return this.reply(q, RCODE.NOERROR, answer, [], additional, tc);
  }

  /**
   * Transferer: the SOA, the apex NS and its glue, then exactly what this plugin answers for A, AAAA and SRV of
   * every name the cluster has below the zone, and the SOA again (CoreDNS's k8s_external transfer holds the same
   * records as its answers; for a balancer hostname the CNAME and SRV, not the hostname's records, which
   * CoreDNS's transfer cannot look up either). No NOTIFY, as in CoreDNS.
   */
  transfer(zone: string, serial: number): Iterable<RR[]> | undefined {
    if (!this.opts.zones.includes(zone)) return undefined;
    const k = this.backend();
    const names = k.externalNames(zone, this.opts.headless);
    if (!names) throw new PluginError(this.name, `zone ${zone} cannot be transferred before the cluster data is synced`);
    return this.zoneRecords(zone, serial, k, names);
  }

  private *zoneRecords(zone: string, serial: number, k: Externaler, names: string[]): Generator<RR[]> {
    const soa = this.soa(zone, k);
    yield [soa];
    // CoreDNS's k8s_external: an asker at this serial or later gets the SOA alone.
    if (serial !== 0 && serial >= (soa.data as SoaData).serial) return;
    const ns = this.apex(question(zone, TYPE.NS), zone, k).msg!;
    yield [...ns.answer, ...ns.additional];
    const none: Next = () => ({ rcode: RCODE.NXDOMAIN });
    for (const name of names) {
      for (const type of [TYPE.A, TYPE.AAAA, TYPE.SRV]) {
        const r = this.answerQuery(question(name, type), none, false);
        if (r instanceof Promise || !r.msg || r.rcode !== RCODE.NOERROR) continue;
        // A balancer hostname's CNAME answers A and AAAA alike: the zone holds it once (CoreDNS's repeats it).
        yield type === TYPE.AAAA ? r.msg.answer.filter((rr) => rr.type !== TYPE.CNAME) : r.msg.answer;
      }
    }
    yield [soa];
  }

  /** The entries for a name, and the rcode to use when there are none. */
  private lookup(k: Externaler, q: Query, lname: string, zone: string): [ExternalEntry[], number] {
    if (q.type === TYPE.PTR) {
      const ip = ipFromReverseName(lname);
      if (ip !== undefined) {
        const names = k.externalReverse(ip, this.opts.zones[0]!).map((target) => ({ host: ip, port: 0, target, ttl: this.opts.ttl }));
        return [names, names.length > 0 ? RCODE.NOERROR : RCODE.NXDOMAIN];
      }
    }
    const { entries, rcode } = k.external(lname, zone, this.opts.headless);
    // A forward name asked as PTR: it exists or not, but has no PTR data.
    return q.type === TYPE.PTR ? [[], rcode] : [entries, rcode];
  }

  private apex(q: Query, zone: string, k: Externaler): Reply {
    if (q.type === TYPE.SOA) return this.reply(q, RCODE.NOERROR, [this.soa(zone, k)], []);
    if (q.type !== TYPE.NS) return this.reply(q, RCODE.NOERROR, [], [this.soa(zone, k)]);
    const ns = join(`ns1.${this.opts.apex}`, zone);
    const glue: RR[] = k.externalAddress(zone, this.opts.headless)
      .map((a) => ({ name: ns, type: ipFamily(a.ip) === 4 ? TYPE.A : TYPE.AAAA, ttl: this.opts.ttl, data: a.ip }));
    return this.reply(q, RCODE.NOERROR, [{ name: q.name, type: TYPE.NS, ttl: this.opts.ttl, data: ns }], [], glue);
  }

  /** `dns.<zone>` is an empty non-terminal; `ns1.dns.<zone>` carries the server's addresses; the rest does not exist. */
  private subApex(q: Query, zone: string, k: Externaler): Reply {
    const base = trimZone(q.lname, zone)!;
    if (base === this.opts.apex) return this.reply(q, RCODE.NOERROR, [], [this.soa(zone, k)]);
    if (base !== `ns1.${this.opts.apex}`) return this.reply(q, RCODE.NXDOMAIN, [], [this.soa(zone, k)]);
    const family = q.type === TYPE.A ? 4 : q.type === TYPE.AAAA ? 6 : 0;
    const answer: RR[] = k.externalAddress(zone, this.opts.headless)
      .filter((a) => ipFamily(a.ip) === family)
      .map((a) => ({ name: q.name, type: q.type, ttl: this.opts.ttl, data: a.ip }));
    return this.reply(q, RCODE.NOERROR, answer, answer.length > 0 ? [] : [this.soa(zone, k)]);
  }

  private soa(zone: string, k: Externaler): RR {
    const apex = join(this.opts.apex, zone);
    return {
      name: zone, type: TYPE.SOA, ttl: this.opts.ttl,
      data: {
        mname: join('ns1', apex), rname: join('hostmaster', apex), serial: k.externalSerial() >>> 0,
        refresh: 7200, retry: 1800, expire: 86400, minimum: this.opts.ttl,
      },
    };
  }

  private reply(q: Query, rcode: number, answer: RR[], authority: RR[], additional: RR[] = [], tc = false): Reply {
    const msg: Message = {
      id: 0, qr: true, aa: true, tc, rcode, question: { name: q.name, type: q.type, class: q.class }, answer, authority, additional,
    };
    return { rcode, msg, plugin: this.name };
  }
}

const NO_BYTES = Buffer.alloc(0);

/** A question asked of this plugin by itself (zone transfers). */
function question(name: string, type: number): Query {
  return {
    id: 0, opcode: 0, rd: false, cd: false, name, lname: name, type, class: CLASS.IN, edns: null, raw: NO_BYTES, questionEnd: 0,
    proto: 'tcp', remoteAddress: '', remotePort: 0, family: 1, server: '', zone: name, start: 0,
  };
}
