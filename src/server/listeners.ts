import cluster from 'node:cluster';
import dgram from 'node:dgram';
import net from 'node:net';
import tls from 'node:tls';
import { logger } from '../pkg/log.js';
import { StreamFrames } from './wire/stream.js';

const log = logger('server');

export interface Peer {
  proto: 'udp' | 'tcp';
  address: string;
  port: number;
  family: 1 | 2;
  /** The address and port the query came in on (`view`'s server_ip()/server_port()); a wildcard UDP socket knows only its bind address. */
  localAddress?: string;
  localPort?: number;
}

/** Several messages answering one query (a zone transfer over TCP): `first`, then `rest` as the socket drains. */
export class Frames {
  constructor(readonly first: Buffer, readonly rest: Iterator<Buffer>) {}
}

export type Answer = Buffer | Frames | null;

/** Returns the response bytes (several messages for a transfer), null to stay silent, or a promise of either. */
export type PacketHandler = (buf: Buffer, peer: Peer) => Answer | Promise<Answer>;

/**
 * Bounds on the TCP side of a listener, so that a client cannot hold memory or descriptors: CoreDNS's
 * `timeouts` (read 3 s, write 5 s, idle 10 s) plus a connection cap (CoreDNS has none for plain DNS; its
 * `https` plugin caps at 200 connections).
 */
export interface TcpLimits {
  /** A message must arrive whole within this from its first byte (the first one: from accept). */
  readMs: number;
  /** Queued answers must drain within this, else the client is not reading: closed. */
  writeMs: number;
  /** No message at all for this long: closed. */
  idleMs: number;
  /** Open connections per listener; at the cap the oldest one with no query in flight makes room. */
  maxConns: number;
}

export const DEFAULT_TCP_LIMITS: Readonly<TcpLimits> = { readMs: 3000, writeMs: 5000, idleMs: 10_000, maxConns: 1000 };

/** CoreDNS's client_auth values (Go's tls.ClientAuthType). */
export type ClientAuth = 'nocert' | 'request' | 'require' | 'verify_if_given' | 'require_and_verify';

/** A `tls://` listener: DNS over TLS (RFC 7858) on TCP only, with the block's `tls` certificate. */
export interface TlsListen {
  /** Certificate, key and the roots that verify client certificates. */
  options: tls.SecureContextOptions;
  clientAuth: ClientAuth;
  /** Receives NSS key log lines (`tls { keylog FILE }`). */
  keylog?: ((line: Buffer) => void) | undefined;
}

/** The server asks for a client certificate (fixed when the listener opens). */
export const requestsCert = (mode: ClientAuth) => mode !== 'nocert';

/**
 * Whether a connection may go on under `mode` once its handshake is done: Go's policies, checked here
 * rather than by Node at the handshake, so a reload can change them on an open listener.
 */
function clientAllowed(sock: tls.TLSSocket, mode: ClientAuth): boolean {
  const given = mode !== 'nocert' && mode !== 'request' && Object.keys(sock.getPeerCertificate()).length > 0;
  switch (mode) {
    case 'require': return given;
    case 'verify_if_given': return !given || sock.authorized;
    case 'require_and_verify': return given && sock.authorized;
    default: return true;
  }
}

/** Bounds a connection's unanswered pipelined queries so one client cannot queue unbounded work. */
const TCP_MAX_INFLIGHT = 128;
/**
 * Answers queued in user space for one connection beyond what the kernel took. Reading stops as soon as
 * anything queues (write() returns false); this only catches the answers of queries already in flight.
 */
const TCP_MAX_QUEUED_BYTES = 256 << 10;

/**
 * `-workers N`: node:cluster hands every worker the primary's sockets, and whichever worker is idle reads
 * the next datagram. CLUSTERDNS_WORKER_SOCKETS=reuseport (Node >= 22.12) gives each worker its own
 * SO_REUSEPORT sockets instead, spread by the kernel per client address and port: measured no faster
 * on 2 cores, and one busy client always lands on the same worker (README "Runtime").
 */
export function reusePortWorkers(version = process.versions.node, env = process.env): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return env.CLUSTERDNS_WORKER_SOCKETS === 'reuseport' && (major > 22 || (major === 22 && minor >= 12));
}

