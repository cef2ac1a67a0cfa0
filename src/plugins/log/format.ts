import { performance } from 'node:perf_hooks';
import type { Query } from '../../server/types.js';
import { className, FLAG, HEADER_SIZE, RCODE, TYPE, rcodeName, typeName } from '../../server/wire/constants.js';
import { readName } from '../../server/wire/name.js';
import { responseType, type ResponseType } from '../../server/response-type.js';

/** CoreDNS's Common Log Format and the `{combined}` variant (adds the opcode). */
export const COMMON_FORMAT = '{remote}:{port} - {>id} "{type} {class} {name} {proto} {size} {>do} {>bufsize}" {rcode} {>rflags} {rsize} {duration}';
export const COMBINED_FORMAT = COMMON_FORMAT + ' "{>opcode}"';

export type ResponseClass = 'success' | 'denial' | 'error';

/** What the log line needs from the reply: the bytes the server sends, and the response type. */
export interface Written {
  wire: Buffer;
  /** CoreDNS's response.Typify: NOERROR, NXDOMAIN, NODATA, DELEGATION, SERVERERROR, META, OTHERERROR. */
  type: string;
}

const LABELS = new Set([
  '{type}', '{name}', '{class}', '{proto}', '{size}', '{remote}', '{port}', '{local}',
  '{>id}', '{>opcode}', '{>do}', '{>bufsize}', '{rcode}', '{rsize}', '{duration}', '{>rflags}',
]);

type Node = { kind: 'literal'; text: string } | { kind: 'label'; label: string } | { kind: 'meta'; key: string };

/**
 * CoreDNS's replacer parsing: find each `}`, back up to the nearest `{`; known labels and `{/meta}`
 * become placeholders, anything else stays literal (so `{ {type} }` and `A } {name}` work as there).
 */
export function parseFormat(format: string): Node[] {
  const nodes: Node[] = [];
  let s = format;
  for (;;) {
    const j = s.indexOf('}');
    if (j < 0) break;
    const i = s.lastIndexOf('{', j);
    if (i < 0) {
      nodes.push({ kind: 'literal', text: s.slice(0, j + 1) });
      s = s.slice(j + 1);
      continue;
    }
    const val = s.slice(i, j + 1);
    if (LABELS.has(val) || val.startsWith('{/')) {
      if (i > 0) nodes.push({ kind: 'literal', text: s.slice(0, i) });
      nodes.push(LABELS.has(val) ? { kind: 'label', label: val } : { kind: 'meta', key: val.slice(2, -1) });
    } else {
      nodes.push({ kind: 'literal', text: s.slice(0, j + 1) });
    }
    s = s.slice(j + 1);
  }
  if (s) nodes.push({ kind: 'literal', text: s });
  return nodes;
}

const FLAG_NAMES: [number, string][] = [
  [FLAG.QR, 'qr'], [FLAG.AA, 'aa'], [FLAG.TC, 'tc'], [FLAG.RD, 'rd'], [FLAG.RA, 'ra'], [0x0040, 'z'], [FLAG.AD, 'ad'], [FLAG.CD, 'cd'],
];

function flags(wire: Buffer): string {
  const word = wire.readUInt16BE(2);
  return FLAG_NAMES.filter(([bit]) => word & bit).map(([, n]) => n).join(',');
}

/** Go's strconv.FormatFloat(secs, 'f', -1, 64) of a nanosecond-precision duration: `0.000123456s`, never `1e-7s`. */
function seconds(ms: number): string {
  const s = Math.round(ms * 1e6) / 1e9;
  const text = String(s);
  return (text.includes('e') ? s.toFixed(9).replace(/\.?0+$/, '') : text) + 's';
}

/** `[::1]` for IPv6 (RFC 3986), the dotted quad for IPv4 and IPv4-mapped peers. */
function address(ip: string): string {
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (v4) return v4[1]!;
  return ip.includes(':') ? `[${ip}]` : ip;
}

/** CoreDNS's request.Size(): TCP 64k, else the EDNS buffer size but never below 512. */
function bufsize(q: Query): number {
  if (q.proto === 'tcp') return 65535;
  return Math.max(q.edns?.udpSize ?? 0, 512);
}

function value(label: string, q: Query, w: Written | undefined): string {
  switch (label) {
    case '{type}': return typeName(q.type);
    case '{name}': return q.lname;
    case '{class}': return className(q.class);
    case '{proto}': return q.proto;
    case '{size}': return String(q.raw.length);
    case '{remote}': return address(q.remoteAddress);
    case '{port}': return String(q.remotePort);
    case '{>id}': return String(q.id);
    case '{>opcode}': return String(q.opcode);
    case '{>do}': return String(q.edns?.do ?? false);
    case '{>bufsize}': return String(bufsize(q));
    case '{rcode}': return w ? rcodeName(w.wire.readUInt16BE(2) & 0xf, '') : '-';
    case '{rsize}': return w ? String(w.wire.length) : '-';
    case '{duration}': return w ? seconds(performance.now() - q.start) : '-';
    case '{>rflags}': return w ? flags(w.wire) : '-';
    // The core does not tell plugins the local address of the socket a query came in on.
    default: return '-';
  }
}

/**
 * The line for `q`; without `w` (dnstap's `extra`, made where CoreDNS's replacer has no response recorder) the
 * response's labels are `-` as there.
 */
export function formatLine(nodes: Node[], q: Query, w?: Written): string {
  let out = '';
  for (const n of nodes) {
    if (n.kind === 'literal') out += n.text;
    else if (n.kind === 'label') out += value(n.label, q, w);
    else if (w && n.key === 'log/type') out += w.type;
    else if (w && n.key === 'log/class') out += classify(w.type);
    else out += '-';
  }
  return out;
}

/** CoreDNS's response.Typify on the bytes we send (question first, so `questionEnd` locates the answer). */
export function typify(q: Query, wire: Buffer): ResponseType {
  if (q.type === TYPE.AXFR || q.type === TYPE.IXFR) return 'META';
  const rcode = wire.readUInt16BE(2) & 0xf;
  const an = wire.readUInt16BE(6);
  let soa = false;
  let ns = 0;
  if (an === 0 || (rcode !== RCODE.NOERROR && rcode !== RCODE.NXDOMAIN)) {
    try {
      let off = wire.readUInt16BE(4) ? q.questionEnd : HEADER_SIZE;
      const auth = wire.readUInt16BE(8);
      for (let i = 0; i < an + auth; i++) {
        const at = readName(wire, off)[1];
        if (i >= an) {
          const t = wire.readUInt16BE(at);
          if (t === TYPE.SOA) soa = true;
          else if (t === TYPE.NS) ns++;
        }
        off = at + 10 + wire.readUInt16BE(at + 8);
      }
    } catch {
      return 'OTHERERROR';
    }
  }
  return responseType(rcode, an, soa, ns);
}

/** CoreDNS's response.Classify. */
export function classify(type: string): ResponseClass {
  switch (type) {
    case 'NOERROR': case 'DELEGATION': return 'success';
    case 'NXDOMAIN': case 'NODATA': return 'denial';
    default: return 'error';
  }
}
