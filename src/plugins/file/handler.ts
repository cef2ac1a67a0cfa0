import { readFileSync } from 'node:fs';
import { CLASS, RCODE, TYPE } from '../../server/wire/constants.js';
import type { Message, RR } from '../../server/wire/message.js';
import { answerMemo, messageBytes } from '../../server/memo.js';
import type { Fall } from '../../pkg/fall.js';
import { matchZone } from '../../pkg/zone.js';
import { ReentryError, type Next, type Plugin, type Query, type Reply, type SharedServices } from '../../server/types.js';
import { logger } from '../../pkg/log.js';
import type { Transferer } from '../interfaces.js';
import { Zone, type Answer } from './zone.js';
import { parseZoneFile } from './zonefile.js';

const log = logger('plugin/file');

/** Reads and parses one zone file for `origin`; throws ZoneFileError/IO errors with the file name. */
export function loadZone(path: string, origin: string): Zone {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`unable to read zone file ${path}: ${(e as Error).message}`);
  }
  return new Zone(parseZoneFile(text, origin, path), path);
}

/** Answers cached per (zone, name, type) until the zone reloads; bounded against floods of random names and spellings. */
const MEMO_ENTRIES = 10_000;
export const MEMO_BYTES = 8 << 20;
const newMemo = () => answerMemo<Reply | 'next'>(MEMO_ENTRIES, MEMO_BYTES, (v) => (v === 'next' || !v.msg ? 1 : messageBytes(v.msg)));

export interface FileOptions {
  path: string;
  /** Lower-case FQDN origins, each loaded from the same file. */
  origins: string[];
  /** Poll interval in ms; 0 disables reloading. */
  reloadMs: number;
  /** Which NXDOMAIN (and empty non-terminal) answers pass on to the next plugin. */
  fallthrough: Fall;
}

/** Serves RFC 1035 zone files, authoritatively, like CoreDNS's file plugin. */
export class FilePlugin implements Plugin, Transferer {
  readonly name = 'file';
  readonly zones = new Map<string, Zone>();
  private answers = newMemo();

  /** Answers memoised now and their estimated bytes (tests: the memo stays bounded). */
  get memoised(): { entries: number; bytes: number } {
    return { entries: this.answers.size, bytes: this.answers.calculatedSize };
  }
  private timer: NodeJS.Timeout | undefined;
  /** Last reload error per origin: a file that stays broken is reported once, not every poll. */
  private reloadErrors = new Map<string, string>();
  private readonly zoneListeners = new Set<(zone: string) => void>();

  constructor(readonly opts: FileOptions, private readonly shared?: SharedServices) {
    for (const o of opts.origins) this.zones.set(o, loadZone(opts.path, o));
  }

  start(): void {
    if (this.opts.reloadMs > 0 && !this.timer) {
      this.timer = setInterval(() => this.reload(), this.opts.reloadMs);
      this.timer.unref();
    }
  }

