import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { Logger } from '../../pkg/log.js';
import { CONTROL, controlFrame, dataFrame, readControl } from './fstrm.js';

/** The content type dnstap announces in Frame Streams. */
export const CONTENT_TYPE = 'protobuf:dnstap.Dnstap';

/** CoreDNS's queueSize: messages waiting for the collector, per unit of the `queue` argument. */
export const QUEUE_UNIT = 10_000;
/** CoreDNS's tcpTimeout, here for the whole of connect + READY/ACCEPT. */
const HANDSHAKE_TIMEOUT_MS = 4000;
/** CoreDNS's errorCheckInterval: how often drops are logged, and the longest wait before redialling. */
const REPORT_MS = 10_000;
const RETRY_FIRST_MS = 500;
/** How long a closing output waits for the collector to take STOP before dropping the connection. */
const CLOSE_WAIT_MS = 1000;

export type Endpoint =
  | { proto: 'unix'; path: string }
  | { proto: 'tcp' | 'tls'; host: string; port: number; skipVerify: boolean };

export function endpointText(e: Endpoint): string {
  return e.proto === 'unix' ? `unix://${e.path}` : `${e.proto}://${e.host.includes(':') ? `[${e.host}]` : e.host}:${e.port}`;
}

export interface OutputOptions {
  /** Messages that may wait for the socket; past it they are dropped. */
  capacity: number;
  /** Bytes the socket may hold unsent before messages wait in the queue (CoreDNS's TCP write buffer). */
  writeBuffer: number;
  /** Counts every dropped message. */
  dropped: { inc(): void };
  log: Logger;
}

/**
 * One Frame Streams connection to a collector, kept up in the background. Messages are queued and written
 * on the next turn of the event loop, so the query path never waits on the collector. Like CoreDNS, messages
 * are dropped (and counted) while there is no connection or the queue is full; a lost connection is
 * redialled after a delay that doubles up to REPORT_MS.
 */
export class TapOutput {
  private state: 'idle' | 'connecting' | 'ready' | 'down' | 'closed' = 'idle';
  private queue: Buffer[] = [];
  private socket: Socket | undefined;
  private inbound: Buffer = Buffer.alloc(0);
  private blocked = false;
  private flushing = false;
  private droppedSinceReport = 0;
  private retryMs = RETRY_FIRST_MS;
  /** Whether the current outage was logged: one line per outage, not one per redial. */
  private outageLogged = false;
  private handshakeTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private reportTimer: NodeJS.Timeout | undefined;

  constructor(readonly endpoint: Endpoint, private readonly opts: OutputOptions) {}

  /** Whether a message written now would be kept: callers skip encoding one that would only be dropped. */
  get accepting(): boolean {
    return (this.state === 'ready' || this.state === 'connecting') && this.queue.length < this.opts.capacity;
  }

  /** Counts a message that was not written because the output was not `accepting`. */
  drop(): void {
    this.droppedSinceReport++;
    this.opts.dropped.inc();
  }

  /** Queues one encoded dnstap message. */
  write(payload: Buffer): void {
    if (!this.accepting) return this.drop();
    this.queue.push(dataFrame(payload));
    if (this.state === 'ready' && !this.blocked && !this.flushing) {
      this.flushing = true;
      setImmediate(() => this.flush());
    }
  }

