import dgram from 'node:dgram';
import net from 'node:net';
import { logger } from './log.js';

const log = logger('server');

export interface Peer {
  proto: 'udp' | 'tcp';
  address: string;
  port: number;
  family: 1 | 2;
}

/** Returns the response bytes, null to stay silent, or a promise of either. */
export type PacketHandler = (buf: Buffer, peer: Peer) => Buffer | null | Promise<Buffer | null>;

const TCP_IDLE_MS = 10_000;
/** Bounds a connection's unanswered pipelined queries so one client cannot queue unbounded work. */
const TCP_MAX_INFLIGHT = 128;

function unmap(address: string): [string, 1 | 2] {
  // Dual-stack sockets report IPv4 peers as ::ffff:a.b.c.d.
  if (address.startsWith('::ffff:') && address.includes('.')) return [address.slice(7), 1];
  return [address, address.includes(':') ? 2 : 1];
}

function settle(r: Buffer | null | Promise<Buffer | null>, done: (b: Buffer | null) => void): void {
  if (r instanceof Promise) r.then(done, (e: Error) => log.error(`unhandled: ${e.stack ?? e.message}`));
  else done(r);
}

/** UDP and TCP sockets of one address:port, both feeding the same handler. */
export class DnsListener {
  private udp?: dgram.Socket;
  private tcp?: net.Server;
  private conns = new Set<net.Socket>();
  private closed = false;
  handler: PacketHandler;

  constructor(readonly host: string, readonly port: number, handler: PacketHandler) {
    this.handler = handler;
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
    const udp = dgram.createSocket({ type: v6 ? 'udp6' : 'udp4', ipv6Only: v6, recvBufferSize: 4 << 20 });
    udp.on('message', (msg, rinfo) => {
      const [address, family] = unmap(rinfo.address);
      let r: Buffer | null | Promise<Buffer | null>;
      try {
        r = this.handler(msg, { proto: 'udp', address, port: rinfo.port, family });
      } catch (e) {
        log.error(`handler threw: ${(e as Error).stack}`);
        return;
      }
      settle(r, (out) => {
        // A reply can finish after close() (a slow upstream): sending then would throw.
        if (out && !this.closed) udp.send(out, rinfo.port, rinfo.address, (e) => e && log.warn(`udp send to ${rinfo.address}: ${e.message}`));
      });
    });
    udp.on('error', (e) => log.error(`udp ${this.host}:${this.port}: ${e.message}`));
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind({ port: this.port, address: this.host }, () => { udp.off('error', reject); resolve(); });
    });
    const port = udp.address().port;
    const tcp = net.createServer({ noDelay: true }, (sock) => this.serveTcp(sock));
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen({ port, host: this.host, ipv6Only: v6 }, () => { tcp.off('error', reject); resolve(); });
    }).catch((e) => { udp.close(); throw e; });
    tcp.on('error', (e) => log.error(`tcp ${this.host}:${port}: ${e.message}`));
    this.udp = udp;
    this.tcp = tcp;
  }

  get boundPort(): number {
    return this.udp?.address().port ?? this.port;
  }

  private serveTcp(sock: net.Socket): void {
    this.conns.add(sock);
    sock.setTimeout(TCP_IDLE_MS, () => sock.destroy());
    sock.on('close', () => this.conns.delete(sock));
    sock.on('error', () => sock.destroy());
    const [address, family] = unmap(sock.remoteAddress ?? '');
    const peer: Peer = { proto: 'tcp', address, port: sock.remotePort ?? 0, family };
    let pending = Buffer.alloc(0);
    let inflight = 0;
    sock.on('data', (chunk) => {
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      while (pending.length >= 2) {
        const len = pending.readUInt16BE(0);
        if (pending.length < 2 + len) break;
        const frame = pending.subarray(2, 2 + len);
        pending = pending.subarray(2 + len);
        if (++inflight > TCP_MAX_INFLIGHT) sock.pause();
        let r: Buffer | null | Promise<Buffer | null>;
        try {
          r = this.handler(Buffer.from(frame), peer);
        } catch (e) {
          log.error(`handler threw: ${(e as Error).stack}`);
          r = null;
        }
        settle(r, (out) => {
          inflight--;
          if (sock.isPaused() && inflight <= TCP_MAX_INFLIGHT / 2) sock.resume();
          if (!out) {
            // A malformed frame we cannot answer: RFC 7766 lets us close; keeping a desynced stream is worse.
            if (!sock.destroyed) sock.end();
            return;
          }
          if (sock.writable) {
            const hdr = Buffer.allocUnsafe(2);
            hdr.writeUInt16BE(out.length);
            sock.write(Buffer.concat([hdr, out]));
          }
        });
      }
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.udp?.close();
    for (const c of this.conns) c.destroy();
    await new Promise<void>((r) => (this.tcp ? this.tcp.close(() => r()) : r()));
  }
}
