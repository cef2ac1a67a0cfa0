import dgram from 'node:dgram';
import net from 'node:net';
import tls from 'node:tls';
import { randomInt } from 'node:crypto';
import { CLASS, HEADER_SIZE, TYPE } from '../../server/wire/constants.js';
import { encodeMessage } from '../../server/wire/message.js';
import { StreamFrames, tcpFrame } from '../../server/wire/stream.js';
import type { ForwardMetrics } from './metrics.js';
import { PluginError } from '../../server/types.js';

export type Transport = 'udp' | 'tcp';

export interface UpstreamOptions {
  /** How long one try waits for the answer (CoreDNS read_timeout, 2 s). */
  readTimeoutMs: number;
  /** Sockets older than this (UDP) or idle this long (TCP) are replaced (CoreDNS expire, 10 s). */
  expireMs: number;
  hcIntervalMs: number;
  hcRecursionDesired: boolean;
  hcDomain: string;
  /** Health checks use TCP when queries do (force_tcp). */
  hcTransport: Transport;
  /**
   * A `tls://` upstream: every query and health check goes over TLS (RFC 7858) whatever the asker used,
   * on connections reused like TCP ones. `servername` is sent as SNI and verified; without it the
   * certificate must name the IP, as Go's crypto/tls checks in CoreDNS.
   */
  tls?: { secureContext: tls.SecureContext; servername?: string | undefined };
}

export class UpstreamError extends PluginError {
  constructor(readonly to: string, message: string, readonly code?: string) {
    super('forward', `${to}: ${message}`);
  }
}

const fold = (c: number) => (c >= 0x41 && c <= 0x5a ? c | 0x20 : c);

/** The reply is a response to exactly this question (RFC 5452 §9.1: ID and question must match). */
function matchesQuestion(reply: Buffer, query: Buffer, questionEnd: number): boolean {
  if (reply.length < questionEnd || !(reply[2]! & 0x80) || reply.readUInt16BE(4) !== 1) return false;
  for (let i = HEADER_SIZE; i < questionEnd; i++) if (fold(reply[i]!) !== fold(query[i]!)) return false;
  return true;
}

/**
 * Queries in flight on one UDP socket. Far below the 65,536 IDs, so a free random ID is found in a try or
 * two (a full ID space made the pick spin forever), and a spoofer's guess hits an ID at most 1 time in 256;
 * past it the next query gets a fresh socket (and source port).
 */
export const MAX_PENDING_PER_SOCKET = 256;

interface Pending {
  query: Buffer;
  questionEnd: number;
  resolve(reply: Buffer): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

/**
 * One connected UDP socket multiplexing in-flight queries by ID. Replaced after `expire` so the source port
 * changes now and then (spoofing resistance) without paying a socket per query.
 */
class UdpChannel {
  readonly socket: dgram.Socket;
  readonly created = Date.now();
  readonly pending = new Map<number, Pending>();
  private ready: Promise<void>;
  retired = false;
  closed = false;

  constructor(private readonly up: Upstream) {
    this.socket = dgram.createSocket(net.isIPv6(up.host) ? 'udp6' : 'udp4');
    this.socket.on('message', (msg) => this.onMessage(msg));
    // A connected UDP socket reports ICMP port unreachable as ECONNREFUSED: the upstream is not there.
    this.socket.on('error', (err: NodeJS.ErrnoException) => this.fail(new UpstreamError(up.to, err.message, err.code)));
    this.ready = new Promise((resolve) => this.socket.connect(up.port, up.host, () => resolve()));
  }

  private onMessage(msg: Buffer): void {
    if (msg.length < HEADER_SIZE) return;
    const p = this.pending.get(msg.readUInt16BE(0));
    // Anything else (late answers to timed-out tries, spoofing attempts) is dropped; the try keeps waiting.
    if (!p || !matchesQuestion(msg, p.query, p.questionEnd)) return;
    this.settle(msg.readUInt16BE(0), p);
    p.resolve(msg);
  }

  private settle(id: number, p: Pending): void {
    clearTimeout(p.timer);
    this.pending.delete(id);
    if (this.retired && this.pending.size === 0) this.close();
  }

