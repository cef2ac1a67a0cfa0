import dns2 from 'dns2';
import { TYPE } from '../../src/server/wire/constants.js';
import { ipv6Bytes } from '../../src/pkg/ip.js';
import { decodeMessage, type MxData, type RR, type SoaData, type SrvData } from '../../src/server/wire/message.js';

/**
 * A message as both decoders can print it: ours (src/server/wire) and dns2's Packet.parse, an
 * independent implementation, so a codec bug that our own decoder mirrors still shows.
 */
export interface Canonical { header: string; question: string[]; answer: string[]; authority: string[]; additional: string[]; edns: string | null }

// dns2 prints names without the root dot; AAAA in its own compression style.
const bare = (name: string) => (name === '.' ? '' : name.replace(/\.$/, ''));
const v6 = (addr: string) => ipv6Bytes(addr)?.toString('hex') ?? `unparsable ${addr}`;

function oursRdata(rr: RR): string {
  const d = rr.data;
  switch (rr.type) {
    case TYPE.A: return d as string;
    case TYPE.AAAA: return v6(d as string);
    case TYPE.NS: case TYPE.CNAME: case TYPE.PTR: return bare(d as string);
    case TYPE.MX: return `${(d as MxData).preference} ${bare((d as MxData).exchange)}`;
    case TYPE.SRV: { const s = d as SrvData; return `${s.priority} ${s.weight} ${s.port} ${bare(s.target)}`; }
    case TYPE.TXT: return JSON.stringify(d);
    case TYPE.SOA: {
      const s = d as SoaData;
      return `${bare(s.mname)} ${bare(s.rname)} ${s.serial} ${s.refresh} ${s.retry} ${s.expire} ${s.minimum}`;
    }
    default: return (d as Buffer).toString('hex');
  }
}

function ours(wire: Buffer): Canonical {
  const m = decodeMessage(wire);
  const rr = (r: RR) => `${bare(r.name)} ${r.type} ${r.class ?? 1} ${r.ttl} ${oursRdata(r)}`;
  // Both decoders fold the OPT's extended rcode bits into rcode.
  return {
    header: `${m.id} qr=${+!!m.qr} aa=${+!!m.aa} tc=${+!!m.tc} rd=${+!!m.rd} ra=${+!!m.ra} rcode=${m.rcode}`,
    question: m.question ? [`${bare(m.question.name)} ${m.question.type} ${m.question.class}`] : [],
    answer: m.answer.map(rr), authority: m.authority.map(rr), additional: m.additional.map(rr),
    edns: m.edns ? `udp=${m.edns.udpSize} version=${m.edns.version} do=${m.edns.do}` : null,
  };
}

type Dns2Resource = dns2.Packet.Resource & Record<string, unknown>;

function theirsRdata(r: Dns2Resource): string {
  switch (r.type) {
    case TYPE.A: return r.address as string;
    case TYPE.AAAA: return v6(r.address as string);
    case TYPE.NS: return r.ns as string;
    case TYPE.CNAME: case TYPE.PTR: return r.domain as string;
    case TYPE.MX: return `${r.priority} ${r.exchange}`;
    case TYPE.SRV: return `${r.priority} ${r.weight} ${r.port} ${r.target}`;
    case TYPE.TXT: return JSON.stringify(r.data);
    case TYPE.SOA: return `${r.primary} ${r.admin} ${r.serial} ${r.refresh} ${r.retry} ${r.expiration} ${r.minimum}`;
    default: return (r.data as Buffer).toString('hex');
  }
}

function theirs(wire: Buffer): Canonical & { errors: string[] } {
  const p = dns2.Packet.parse(wire);
  const h = p.header;
  const rr = (r: Dns2Resource) => `${r.name} ${r.type} ${r.class} ${r.ttl} ${theirsRdata(r)}`;
  const records = (rs: dns2.Packet.Resource[]) => (rs as Dns2Resource[]).filter((r) => r.type !== TYPE.OPT).map(rr);
  const opt = (p.additionals as Dns2Resource[]).find((r) => r.type === TYPE.OPT);
  return {
    header: `${h.id} qr=${h.qr} aa=${h.aa} tc=${h.tc} rd=${h.rd} ra=${h.ra} rcode=${h.rcode}`,
    question: p.questions.map((q) => `${q.name} ${q.type} ${q.class}`),
    answer: records(p.answers), authority: records(p.authorities), additional: records(p.additionals),
    edns: opt ? `udp=${opt.class} version=${opt.version} do=${opt.doFlag}` : null,
    errors: p.errors.map((e) => e.message),
  };
}

/** Both decodings of `wire`; `theirs.errors` lists what dns2 could not decode. */
export function decodeBoth(wire: Buffer): { ours: Canonical; theirs: Canonical & { errors: string[] } } {
  return { ours: ours(wire), theirs: theirs(wire) };
}
