import { performance } from 'node:perf_hooks';
import { FLAG, RCODE, rcodeName } from '../../server/wire/constants.js';
import { isSubdomain } from '../../pkg/zone.js';
import { shuffled } from '../../pkg/shuffle.js';
import { checkMessage } from '../../server/wire/check.js';
import type { Next, Plugin, Query, Reply } from '../../server/types.js';
import type { Tapper } from '../interfaces.js';
import type { ForwardMetrics } from './metrics.js';
import { UpstreamError, type Transport, type Upstream } from './upstream.js';

export type Policy = 'random' | 'round_robin' | 'sequential';

export interface ForwardConfig {
  from: string;
  except: string[];
  upstreams: Upstream[];
  policy: Policy;
  /** Health-check failures before an upstream counts as down; 0 = never down, no health checks. */
  maxFails: number;
  forceTcp: boolean;
  preferUdp: boolean;
  /** Queries in flight above this get REFUSED (default DEFAULT_MAX_CONCURRENT). */
  maxConcurrent: number;
  /** RCODEs that send the query on to the next forward of the block. */
  next: number[];
  /** RCODEs that make us try the next upstream. */
  failover: number[];
  /** Another `forward` follows this one in the block (CoreDNS passes `next` RCODEs only to a forward). */
  hasNextForward: boolean;
}

/**
 * CoreDNS has no limit by default, but kubeadm's Corefile sets 1000, which is what clusters run with. Without
 * any, an unresponsive upstream lets pending queries (and their sockets and timers) grow with the query rate.
 */
export const DEFAULT_MAX_CONCURRENT = 1000;

/** CoreDNS gives one query at most 5 s across all its tries (forward.go defaultTimeout). */
const QUERY_DEADLINE_MS = 5000;

/** Relays queries for FROM (minus `except`) to upstreams, relaying the asker's own bytes (EDNS, DO, CD kept). */
export class Forward implements Plugin {
  readonly name = 'forward';
  private inflight = 0;
  private rr = 0;

  /** `taps`: the block's dnstap lines, told of every exchange with an upstream (CoreDNS's SetTapPlugin). */
  constructor(readonly config: ForwardConfig, private readonly metrics: ForwardMetrics, private readonly taps: readonly Tapper[] = []) {}

  private matches(lname: string): boolean {
    const c = this.config;
    if (!isSubdomain(lname, c.from)) return false;
    if (lname === c.from) return true;
    return !c.except.some((z) => isSubdomain(lname, z));
  }

  private list(): Upstream[] {
    const ups = this.config.upstreams;
    switch (this.config.policy) {
      case 'sequential': return ups;
      case 'round_robin': {
        const start = this.rr++ % ups.length;
        return [...ups.slice(start), ...ups.slice(0, start)];
      }
      default: return ups.length > 1 ? shuffled(ups) : ups;
    }
  }

  serve(q: Query, next: Next): Reply | Promise<Reply> {
    if (!this.matches(q.lname)) return next(q);
    if (this.inflight >= this.config.maxConcurrent) {
      this.metrics.maxConcurrentRejects.inc();
      return { rcode: RCODE.REFUSED, plugin: this.name };
    }
    this.inflight++;
    return this.relay(q, next).finally(() => { this.inflight--; });
  }

  /** One try at one upstream, over TCP again when a UDP answer comes back truncated. */
  private async attempt(up: Upstream, q: Query): Promise<Buffer> {
    const c = this.config;
    let transport: Transport = c.forceTcp ? 'tcp' : c.preferUdp ? 'udp' : q.proto;
    const start = performance.now();
    let reply: Buffer;
    let received: Buffer | undefined;
    try {
      reply = await up.exchange(q.raw, q.questionEnd, transport);
      // Unlike CoreDNS (which retries only with prefer_udp), a truncated UDP answer is always fetched again over
      // TCP: the server then truncates to what the asker takes, keeping as many records as fit (musl has no TCP).
      if (transport === 'udp' && reply.readUInt16BE(2) & FLAG.TC && !up.secure) {
        transport = 'tcp';
        reply = await up.exchange(q.raw, q.questionEnd, 'tcp');
      }
      // exchange() gives only replies carrying its ID and our question, so a whole header is there.
      reply.writeUInt16BE(q.id, 0);
      received = reply;
    } finally {
      // Like CoreDNS: the try that answered (after a retry over TCP) or failed, the query alone when no reply came.
      for (const tap of this.taps) {
        tap.tapForward(q, { host: up.host, port: up.port, transport: up.secure ? 'tcp' : transport, start, query: q.raw, reply: received });
      }
    }
    // Relayed (and cached, and rewritten by the server) as bytes: a lying length or a pointer loop would reach
    // clients and our own walkers. A failed try like a timeout: the next upstream, or SERVFAIL.
    const bad = checkMessage(reply);
    if (bad) throw new UpstreamError(up.to, `malformed reply: ${bad}`, 'EBADMSG');
    this.metrics.requestDuration.observe({ proxy_name: 'forward', to: up.to, rcode: rcodeName(reply[3]! & 0xf) }, (performance.now() - start) / 1000);
    return reply;
  }

  private async relay(q: Query, next: Next): Promise<Reply> {
    const c = this.config;
    const all = c.upstreams;
    const list = this.list();
    const deadline = performance.now() + QUERY_DEADLINE_MS;
    // Bounded like CoreDNS's max_connect_attempts default: two passes over the list, never a retry storm.
    const maxAttempts = 2 * list.length;
    let attempts = 0;
    let skipped = 0;
    let failovers = 0;
    let i = 0;
    let lastErr: Error | undefined;
    while (performance.now() < deadline && attempts < maxAttempts) {
      if (i >= list.length) {
        i = 0;
        skipped = 0;
      }
      let up = list[i++]!;
      if (up.down(c.maxFails)) {
        if (++skipped < all.length) continue;
        // Every upstream is down: assume health checking itself is broken and try a random one (CoreDNS).
        this.metrics.healthcheckBroken.inc();
        up = all[Math.floor(Math.random() * all.length)]!;
      }
      let reply: Buffer;
      try {
        reply = await this.attempt(up, q);
      } catch (e) {
        lastErr = e as Error;
        if (c.maxFails !== 0) up.healthcheck(this.metrics.healthcheckFailures);
        attempts++;
        if (skipped < all.length) continue;
        break;
      }
      const rcode = reply[3]! & 0xf;
      if (c.failover.includes(rcode) && ++failovers < all.length) continue;
      if (c.hasNextForward && c.next.includes(rcode)) return next(q);
      return { rcode, wire: reply, plugin: this.name };
    }
    // Thrown like CoreDNS returns (SERVFAIL, err): the errors plugin logs it and the server answers SERVFAIL.
    throw lastErr ?? new Error('no healthy proxies');
  }

  close(): void {
    for (const up of this.config.upstreams) up.close();
  }
}
