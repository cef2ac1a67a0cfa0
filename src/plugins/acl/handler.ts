import { ipFamily, ipToBigInt, prefixContains, type Cidr } from '../../pkg/ip.js';
import { matchZone } from '../../pkg/zone.js';
import { logger } from '../../pkg/log.js';
import { RCODE } from '../../server/wire/constants.js';
import type { Next, Plugin, Query, Reply } from '../../server/types.js';
import type { AclMetrics } from './metrics.js';

const log = logger('plugin/acl');

export type Action = 'allow' | 'block' | 'filter' | 'drop';

/** One `ACTION [type QTYPE...] [net SOURCE...]` line; absent types or nets match everything. */
export interface Policy {
  action: Action;
  /** Query types matched; undefined: all. */
  types?: Set<number>;
  /** Source networks matched; undefined: all. */
  nets?: Cidr[];
}

/** One `acl [ZONES...] { ... }` directive. */
export interface AclRule {
  zones: string[];
  policies: Policy[];
}

/** RFC 8914 info codes CoreDNS puts in block and filter answers. */
const EDE_BLOCKED = 15;
const EDE_FILTERED = 17;

/** The first policy matching the source and type decides; none: the next rule (CoreDNS's matchWithPolicies). */
function decide(policies: Policy[], family: 4 | 6, ip: bigint, qtype: number): Action | undefined {
  for (const p of policies) {
    if (p.types && !p.types.has(qtype)) continue;
    if (p.nets && !p.nets.some((n) => prefixContains(n, family, ip))) continue;
    return p.action;
  }
  return undefined;
}

/** The source address as CoreDNS sees it: an IPv4 client of a dual-stack socket is IPv4, a zone suffix is dropped. */
function source(remote: string): { family: 4 | 6; ip: bigint } | undefined {
  let addr = remote.startsWith('::ffff:') && remote.includes('.') ? remote.slice(7) : remote;
  const pct = addr.indexOf('%');
  if (pct >= 0) addr = addr.slice(0, pct);
  const family = ipFamily(addr);
  return family ? { family, ip: ipToBigInt(addr, family) } : undefined;
}

/** Every `acl` directive of a block, in order (CoreDNS builds one handler for them all). */
export class Acl implements Plugin {
  readonly name = 'acl';

  constructor(readonly rules: AclRule[], private readonly metrics: AclMetrics, private readonly view = '') {}

  serve(q: Query, next: Next): Reply | Promise<Reply> {
    const src = source(q.remoteAddress);
    for (const rule of this.rules) {
      const zone = matchZone(q.lname, rule.zones);
      if (zone === undefined) continue;
      let action: Action | undefined;
      if (src) action = decide(rule.policies, src.family, src.ip, q.type);
      else {
        log.error(`Blocking request. Unable to parse source address: ${q.remoteAddress}`);
        action = 'block';
      }
      if (action === 'allow') break;
      const labels = { server: q.server, zone, view: this.view };
      switch (action) {
        case 'drop':
          this.metrics.dropped.inc(labels);
          return { rcode: RCODE.NOERROR, drop: true, plugin: this.name };
        case 'block':
          this.metrics.blocked.inc(labels);
          return { rcode: RCODE.REFUSED, ede: EDE_BLOCKED, plugin: this.name };
        case 'filter':
          this.metrics.filtered.inc(labels);
          return { rcode: RCODE.NOERROR, ede: EDE_FILTERED, plugin: this.name };
      }
    }
    this.metrics.allowed.inc({ server: q.server, view: this.view });
    return next(q);
  }
}

/** Later `acl` lines of a block: their rules already run in the first instance. */
export class AclPassThrough implements Plugin {
  readonly name = 'acl';
}
