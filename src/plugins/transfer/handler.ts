import { canonicalIP, cidrContains, type HostAndPort } from '../../pkg/ip.js';
import { logger } from '../../pkg/log.js';
import { matchZone } from '../../pkg/zone.js';
import type { Next, Plugin, Query, Reply } from '../../server/types.js';
import { FLAG, RCODE, TYPE } from '../../server/wire/constants.js';
import { decodeMessage, encodeMessage, type RR, type SoaData } from '../../server/wire/message.js';
import type { Transferer } from '../interfaces.js';
import { sendNotify } from './notify.js';

const log = logger('plugin/transfer');

export interface TransferOptions {
  /** Lower-case FQDNs this instance answers transfers for. */
  zones: string[];
  /** `to *`: anyone may transfer. */
  any: boolean;
  /** Canonical addresses allowed to transfer. */
  hosts: string[];
  /** Networks allowed to transfer (a CIDR in `to`). */
  cidrs: string[];
  /** Where NOTIFY goes: every `to` that is an address. */
  notify: HostAndPort[];
  /** Local address NOTIFY is sent from. */
  source?: string;
}

/**
 * A message's records stop short of this (CoreDNS flushes before 63000 bytes): the rest of the 64 KiB TCP frame is
 * room for the header, the question and the OPT the server adds.
 */
const MESSAGE_BYTES = 63_000;

/** Changes closer together than this give one NOTIFY (a rollout changes the cluster many times a second). */
export const NOTIFY_DELAY_MS = 500;

/** How long start-up NOTIFY waits for a zone plugin to be ready (informers synced) before giving up. */
const READY_WAIT_MS = 5 * 60_000;

/**
 * `transfer`: answers AXFR, and IXFR as AXFR (or the SOA alone when the asker is current), over TCP for the
 * zones of the block's plugins that implement Transferer (CoreDNS plugin/transfer), and sends NOTIFY to its
 * `to` addresses when one of them changes.
 */
export class TransferPlugin implements Plugin {
  readonly name = 'transfer';
  readonly transfers = true;
  /** Filled once the block is set up, in execution order. */
  readonly transferers: (Plugin & Transferer)[] = [];
  private unsubscribe: (() => void)[] = [];
  private timers = new Map<string, NodeJS.Timeout>();
  private closed = false;

  constructor(readonly opts: TransferOptions) {}

  serve(q: Query, next: Next): Reply | Promise<Reply> {
    if (q.type !== TYPE.AXFR && q.type !== TYPE.IXFR) return next(q);
    if (q.proto !== 'tcp') return { rcode: RCODE.REFUSED };
    if (matchZone(q.lname, this.opts.zones) === undefined) return next(q);
    if (!this.allowed(q.remoteAddress)) return this.refused(q);
    let serial = 0;
    if (q.type === TYPE.IXFR) {
      let soa: RR[];
      try {
        soa = decodeMessage(q.raw).authority;
      } catch {
        return { rcode: RCODE.FORMERR };
      }
      // RFC 1995 §3: the asker's SOA is the only authority record (CoreDNS: SERVFAIL otherwise).
      if (soa.length !== 1 || soa[0]!.type !== TYPE.SOA) return { rcode: RCODE.SERVFAIL };
      serial = (soa[0]!.data as SoaData).serial;
    }
    for (const p of this.transferers) {
      const groups = p.transfer(q.lname, serial);
      if (groups) return this.reply(q, groups);
    }
    return next(q);
  }

  /** A refusal written as a message, so that log and metrics show the asker was turned away here (CoreDNS). */
  private refused(q: Query): Reply {
    const msg = { id: 0, rcode: RCODE.REFUSED, question: { name: q.name, type: q.type, class: q.class }, answer: [], authority: [], additional: [] };
    return { rcode: RCODE.REFUSED, msg, plugin: this.name };
  }

  private allowed(remote: string): boolean {
    if (this.opts.any) return true;
    const ip = canonicalIP(remote);
    if (ip === undefined) return false;
    return this.opts.hosts.includes(ip) || this.opts.cidrs.some((c) => cidrContains(c, ip));
  }