function unmap(address: string): [string, 1 | 2] {
  if (!address.includes(':')) return [address, 1];
  // Dual-stack sockets report IPv4 peers as ::ffff:a.b.c.d.
  if (address.startsWith('::ffff:') && address.includes('.')) return [address.slice(7), 1];
  // A link-local peer comes as fe80::1%eth0: plugins see the address alone (Go's UDPAddr.IP, what whoami
  // writes into an AAAA record); replies go to the socket's own peer, zone and all.
  const zone = address.indexOf('%');
  return [zone > 0 ? address.slice(0, zone) : address, 2];
}

function settle(r: Answer | Promise<Answer>, done: (b: Answer) => void): void {
  if (r instanceof Promise) r.then(done, (e: Error) => log.error(`unhandled: ${e.stack ?? e.message}`));
  else done(r);
}

/** UDP and TCP sockets of one address:port, both feeding the same handler. */
export class DnsListener {
  private udp?: dgram.Socket;
  private tcp?: net.Server;
  private conns = new Map<net.Socket, TcpConn>();
  /** Every TCP connection under a TLS listener, from accept (before its handshake) to close. */
  private tlsConns = new Set<net.Socket>();
  private closed = false;
  handler: PacketHandler;

  limits: TcpLimits;

  private secure: TlsListen | undefined;

  /** With `stream`, TCP only (a `tls://` block), over TLS when `stream.tls` is given. */
  constructor(readonly host: string, readonly port: number, handler: PacketHandler, limits: TcpLimits = DEFAULT_TCP_LIMITS,
    private readonly stream?: { tls: TlsListen | undefined }) {
    this.handler = handler;
    this.limits = limits;
    this.secure = stream?.tls;
  }

  /** A reload's `tls` (a new certificate, say): new connections get it, open ones keep theirs. */
  setTls(secure: TlsListen): void {
    if (secure === this.secure || !this.secure) return;
    this.secure = secure;
    (this.tcp as tls.Server | undefined)?.setSecureContext(secure.options);
  }

