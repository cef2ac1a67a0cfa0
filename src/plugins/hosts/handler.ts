import { statSync, readFileSync } from 'node:fs';
import { CLASS, TYPE, RCODE } from '../../server/wire/constants.js';
import type { Message, RR } from '../../server/wire/message.js';
import { answerMemo, messageBytes } from '../../server/memo.js';
import { Fall } from '../../pkg/fall.js';
import { isSubdomain } from '../../pkg/zone.js';
import type { Next, Plugin, Query, Reply } from '../../server/types.js';
import { logger } from '../../pkg/log.js';
import { client, metricSet } from '../../pkg/metrics.js';
import { lookupFamily, parseHosts, type HostsMap } from './hostsfile.js';

const log = logger('plugin/hosts');

export const hostsMetrics = metricSet((registry) => ({
  entries: new client.Gauge({
    name: 'coredns_hosts_entries', help: 'The combined number of entries in hosts and Corefile.',
    labelNames: ['hostsfile'], registers: [registry],
  }),
  reload: new client.Gauge({
    name: 'coredns_hosts_reload_timestamp_seconds', help: 'The timestamp of the last reload of hosts file.',
    registers: [registry],
  }),
}));

export interface HostsOptions {
  /** Absolute path of the hosts file. */
  path: string;
  /** Zones names are served for (lower-case FQDNs). */
  origins: string[];
  inline: string;
  ttl: number;
  reverse: boolean;
  /** Reload poll interval in ms; 0 disables. */
  reloadMs: number;
  /** Which misses pass on to the next plugin (unknown reverse names always do, as in CoreDNS). */
  fallthrough: Fall;
}

/** Answers cached per (name, type) between reloads; bounded so random names cannot grow it without end. */
const MEMO_ENTRIES = 10_000;
export const MEMO_BYTES = 8 << 20;
const newMemo = () => answerMemo<Reply>(MEMO_ENTRIES, MEMO_BYTES, (v) => (v.msg ? messageBytes(v.msg) : 1));

/** Serves A/AAAA/PTR from a hosts file plus inline lines, like CoreDNS's hosts plugin. */
export class Hosts implements Plugin {
  readonly name = 'hosts';
  private file: HostsMap;
  private readonly inline: HostsMap;
  private mtimeMs = -1;
  private size = -1;
  private timer: NodeJS.Timeout | undefined;
  private answers = newMemo();

  /** Answers memoised now and their estimated bytes (tests: the memo stays bounded). */
  get memoised(): { entries: number; bytes: number } {
    return { entries: this.answers.size, bytes: this.answers.calculatedSize };
  }

  constructor(readonly opts: HostsOptions, private readonly metrics: ReturnType<typeof hostsMetrics>) {
    this.inline = parseHosts(opts.inline, opts.origins, opts.reverse);
    this.file = parseHosts('', [], false);
    this.readFile();
  }

  start(): void {
    if (this.opts.reloadMs > 0 && !this.timer) {
      this.timer = setInterval(() => this.readFile(), this.opts.reloadMs);
      this.timer.unref();
    }
  }

  close(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * Re-reads the file when its mtime or size changed (what CoreDNS compares). A missing or unreadable file
   * keeps the last good data: CoreDNS warns at setup and keeps serving inline entries.
   */
  readFile(): void {
    let st;
    try {
      st = statSync(this.opts.path);
    } catch {
      return;
    }
    if (st.mtimeMs === this.mtimeMs && st.size === this.size) return;
    let text: string;
    try {
      text = readFileSync(this.opts.path, 'utf8');
    } catch (e) {
      log.error(`reading ${this.opts.path}: ${(e as Error).message}`);
      return;
    }
    this.file = parseHosts(text, this.opts.origins, this.opts.reverse);
    this.mtimeMs = st.mtimeMs;
    this.size = st.size;
    this.answers = newMemo();
    this.metrics.entries.set({ hostsfile: this.opts.path }, this.file.entries + this.inline.entries);
    this.metrics.reload.set(st.mtimeMs / 1000);
  }

  private addresses(family: 4 | 6, name: string): string[] {
    const f = family === 4 ? lookupFamily(this.file.v4, this.file.wild4, name) : lookupFamily(this.file.v6, this.file.wild6, name);
    const i = family === 4 ? lookupFamily(this.inline.v4, this.inline.wild4, name) : lookupFamily(this.inline.v6, this.inline.wild6, name);
    if (!i.length) return f;
    if (!f.length) return i;
    return [...new Set([...f, ...i])];
  }

  serve(q: Query, next: Next): Reply | Promise<Reply> {
    // Other classes reach here only on a listener with forward or chaos; their replies echo their class.
    const key = q.lname + '|' + q.type + (q.class === CLASS.IN ? '' : '|' + q.class);
    const cached = this.answers.get(key);
    if (cached) return cached;
    const inZone = this.opts.origins.some((z) => isSubdomain(q.lname, z));
    // PTR queries need no origin match (CoreDNS: reverse zones need not be listed).
    if (!inZone && q.type !== TYPE.PTR) return next(q);
    let answer: RR[] = [];
    if (q.type === TYPE.PTR) {
      const names = [...new Set([...(this.file.ptr.get(q.lname) ?? []), ...(this.inline.ptr.get(q.lname) ?? [])])];
      if (!names.length) return next(q);
      answer = names.map((n) => ({ name: q.name, type: TYPE.PTR, ttl: this.opts.ttl, data: n }));
    } else if (q.type === TYPE.A || q.type === TYPE.AAAA) {
      answer = this.addresses(q.type === TYPE.A ? 4 : 6, q.lname).map((ip) => ({ name: q.name, type: q.type, ttl: this.opts.ttl, data: ip }));
    }
    if (!answer.length && !this.addresses(4, q.lname).length && !this.addresses(6, q.lname).length) {
      if (this.opts.fallthrough.through(q.lname)) return next(q);
      // CoreDNS answers SERVFAIL here, not NXDOMAIN: a hosts file has no SOA to make a negative answer cacheable.
      return { rcode: RCODE.SERVFAIL };
    }
    const msg: Message = {
      id: 0, aa: true, rcode: RCODE.NOERROR, question: { name: q.name, type: q.type, class: q.class },
      answer, authority: [], additional: [],
    };
    const reply: Reply = { rcode: RCODE.NOERROR, msg, plugin: this.name };
    this.answers.set(key, reply);
    return reply;
  }
}
