/**
 * A small UDP load client for attack tests and the soak benchmark: queries over one socket, at most
 * `window` in flight (closed loop) and optionally paced to `rate` per second (open loop), bounded in
 * count and in time. Latencies are measured per query; a query unanswered after `timeoutMs` is lost.
 */
import { createSocket } from 'node:dgram';
import { CLASS } from '../../src/server/wire/constants.js';
import { encodeMessage } from '../../src/server/wire/message.js';

export interface LoadOptions {
  port: number;
  /** The i-th query (i from 0). */
  query: (i: number) => { name: string; type: number };
  /** At most this many queries... */
  count: number;
  /** ...and none sent after this many milliseconds. */
  maxMs: number;
  /** Queries in flight at most (default 64). */
  window?: number;
  /** Queries per second; none: as fast as answers come back. */
  rate?: number;
  /** Default 2000. */
  timeoutMs?: number;
  /** EDNS0 UDP size to advertise; none: no OPT record. */
  bufsize?: number;
  /** Sees every answer (e.g. to check it); must not throw. */
  onAnswer?: (i: number, answer: Buffer) => void;
}

export interface LoadResult {
  sent: number;
  answered: number;
  /** Unanswered within timeoutMs. */
  lost: number;
  /** Answers by RCODE number. */
  rcodes: Record<number, number>;
  /** Milliseconds, sorted ascending. */
  latencyMs: number[];
}

/** Runs the load; resolves once every sent query was answered or timed out. */
export function udpLoad(o: LoadOptions): Promise<LoadResult> {
  const window = o.window ?? 64;
  const timeoutMs = o.timeoutMs ?? 2000;
  const sock = createSocket('udp4');
  const pending = new Map<number, { i: number; t0: number }>();
  const res: LoadResult = { sent: 0, answered: 0, lost: 0, rcodes: {}, latencyMs: [] };
  const start = performance.now();
  let nextId = 0;
  return new Promise((resolve) => {
    let done = false;
    const finish = () => {
      if (done || pending.size > 0 || (res.sent < o.count && performance.now() - start < o.maxMs)) return;
      done = true;
      clearInterval(ticker);
      sock.close();
      res.latencyMs.sort((a, b) => a - b);
      resolve(res);
    };
    const send = () => {
      const now = performance.now();
      const due = o.rate === undefined ? o.count : Math.min(o.count, Math.floor(((now - start) / 1000) * o.rate));
      while (res.sent < due && pending.size < window && now - start < o.maxMs) {
        while (pending.has(nextId)) nextId = (nextId + 1) & 0xffff;
        const id = nextId;
        nextId = (nextId + 1) & 0xffff;
        const q = o.query(res.sent);
        const wire = encodeMessage({
          id, qr: false, rd: true, rcode: 0, question: { name: q.name, type: q.type, class: CLASS.IN }, answer: [], authority: [], additional: [],
          edns: o.bufsize === undefined ? null : { udpSize: o.bufsize, version: 0, do: false },
        });
        pending.set(id, { i: res.sent, t0: performance.now() });
        res.sent++;
        sock.send(wire, o.port, '127.0.0.1');
      }
    };
    // Expires lost queries, paces an open loop, and ends the run when nothing is left to wait for.
    const ticker = setInterval(() => {
      const now = performance.now();
      // In sending order: the first one not yet due ends the scan.
      for (const [id, p] of pending) {
        if (now - p.t0 < timeoutMs) break;
        pending.delete(id);
        res.lost++;
      }
      send();
      finish();
    }, 5);
    sock.on('message', (buf) => {
      if (buf.length < 12) return;
      const p = pending.get(buf.readUInt16BE(0));
      if (!p) return;
      pending.delete(buf.readUInt16BE(0));
      res.answered++;
      res.latencyMs.push(performance.now() - p.t0);
      const rcode = buf[3]! & 0xf;
      res.rcodes[rcode] = (res.rcodes[rcode] ?? 0) + 1;
      o.onAnswer?.(p.i, buf);
      send();
      finish();
    });
    sock.on('error', () => undefined);
    sock.bind(0, '127.0.0.1', send);
  });
}