  /**
   * Binds UDP first, then TCP on the same port. With port 0 the kernel picks the UDP port, which a TCP
   * socket (any outgoing connection's ephemeral port) may already hold: then try another port.
   */
  async open(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.openOnce();
        return;
      } catch (e) {
        if (this.port !== 0 || (e as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 10) throw e;
      }
    }
  }

  private async openOnce(): Promise<void> {
    const v6 = this.host.includes(':');
    // Port 0 would give each worker a different port: those share the primary's.
    const own = cluster.isWorker && this.port !== 0 && reusePortWorkers() ? { reusePort: true } : {};
    if (this.stream) {
      this.tcp = await this.listenTcp(this.port, v6, own);
      return;
    }
    const udp = dgram.createSocket({ type: v6 ? 'udp6' : 'udp4', ipv6Only: v6, recvBufferSize: 4 << 20, ...own });
    const localAddress = this.host;
    let localPort = this.port;
    udp.on('message', (msg, rinfo) => {
      const [address, family] = unmap(rinfo.address);
      let r: Answer | Promise<Answer>;
      try {
        r = this.handler(msg, { proto: 'udp', address, port: rinfo.port, family, localAddress, localPort });
      } catch (e) {
        log.error(`handler threw: ${(e as Error).stack}`);
        return;
      }
      settle(r, (answer) => {
        // Transfers are TCP only: a stream never comes back for UDP, but its first message would do.
        const out = answer instanceof Frames ? answer.first : answer;
        // A reply can finish after close() (a slow upstream): sending then would throw.
        if (out && !this.closed) udp.send(out, rinfo.port, rinfo.address, (e) => e && log.warn(`udp send to ${rinfo.address}: ${e.message}`));
      });
    });
    udp.on('error', (e) => log.error(`udp ${this.host}:${this.port}: ${e.message}`));
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind({ port: this.port, address: this.host }, () => { udp.off('error', reject); resolve(); });
    });
    localPort = udp.address().port;
    const tcp = await this.listenTcp(udp.address().port, v6, own).catch((e) => { udp.close(); throw e; });
    this.udp = udp;
    this.tcp = tcp;
  }

  private async listenTcp(port: number, v6: boolean, own: { reusePort?: boolean }): Promise<net.Server> {
    let tcp: net.Server;
    if (this.secure) {
      const mode = this.secure.clientAuth;
      // Not half-open: a TLS socket whose peer is gone would otherwise stay open after a failed handshake.
      const srv = tls.createServer({
        noDelay: true, ...this.secure.options, handshakeTimeout: this.limits.readMs, requestCert: requestsCert(mode), rejectUnauthorized: false,
      }, (sock) => {
        if (clientAllowed(sock, this.secure!.clientAuth)) this.serveTcp(sock);
        else sock.destroy();
      });
      srv.on('keylog', (line) => this.secure?.keylog?.(line));
      // A failed handshake (a scanner, a wrong certificate) is the client's problem: not worth a log line each.
      srv.on('tlsClientError', (_err, sock) => sock.destroy());
      // Connections still in their handshake are not in `conns`; close() must end them too.
      srv.on('connection', (raw: net.Socket) => {
        this.tlsConns.add(raw);
        raw.once('close', () => this.tlsConns.delete(raw));
      });
      tcp = srv;
    } else {
      // Half-open: a client may send its queries and shut its side down; the answers still go back.
      tcp = net.createServer({ noDelay: true, allowHalfOpen: true }, (sock) => this.serveTcp(sock));
    }
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen({ port, host: this.host, ipv6Only: v6, ...own }, () => { tcp.off('error', reject); resolve(); });
    });
    tcp.on('error', (e) => log.error(`${this.secure ? 'tls' : 'tcp'} ${this.host}:${port}: ${e.message}`));
    return tcp;
  }

  get boundPort(): number {
    return this.udp?.address().port ?? (this.tcp?.address() as net.AddressInfo | null)?.port ?? this.port;
  }

  private serveTcp(sock: net.Socket): void {
    const lim = this.limits;
    if (this.conns.size >= lim.maxConns && !this.evictIdle()) {
      sock.destroy();
      return;
    }
    const [address, family] = unmap(sock.remoteAddress ?? '');
    const peer: Peer = {
      proto: 'tcp', address, port: sock.remotePort ?? 0, family, localAddress: unmap(sock.localAddress ?? '')[0], localPort: sock.localPort ?? 0,
    };
    // Through the listener, not captured: a reload swaps the handler under open connections.
    const conn = new TcpConn(sock, peer, lim, (buf, p) => this.handler(buf, p));
    this.conns.set(sock, conn);
    sock.on('close', () => { conn.dispose(); this.conns.delete(sock); });
  }

  /** Closes the oldest connection with nothing in flight (a Map iterates in insertion order). */
  private evictIdle(): boolean {
    for (const [sock, c] of this.conns) {
      if (c.inflight === 0) {
        sock.destroy();
        this.conns.delete(sock);
        return true;
      }
    }
    return false;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.udp?.close();
    for (const c of this.conns.keys()) c.destroy();
    for (const c of this.tlsConns) c.destroy();
    await new Promise<void>((r) => (this.tcp ? this.tcp.close(() => r()) : r()));
  }
}

/**
 * One client connection: length-prefixed frames in (RFC 7766), answers out. Reading stops while the
 * answers back up or too many queries are in flight, so a client that never reads costs a bounded amount.
 */
class TcpConn {
  inflight = 0;
  private readonly frames = new StreamFrames();
  private ended = false;
  private writeBlocked = false;
  /** A transfer's messages are being written: nothing else is read or answered on this connection meanwhile. */
  private streaming = false;
  /** drain() is on the stack: an answer computed synchronously inside it must not start another. */
  private draining = false;
  private readTimer: NodeJS.Timeout | undefined;
  private writeTimer: NodeJS.Timeout | undefined;

  constructor(private readonly sock: net.Socket, private readonly peer: Peer, private readonly lim: TcpLimits,
    private readonly handler: PacketHandler) {
    sock.setTimeout(lim.idleMs, () => { if (this.inflight === 0 && !this.writeBlocked) sock.destroy(); });
    sock.on('error', () => sock.destroy());
    sock.on('data', (chunk) => {
      this.frames.push(chunk);
      this.drain();
    });
    sock.on('end', () => {
      this.ended = true;
      clearTimeout(this.readTimer);
      if (this.inflight === 0) sock.end();
    });
    sock.on('drain', () => {
      this.writeBlocked = false;
      clearTimeout(this.writeTimer);
      this.maybeResume();
    });
    this.armRead();
  }

