import { performance } from 'node:perf_hooks';
import { client, metricSet } from '../../pkg/metrics.js';
import { writeIpv4, writeIpv6 } from '../../pkg/ip.js';
import type { Next, Plugin, Query, Reply } from '../../server/types.js';
import type { ForwardExchange, Tapper } from '../interfaces.js';
import { formatLine, parseFormat } from '../log/format.js';
import type { TapOutput } from './io.js';
import { encodeDnstap, MESSAGE_TYPE, SOCKET_PROTOCOL, type TapMessage, type TapSource } from './proto.js';

/** Ours: CoreDNS only logs the count every 10 seconds (we do too). */
export const dnstapMetrics = metricSet((registry) => ({
  dropped: new client.Counter({
    name: 'coredns_dnstap_dropped_messages_total',
    help: 'Dnstap messages dropped because the collector was not connected or the queue was full.',
    labelNames: ['endpoint'],
    registers: [registry],
  }),
}));

export interface DnstapConfig extends TapSource {
  /** `full`: the DNS messages go into the dnstap messages. */
  full: boolean;
  /** The `extra` format (CoreDNS's replacer labels, like the log plugin's); undefined leaves the field out. */
  extra?: string;
}

/** An address as dnstap carries it: 4 bytes for IPv4, 16 for IPv6. */
function addressBytes(ip: string, family: 1 | 2): Buffer {
  const out = Buffer.alloc(family === 1 ? 4 : 16);
  (family === 1 ? writeIpv4 : writeIpv6)(ip, out, 0);
  return out;
}

/**
 * One `dnstap` line: a CLIENT_QUERY when a client's query enters the chain (before a forwarder's own messages,
 * as in CoreDNS) and a CLIENT_RESPONSE with the bytes the server sent. Queries the server asks itself (CNAME
 * chasing) are not tapped: they do not carry the asking client's address CoreDNS would show for them.
 */
export class Dnstap implements Plugin, Tapper {
  readonly name = 'dnstap';
  private readonly extraFormat: ReturnType<typeof parseFormat> | undefined;
  /** `extra` without labels: the same bytes for every message. */
  private readonly extraFixed: Buffer | undefined;

  constructor(readonly config: DnstapConfig, readonly output: TapOutput) {
    if (config.extra === undefined) return;
    const nodes = parseFormat(config.extra);
    if (nodes.every((n) => n.kind === 'literal')) this.extraFixed = Buffer.from(config.extra);
    else this.extraFormat = nodes;
  }

  serve(q: Query, next: Next): Reply | Promise<Reply> {
    if (!q.reentry) this.tapClient(q);
    return next(q);
  }

  sent(q: Query, wire: Buffer): void {
    if (!q.reentry) this.tapClient(q, wire);
  }

  /** Writes `m` with this line's identity, version and extra for `q`, unless the output would only drop it. */
  private tap(q: Query, m: TapMessage): void {
    if (!this.output.accepting) return this.output.drop();
    const extra = this.extraFormat ? Buffer.from(formatLine(this.extraFormat, q)) : this.extraFixed;
    this.output.write(encodeDnstap(this.config, m, extra));
  }

  /**
   * CoreDNS's forward taps: from this server's side of the upstream socket, so the upstream is the response
   * address. The local address of that socket is left out (CoreDNS sets it when its proxy knows it).
   */
  tapForward(q: Query, x: ForwardExchange): void {
    const full = this.config.full;
    const family = x.host.includes(':') ? 2 : 1;
    const m: TapMessage = {
      type: MESSAGE_TYPE.FORWARDER_QUERY, family, protocol: SOCKET_PROTOCOL[x.transport],
      responseAddress: addressBytes(x.host, family), responsePort: x.port,
      queryTime: performance.timeOrigin + x.start, queryMessage: full ? x.query : undefined,
    };
    this.tap(q, m);
    if (!x.reply) return;
    this.tap(q, {
      ...m, type: MESSAGE_TYPE.FORWARDER_RESPONSE, queryMessage: undefined,
      responseTime: performance.timeOrigin + performance.now(), responseMessage: full ? x.reply : undefined,
    });
  }

  start(): void {
    this.output.start();
  }

  close(): Promise<void> {
    return this.output.close();
  }

  private tapClient(q: Query, response?: Buffer): void {
    if (!this.output.accepting) return this.output.drop();
    const full = this.config.full;
    this.tap(q, {
      type: response ? MESSAGE_TYPE.CLIENT_RESPONSE : MESSAGE_TYPE.CLIENT_QUERY,
      family: q.family,
      protocol: SOCKET_PROTOCOL[q.proto],
      queryAddress: addressBytes(q.remoteAddress, q.family),
      queryPort: q.remotePort,
      queryTime: performance.timeOrigin + q.start,
      queryMessage: full && !response ? q.raw : undefined,
      responseTime: response ? performance.timeOrigin + performance.now() : undefined,
      responseMessage: full ? response : undefined,
    });
  }
}