  close(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** CoreDNS reloads a zone only when its SOA serial changed; a broken file keeps the zone being served. */
  reload(): void {
    for (const [origin, old] of this.zones) {
      let z: Zone;
      try {
        z = loadZone(this.opts.path, origin);
      } catch (e) {
        const msg = (e as Error).message;
        if (this.reloadErrors.get(origin) !== msg) log.error(`Failed to reload zone ${origin}: ${msg}`);
        this.reloadErrors.set(origin, msg);
        continue;
      }
      this.reloadErrors.delete(origin);
      if (z.serial === old.serial) continue;
      this.zones.set(origin, z);
      this.answers = newMemo();
      log.info(`Successfully reloaded zone ${origin} in ${this.opts.path} with ${z.serial} SOA serial`);
      for (const l of this.zoneListeners) l(origin);
    }
  }

  /** Transferer: CoreDNS's file Transfer(), the zone as loaded now; the SOA alone when `serial` is the current one. */
  transfer(zone: string, serial: number): Iterable<RR[]> | undefined {
    const z = this.zones.get(zone);
    if (!z) return undefined;
    return serial !== 0 && serial === z.serial ? [[z.soa]] : z.transfer();
  }

  onZoneChange(changed: (zone: string) => void): () => void {
    this.zoneListeners.add(changed);
    return () => this.zoneListeners.delete(changed);
  }

  private zoneFor(lname: string): Zone | undefined {
    const origin = matchZone(lname, this.opts.origins);
    return origin === undefined ? undefined : this.zones.get(origin);
  }

  serve(q: Query, next: Next): Reply | Promise<Reply> {
    // Other classes reach here only on a listener with forward or chaos; their replies echo their class.
    // Kept per spelling: the server copies an asker's question over a reply's, and a zone name (a CNAME
    // target, the NS in authority) spelled like the first asker's question would then take the next one's.
    const key = q.name + '|' + q.type + (q.class === CLASS.IN ? '' : '|' + q.class);
    const cached = this.answers.get(key);
    if (cached === 'next') return next(q);
    if (cached) return cached;
    const zone = this.zoneFor(q.lname);
    if (!zone) return next(q);
    // Without the transfer plugin in the block these reach us: no transfers allowed (CoreDNS).
    if (q.type === TYPE.AXFR || q.type === TYPE.IXFR) return { rcode: RCODE.REFUSED };
    const a = zone.lookup(q.name, q.lname, q.type);
    if (a.chase) return this.chase(q, zone, a);
    if (a.fall && this.opts.fallthrough.through(q.lname)) {
      this.remember(key, 'next');
      return next(q);
    }
    const reply = this.reply(q, a);
    this.remember(key, reply);
    return reply;
  }

  private remember(key: string, v: Reply | 'next'): void {
    this.answers.set(key, v);
  }

  private reply(q: Query, a: Answer): Reply {
    // A bare SERVFAIL (a CNAME loop) carries no sections, like CoreDNS's.
    if (a.rcode === RCODE.SERVFAIL && a.answer.length === 0) return { rcode: a.rcode };
    const msg: Message = {
      id: 0, aa: a.aa, rcode: a.rcode, question: { name: q.name, type: q.type, class: q.class },
      answer: a.answer, authority: a.authority, additional: a.additional,
    };
    return { rcode: a.rcode, msg, plugin: this.name };
  }

  /**
   * A CNAME leaving the zone: the target is resolved through the server (CoreDNS's upstream lookup, doLookup).
   * Only NXDOMAIN, SERVFAIL and NODATA of the target show in the rcode; anything else, a REFUSED for a name
   * no block serves included, answers NOERROR with what there is, so a resolver can chase the CNAME itself.
   */
  private async chase(q: Query, zone: Zone, a: Answer): Promise<Reply> {
    if (!this.shared) return this.reply(q, { ...a, authority: zone.ns });
    let rcode: number = RCODE.SERVFAIL;
    let found: RR[] = [];
    let negative = false;
    try {
      // A loop between zones ends at the server's re-entry bound (SERVFAIL), as in CoreDNS.
      const m = await this.shared.resolve({ name: a.chase!, type: q.type, server: q.server }, q);
      found = m.answer;
      rcode = m.rcode === RCODE.NXDOMAIN || m.rcode === RCODE.SERVFAIL ? m.rcode : RCODE.NOERROR;
      negative = m.rcode === RCODE.NXDOMAIN || (m.rcode === RCODE.NOERROR && found.length === 0);
    } catch (e) {
      if (e instanceof ReentryError) throw e;
      log.error(`resolving CNAME target ${a.chase} of ${q.name}: ${(e as Error).message}`);
    }
    // The CNAME stays in the answer whatever the target gave (CoreDNS #4863; RFC 6604 §3 for the rcode).
    return this.reply(q, {
      rcode, aa: true, answer: [...a.answer, ...found], authority: negative ? [zone.soa] : zone.ns, additional: [],
    });
  }
}