  async send(query: Buffer, questionEnd: number, timeoutMs: number): Promise<Buffer> {
    let id: number;
    do id = randomInt(0x10000); while (this.pending.has(id));
    const q = Buffer.from(query);
    q.writeUInt16BE(id, 0);
    const reply = new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.settle(id, p);
        reject(new UpstreamError(this.up.to, `no answer over udp within ${timeoutMs} ms`, 'ETIMEDOUT'));
      }, timeoutMs);
      const p: Pending = { query: q, questionEnd, resolve, reject, timer };
      this.pending.set(id, p);
    });
    // The connect may never complete (ENETUNREACH in a namespace without routes): the try's timer or
    // fail() still ends it, and its rejection is observed here instead of crashing the process.
    await Promise.race([this.ready, reply]);
    if (!this.closed) this.socket.send(q);
    return reply;
  }

  fail(err: Error): void {
    for (const [id, p] of this.pending) {
      this.settle(id, p);
      p.reject(err);
    }
    this.retired = true;
    this.close();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.retired = true;
    try { this.socket.close(); } catch { /* already closed by an error */ }
  }
}

/**
 * One TCP (or TLS) connection, one query at a time (like CoreDNS's persistent connections), reused until idle
 * `expire`.
 */
class TcpConn {
  readonly socket: net.Socket;
  private readonly frames = new StreamFrames();
  private waiting: { query: Buffer; questionEnd: number; resolve(b: Buffer): void; reject(e: Error): void } | null = null;
  private connected: Promise<void>;
  used = Date.now();
  dead = false;
  /** It has carried a query before: a failure may just be the server closing an idle connection. */
  reused = false;

  constructor(private readonly up: Upstream, secure?: UpstreamOptions['tls']) {
    if (secure) {
      const s = tls.connect({
        host: up.host, port: up.port, secureContext: secure.secureContext, servername: secure.servername, session: up.tlsSession,
      });
      s.setNoDelay(true);
      // Resumption spares later connections the full handshake (CoreDNS: a ClientSessionCache per forward).
      s.on('session', (ticket: Buffer) => { up.tlsSession = ticket; });
      this.socket = s;
    } else {
      this.socket = net.connect({ host: up.host, port: up.port, noDelay: true });
    }
    this.connected = new Promise((resolve, reject) => {
      this.socket.once(secure ? 'secureConnect' : 'connect', () => resolve());
      this.socket.once('error', reject);
    });
    this.connected.catch(() => undefined);
    this.socket.on('data', (d) => this.onData(d));
    this.socket.on('error', (err: NodeJS.ErrnoException) => this.die(new UpstreamError(up.to, err.message, err.code)));
    this.socket.on('close', () => this.die(new UpstreamError(up.to, 'connection closed by upstream', 'ECONNRESET')));
  }

  private onData(d: Buffer): void {
    this.frames.push(d);
    for (let msg = this.frames.next(); msg; msg = this.frames.next()) {
      const w = this.waiting;
      if (w && msg.length >= HEADER_SIZE && msg.readUInt16BE(0) === w.query.readUInt16BE(0) && matchesQuestion(msg, w.query, w.questionEnd)) {
        this.waiting = null;
        w.resolve(msg);
      }
    }
  }

  private die(err: Error): void {
    this.dead = true;
    const w = this.waiting;
    this.waiting = null;
    w?.reject(err);
  }

  async send(query: Buffer, questionEnd: number, timeoutMs: number): Promise<Buffer> {
    const q = tcpFrame(query);
    const id = randomInt(0x10000);
    q.writeUInt16BE(id, 2);
    let timer: NodeJS.Timeout | undefined;
    try {
      return await new Promise<Buffer>((resolve, reject) => {
        timer = setTimeout(() => {
          this.waiting = null;
          this.destroy();
          reject(new UpstreamError(this.up.to, `no answer over ${this.up.secure ? 'tls' : 'tcp'} within ${timeoutMs} ms`, 'ETIMEDOUT'));
        }, timeoutMs);
        this.waiting = { query: q.subarray(2), questionEnd, resolve, reject };
        this.connected.then(() => this.socket.write(q), (err: NodeJS.ErrnoException) => {
          this.die(new UpstreamError(this.up.to, err.message, err.code));
        });
      });
    } finally {
      clearTimeout(timer);
      this.used = Date.now();
      this.reused = true;
    }
  }

  destroy(): void {
    this.dead = true;
    this.socket.destroy();
  }
}