  private get paused(): boolean {
    return this.writeBlocked || this.streaming || this.inflight >= TCP_MAX_INFLIGHT;
  }

  /** Runs every complete frame received, unless paused; then watches the deadline of a partial one. */
  private drain(): void {
    if (this.draining) return;
    this.draining = true;
    let took = false;
    while (!this.paused && !this.sock.destroyed) {
      const frame = this.frames.next();
      if (!frame) break;
      took = true;
      this.run(frame);
    }
    this.draining = false;
    if (this.paused) {
      this.sock.pause();
      clearTimeout(this.readTimer);
      this.readTimer = undefined;
    } else if (this.frames.buffered === 0) {
      clearTimeout(this.readTimer);
      this.readTimer = undefined;
    } else if (took || !this.readTimer) {
      clearTimeout(this.readTimer);
      this.readTimer = undefined;
      this.armRead();
    }
  }

  private armRead(): void {
    if (this.readTimer || this.ended) return;
    this.readTimer = setTimeout(() => this.sock.destroy(), this.lim.readMs);
  }

  private run(frame: Buffer): void {
    this.inflight++;
    let r: Answer | Promise<Answer>;
    try {
      r = this.handler(frame, this.peer);
    } catch (e) {
      log.error(`handler threw: ${(e as Error).stack}`);
      r = null;
    }
    settle(r, (out) => this.answer(out));
  }

  private answer(answer: Answer): void {
    if (answer instanceof Frames) {
      this.stream(answer);
      return;
    }
    const out = answer;
    this.inflight--;
    const sock = this.sock;
    if (sock.destroyed) return;
    if (!out) {
      // A malformed frame we cannot answer: RFC 7766 lets us close; keeping a desynced stream is worse.
      sock.end();
      return;
    }
    const hdr = Buffer.allocUnsafe(2);
    hdr.writeUInt16BE(out.length);
    if (!sock.write(Buffer.concat([hdr, out])) && !this.writeBlocked) {
      this.writeBlocked = true;
      this.writeTimer = setTimeout(() => sock.destroy(), this.lim.writeMs);
    }
    if (sock.writableLength > TCP_MAX_QUEUED_BYTES) {
      sock.destroy();
      return;
    }
    this.answered();
  }

  private answered(): void {
    if (this.ended && this.inflight === 0) this.sock.end();
    else this.maybeResume();
  }

  /**
   * Writes a transfer's messages one after the other, making the next only when the kernel took the last
   * (the write deadline applies to each wait), then carries on as after any answer.
   */
  private stream(frames: Frames): void {
    const sock = this.sock;
    this.streaming = true;
    let next: Buffer | undefined = frames.first;
    const pump = (): void => {
      clearTimeout(this.writeTimer);
      try {
        while (next && !sock.destroyed) {
          const hdr = Buffer.allocUnsafe(2);
          hdr.writeUInt16BE(next.length);
          const took = sock.write(Buffer.concat([hdr, next]));
          const r = frames.rest.next();
          next = r.done ? undefined : r.value;
          if (!took && next) {
            this.writeTimer = setTimeout(() => sock.destroy(), this.lim.writeMs);
            sock.once('drain', pump);
            return;
          }
        }
      } catch (e) {
        // Half a transfer cannot be taken back: the secondary sees the connection close and retries.
        log.error(`zone transfer to ${this.peer.address} failed: ${(e as Error).stack ?? (e as Error).message}`);
        sock.destroy();
      }
      this.streaming = false;
      this.inflight--;
      if (!sock.destroyed) this.answered();
    };
    pump();
  }

  private maybeResume(): void {
    if (this.paused || this.ended || this.sock.destroyed) return;
    this.drain();
    if (!this.paused) this.sock.resume();
  }

  dispose(): void {
    clearTimeout(this.readTimer);
    clearTimeout(this.writeTimer);
  }
}