  start(): void {
    if (this.state !== 'idle') return;
    this.reportTimer = setInterval(() => this.report(), REPORT_MS).unref();
    this.connect();
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    const wasReady = this.state === 'ready';
    this.state = 'closed';
    clearTimeout(this.handshakeTimer);
    clearTimeout(this.retryTimer);
    clearInterval(this.reportTimer);
    this.report();
    const s = this.socket;
    const pending = this.queue;
    this.queue = [];
    if (!s || s.destroyed) return;
    if (!wasReady) return void s.destroy();
    // What the queue holds goes out before STOP: a clean shutdown or reload loses no message.
    if (pending.length) s.write(Buffer.concat(pending));
    s.write(controlFrame(CONTROL.STOP));
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => s.destroy(), CLOSE_WAIT_MS);
      s.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      s.end();
    });
  }

  private report(): void {
    if (!this.droppedSinceReport) return;
    this.opts.log.warn(`Dropped dnstap messages: ${this.droppedSinceReport}`);
    this.droppedSinceReport = 0;
  }

  private connect(): void {
    this.state = 'connecting';
    this.inbound = Buffer.alloc(0);
    const e = this.endpoint;
    const s = e.proto === 'unix'
      ? netConnect({ path: e.path })
      : e.proto === 'tcp'
        ? netConnect({ host: e.host, port: e.port })
        : tlsConnect({ host: e.host, port: e.port, servername: isIP(e.host) ? undefined : e.host, rejectUnauthorized: !e.skipVerify });
    this.socket = s;
    let failure: Error | undefined;
    this.handshakeTimer = setTimeout(() => s.destroy(new Error(`no ACCEPT within ${HANDSHAKE_TIMEOUT_MS / 1000}s`)), HANDSHAKE_TIMEOUT_MS).unref();
    s.once(e.proto === 'tls' ? 'secureConnect' : 'connect', () => s.write(controlFrame(CONTROL.READY, CONTENT_TYPE)));
    s.on('data', (b: Buffer) => this.received(s, b));
    s.on('drain', () => {
      this.blocked = false;
      this.flush();
    });
    s.on('error', (err) => { failure = err; });
    s.on('close', () => this.lost(s, failure));
  }

  private received(s: Socket, b: Buffer): void {
    this.inbound = this.inbound.length ? Buffer.concat([this.inbound, b]) : b;
    try {
      for (let c = readControl(this.inbound); c; c = readControl(this.inbound)) {
        this.inbound = this.inbound.subarray(c.length);
        if (c.type === CONTROL.ACCEPT && this.state === 'connecting' && s === this.socket) {
          if (c.contentTypes.length && !c.contentTypes.includes(CONTENT_TYPE)) {
            throw new Error(`collector accepts ${c.contentTypes.join(', ')}, not ${CONTENT_TYPE}`);
          }
          this.started(s);
        } else if (c.type === CONTROL.FINISH) {
          s.end();
        }
      }
    } catch (err) {
      s.destroy(err as Error);
    }
  }

  private started(s: Socket): void {
    clearTimeout(this.handshakeTimer);
    s.write(controlFrame(CONTROL.START, CONTENT_TYPE));
    this.state = 'ready';
    this.retryMs = RETRY_FIRST_MS;
    // Ours (CoreDNS says nothing): when taps start flowing, first or again after an outage.
    this.opts.log.info(`Connected to dnstap endpoint ${endpointText(this.endpoint)}`);
    this.outageLogged = false;
    this.flush();
  }

  private flush(): void {
    this.flushing = false;
    if (this.state !== 'ready' || this.blocked || !this.queue.length) return;
    const batch = this.queue.length === 1 ? this.queue[0]! : Buffer.concat(this.queue);
    this.queue = [];
    const s = this.socket!;
    // Node buffers past its high-water mark; `writeBuffer` is where we stop and let the queue take the rest.
    if (!s.write(batch) && s.writableLength >= this.opts.writeBuffer) this.blocked = true;
  }

  private lost(s: Socket, failure: Error | undefined): void {
    if (s !== this.socket) return;
    clearTimeout(this.handshakeTimer);
    this.socket = undefined;
    this.blocked = false;
    if (this.state === 'closed') return;
    for (let i = 0; i < this.queue.length; i++) this.drop();
    this.queue = [];
    if (!this.outageLogged) {
      this.opts.log.error(`No connection to dnstap endpoint ${endpointText(this.endpoint)}: ${failure?.message ?? 'collector closed the connection'}`);
      this.outageLogged = true;
    }
    this.state = 'down';
    this.retryTimer = setTimeout(() => this.connect(), this.retryMs).unref();
    this.retryMs = Math.min(2 * this.retryMs, REPORT_MS);
  }
}
