/**
 * The protobuf encoding of dnstap.Dnstap (github.com/dnstap/dnstap.pb, dnstap.proto), written by hand: the
 * schema is fixed and small, we only ever write it, and a protobuf library would bring a code generator or a
 * runtime schema for about a dozen fields.
 */

/** Message.Type values (dnstap.proto). */
export const MESSAGE_TYPE = {
  CLIENT_QUERY: 5,
  CLIENT_RESPONSE: 6,
  FORWARDER_QUERY: 7,
  FORWARDER_RESPONSE: 8,
} as const;

/** SocketProtocol values; SocketFamily is INET = 1, INET6 = 2, the same numbers as Query.family. */
export const SOCKET_PROTOCOL = { udp: 1, tcp: 2 } as const;

/** Dnstap.Type MESSAGE: the only type dnstap defines. */
const DNSTAP_MESSAGE = 1;

/** One dnstap Message. Times are Unix epoch milliseconds (fractions kept down to what the clock gives). */
export interface TapMessage {
  type: number;
  family: 1 | 2;
  protocol: number;
  queryAddress?: Buffer;
  queryPort?: number;
  responseAddress?: Buffer;
  responsePort?: number;
  queryTime?: number;
  responseTime?: number;
  queryMessage?: Buffer;
  responseMessage?: Buffer;
}

/** The fields every message of one dnstap directive carries. */
export interface TapSource {
  identity: Buffer;
  version: Buffer;
}

const WIRE_VARINT = 0;
const WIRE_FIXED32 = 5;
const WIRE_BYTES = 2;
/** The most a tag, a varint or a length prefix takes (a 64-bit varint is 10 bytes). */
const MAX_VARINT = 10;

/** A forward-only writer into a buffer sized beforehand (every field's upper bound is known). */
class Writer {
  off = 0;
  constructor(readonly buf: Buffer) {}

  varint(n: number): void {
    // Division, not shifts: seconds since 1970 do not fit the 32 bits JavaScript's bit operators work on.
    while (n >= 0x80) {
      this.buf[this.off++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    this.buf[this.off++] = n;
  }

  tag(field: number, wire: number): void {
    this.varint(field * 8 + wire);
  }

  uint(field: number, n: number | undefined): void {
    if (n === undefined) return;
    this.tag(field, WIRE_VARINT);
    this.varint(n);
  }

  fixed32(field: number, n: number): void {
    this.tag(field, WIRE_FIXED32);
    this.off = this.buf.writeUInt32LE(n, this.off);
  }

  bytes(field: number, b: Buffer | undefined): void {
    if (b === undefined) return;
    this.tag(field, WIRE_BYTES);
    this.varint(b.length);
    this.off += b.copy(this.buf, this.off);
  }

  /** A Unix time as its `_sec` (uint64) and `_nsec` (fixed32) fields. */
  time(secField: number, ms: number | undefined): void {
    if (ms === undefined) return;
    const sec = Math.floor(ms / 1000);
    this.uint(secField, sec);
    this.fixed32(secField + 1, Math.min(999_999_999, Math.round((ms - sec * 1000) * 1e6)));
  }
}

function bytesBound(b: Buffer | undefined): number {
  return b ? 2 * MAX_VARINT + b.length : 0;
}

function encodeMessage(m: TapMessage): Buffer {
  const w = new Writer(Buffer.allocUnsafe(16 * MAX_VARINT + bytesBound(m.queryAddress) + bytesBound(m.responseAddress)
    + bytesBound(m.queryMessage) + bytesBound(m.responseMessage)));
  w.uint(1, m.type);
  w.uint(2, m.family);
  w.uint(3, m.protocol);
  w.bytes(4, m.queryAddress);
  w.bytes(5, m.responseAddress);
  w.uint(6, m.queryPort);
  w.uint(7, m.responsePort);
  w.time(8, m.queryTime);
  w.bytes(10, m.queryMessage);
  w.time(12, m.responseTime);
  w.bytes(14, m.responseMessage);
  return w.buf.subarray(0, w.off);
}

/** A dnstap.Dnstap of type MESSAGE holding `m`; `extra` is left out when undefined. */
export function encodeDnstap(src: TapSource, m: TapMessage, extra?: Buffer): Buffer {
  const inner = encodeMessage(m);
  const w = new Writer(Buffer.allocUnsafe(4 * MAX_VARINT + bytesBound(src.identity) + bytesBound(src.version) + bytesBound(extra) + bytesBound(inner)));
  w.bytes(1, src.identity);
  w.bytes(2, src.version);
  w.bytes(3, extra);
  w.bytes(14, inner);
  w.uint(15, DNSTAP_MESSAGE);
  return w.buf.subarray(0, w.off);
}