  private reply(q: Query, groups: Iterable<RR[]>): Reply {
    const messages = pack(q, groups, (records, soa) => {
      const serial = soa ? (soa.data as SoaData).serial : 0;
      if (records === 1 && soa) log.info(`Outgoing noop, incremental transfer for up to date zone "${q.lname}" to ${q.remoteAddress} for ${serial} SOA serial`);
      else log.info(`Outgoing transfer of ${records} records of zone "${q.lname}" to ${q.remoteAddress} for ${serial} SOA serial`);
    });
    const first = messages.next();
    if (first.done) return { rcode: RCODE.SERVFAIL };
    return { rcode: RCODE.NOERROR, wire: first.value, more: messages, plugin: this.name };
  }

  /* ------------------------------------------------------------------ NOTIFY */

  /**
   * Subscribes to the zone plugins' changes and, like CoreDNS's file plugin at start-up, tells the secondaries once
   * each zone can be transferred (a restarted primary may have changed while it was down).
   */
  start(): void {
    if (this.opts.notify.length === 0) return;
    for (const p of this.transferers) {
      if (!p.onZoneChange) continue;
      this.unsubscribe.push(p.onZoneChange((zone) => this.changed(zone)));
      const deadline = Date.now() + READY_WAIT_MS;
      const whenReady = (): void => {
        if (this.closed) return;
        if (!p.ready || p.ready()) {
          for (const z of this.opts.zones) if (p.transfer(z, Number.MAX_SAFE_INTEGER)) this.changed(z);
        } else if (Date.now() < deadline) {
          this.timer(`ready ${p.name}`, whenReady, 200);
        }
      };
      whenReady();
    }
  }

  close(): void {
    this.closed = true;
    for (const u of this.unsubscribe) u();
    this.unsubscribe = [];
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }

  /** A zone changed: one NOTIFY per `to` address after NOTIFY_DELAY_MS, however many changes came meanwhile. */
  private changed(zone: string): void {
    if (matchZone(zone, this.opts.zones) === undefined || this.timers.has(zone)) return;
    this.timer(zone, () => { void this.notify(zone); }, NOTIFY_DELAY_MS);
  }

  private timer(key: string, fn: () => void, ms: number): void {
    const t = setTimeout(() => {
      this.timers.delete(key);
      if (!this.closed) fn();
    }, ms);
    t.unref();
    this.timers.set(key, t);
  }

  private async notify(zone: string): Promise<void> {
    const failures: string[] = [];
    await Promise.all(this.opts.notify.map(async (to) => {
      const err = await sendNotify(zone, to, this.opts.source);
      if (err) failures.push(err);
    }));
    if (failures.length) log.warn(`Failed sending notifies: ${failures.join('; ')}`);
  }
}

/** A generous size of a record in a message (uncompressed names): where to cut the next message. */
function estimate(rr: RR): number {
  const d = rr.data;
  let rdata = 64;
  if (typeof d === 'string') rdata = d.length + 2;
  else if (Buffer.isBuffer(d)) rdata = d.length;
  else if (Array.isArray(d)) rdata = d.reduce((n, s) => n + Buffer.byteLength(s) + 1, 0);
  return rr.name.length + 12 + rdata;
}

/**
 * The transfer's messages, each a complete encoded response (AA, the question echoed) holding as many records as
 * fit below MESSAGE_BYTES, made only when the previous one was taken. `done` gets the record count at the end.
 */
function* pack(q: Query, groups: Iterable<RR[]>, done: (records: number, soa: RR | undefined) => void): Generator<Buffer> {
  let pending: RR[] = [];
  let size = 0;
  let total = 0;
  let soa: RR | undefined;
  const encode = (): Buffer => {
    const out = encodeMessage({
      id: 0, aa: true, rcode: RCODE.NOERROR, question: { name: q.name, type: q.type, class: q.class },
      answer: pending, authority: [], additional: [],
    }, MESSAGE_BYTES + 512);
    const n = out.readUInt16BE(6);
    if (n === 0) throw new Error(`a record of ${pending[0]!.name} does not fit in a message`);
    // What did not fit opens the next message; the truncation encodeMessage flagged is ours to undo.
    out.writeUInt16BE(out.readUInt16BE(2) & ~FLAG.TC, 2);
    total += n;
    pending = pending.slice(n);
    size = pending.reduce((s, rr) => s + estimate(rr), 0);
    return out;
  };
  for (const group of groups) {
    for (const rr of group) {
      soa ??= rr.type === TYPE.SOA ? rr : undefined;
      pending.push(rr);
      size += estimate(rr);
      if (size >= MESSAGE_BYTES) yield encode();
    }
  }
  while (pending.length > 0) yield encode();
  done(total, soa);
}