/** An upstream server: its sockets, its failure count and its health-check loop. */
export class Upstream {
  /** `host:port` (`[v6]:port`), the `to` label of the metrics. */
  readonly to: string;
  /** Consecutive failed health checks; reset by a good one. */
  fails = 0;
  private udp: UdpChannel | null = null;
  private retiredUdp = new Set<UdpChannel>();
  private idleTcp: TcpConn[] = [];
  private busyTcp = new Set<TcpConn>();
  private probing = false;
  private probeTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /** The last TLS session ticket of a `tls://` upstream, offered by the next connection. */
  tlsSession: Buffer | undefined;

  /** A `tls://` upstream. */
  readonly secure: boolean;

  constructor(readonly host: string, readonly port: number, private readonly opts: UpstreamOptions) {
    this.to = net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
    this.secure = !!opts.tls;
  }

  /** Down = more failed health checks than max_fails (0: never down). */
  down(maxFails: number): boolean {
    return maxFails > 0 && this.fails > maxFails;
  }

  /**
   * Sends `query` (the asker's bytes; a fresh random ID is put in a copy) and resolves with the reply that
   * carries that ID and the same question. The reply's ID is the fresh one: the caller restores its own.
   */
  exchange(query: Buffer, questionEnd: number, transport: Transport, timeoutMs = this.opts.readTimeoutMs): Promise<Buffer> {
    if (this.closed) return Promise.reject(new UpstreamError(this.to, 'forward instance was shut down'));
    return transport === 'udp' && !this.opts.tls ? this.udpChannel().send(query, questionEnd, timeoutMs) : this.tcpExchange(query, questionEnd, timeoutMs);
  }

  private udpChannel(): UdpChannel {
    const cur = this.udp;
    if (cur && !cur.retired && cur.pending.size < MAX_PENDING_PER_SOCKET && Date.now() - cur.created < this.opts.expireMs) return cur;
    if (cur && !cur.closed) {
      cur.retired = true;
      if (cur.pending.size === 0) cur.close();
      else this.retiredUdp.add(cur);
    }
    for (const c of this.retiredUdp) if (c.closed) this.retiredUdp.delete(c);
    return (this.udp = new UdpChannel(this));
  }

  private async tcpExchange(query: Buffer, questionEnd: number, timeoutMs: number): Promise<Buffer> {
    for (;;) {
      let conn: TcpConn | undefined;
      while ((conn = this.idleTcp.pop())) {
        if (!conn.dead && Date.now() - conn.used < this.opts.expireMs) break;
        conn.destroy();
      }
      conn ??= new TcpConn(this, this.opts.tls);
      this.busyTcp.add(conn);
      const wasReused = conn.reused;
      try {
        const reply = await conn.send(query, questionEnd, timeoutMs);
        if (!this.closed && !conn.dead) this.idleTcp.push(conn);
        else conn.destroy();
        return reply;
      } catch (e) {
        conn.destroy();
        // The upstream closed a cached connection while it sat idle: retry on a fresh one (CoreDNS ErrCachedClosed).
        if (wasReused && (e as UpstreamError).code !== 'ETIMEDOUT' && !this.closed) continue;
        throw e;
      } finally {
        this.busyTcp.delete(conn);
      }
    }
  }

  /**
   * Starts the health-check loop unless one runs: `. IN NS` (or `domain`) every interval until any reply comes
   * back (even SERVFAIL or REFUSED: only I/O failures count), as CoreDNS's up.Probe does.
   */
  healthcheck(failures: ForwardMetrics['healthcheckFailures']): void {
    if (this.probing || this.closed) return;
    this.probing = true;
    const probe = encodeMessage({
      id: 0, qr: false, rd: this.opts.hcRecursionDesired, rcode: 0,
      question: { name: this.opts.hcDomain, type: TYPE.NS, class: CLASS.IN }, answer: [], authority: [], additional: [],
    });
    const questionEnd = probe.length;
    const round = async (): Promise<void> => {
      if (this.closed) return;
      try {
        await this.exchange(probe, questionEnd, this.opts.hcTransport, 1000);
        this.fails = 0;
        this.probing = false;
        return;
      } catch {
        if (this.closed) return;
        failures.inc({ proxy_name: 'forward', to: this.to });
        this.fails++;
      }
      this.probeTimer = setTimeout(() => void round(), this.opts.hcIntervalMs);
      this.probeTimer.unref();
    };
    void round();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.probeTimer);
    this.udp?.close();
    for (const c of this.retiredUdp) c.close();
    for (const c of [...this.idleTcp, ...this.busyTcp]) c.destroy();
    this.idleTcp = [];
  }
}
