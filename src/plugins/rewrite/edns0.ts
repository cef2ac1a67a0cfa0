import { ipFamily, ipv6Bytes, writeIpv4 } from '../../pkg/ip.js';
import type { Query } from '../../server/types.js';
import type { EdnsOption, Question, Rule } from './types.js';

const NSID = 3;
const SUBNET = 8;

/** The options of an OPT record's RDATA; a truncated tail is dropped. */
export function parseOptions(rdata: Buffer | undefined): EdnsOption[] {
  const out: EdnsOption[] = [];
  if (!rdata) return out;
  for (let o = 0; o + 4 <= rdata.length;) {
    const len = rdata.readUInt16BE(o + 2);
    if (o + 4 + len > rdata.length) break;
    out.push({ code: rdata.readUInt16BE(o), data: Buffer.from(rdata.subarray(o + 4, o + 4 + len)) });
    o += 4 + len;
  }
  return out;
}

export function encodeOptions(options: EdnsOption[]): Buffer {
  return Buffer.concat(options.map((o) => {
    const head = Buffer.alloc(4);
    head.writeUInt16BE(o.code, 0);
    head.writeUInt16BE(o.data.length, 2);
    return Buffer.concat([head, o.data]);
  }));
}

type Action = 'set' | 'replace' | 'append' | 'unset';
const ACTIONS = new Set(['set', 'replace', 'append', 'unset']);

/** The query's options, parsed once per query the first time a rule needs them. */
function options(q: Question, query: Query): EdnsOption[] {
  return (q.options ??= parseOptions(query.edns?.options));
}

/**
 * CoreDNS's edns0 local/nsid rules: `set` and `replace` change the first option with the code (`replace`
 * matches only then); `set` and `append` add one when there is none, and `append` adds one anyway.
 */
function setOption(opts: EdnsOption[], action: Action, code: number, data: Buffer): boolean {
  if (action === 'set' || action === 'replace') {
    const found = opts.find((o) => o.code === code);
    if (found) {
      found.data = data;
      return true;
    }
  }
  if (action === 'replace') return false;
  opts.push({ code, data });
  return true;
}

/**
 * CoreDNS's variable and subnet rules: an option already there is replaced by set/replace and left alone by
 * append; one is added by set/append when there is none.
 */
function putComputed(opts: EdnsOption[], action: Action, code: number, make: () => Buffer): boolean {
  const found = opts.find((o) => o.code === code);
  if (found ? action === 'append' : action === 'replace') return false;
  if (found) found.data = make();
  else opts.push({ code, data: make() });
  return true;
}

function unset(code: number): Rule['apply'] {
  return (q, query) => {
    q.options = options(q, query).filter((o) => o.code !== code);
    return [];
  };
}

function uint16(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v);
  return b;
}

/** The client address as CoreDNS's state.IP() gives it (an IPv4 client of a dual-stack socket is IPv4). */
function clientIp(query: Query): string {
  const a = query.remoteAddress;
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}

/** The variables of edns0 local rules; {server_ip}/{server_port} and metadata are refused at setup. */
const VARIABLES: Record<string, (query: Query) => Buffer> = {
  '{qname}': (query) => Buffer.from(query.name),
  '{qtype}': (query) => uint16(query.type),
  '{client_ip}': (query) => {
    const ip = clientIp(query);
    if (ipFamily(ip) === 6) return ipv6Bytes(ip)!;
    const b = Buffer.alloc(4);
    writeIpv4(ip, b, 0);
    return b;
  },
  '{client_port}': (query) => uint16(query.remotePort),
  '{protocol}': (query) => Buffer.from(query.proto),
};

function parseCode(text: string): number {
  // strconv.ParseUint(code, 0, 16): decimal, 0x hex, 0o/0 octal, 0b binary.
  const n = /^0[0-7]+$/.test(text) ? parseInt(text.slice(1), 8) : /^(0x[0-9a-f]+|0o[0-7]+|0b[01]+|\d+)$/i.test(text) ? Number(text) : NaN;
  if (!(n >= 0 && n <= 0xffff)) throw new Error(`invalid EDNS0 option code '${text}'`);
  return n;
}

function localRule(mode: Rule['mode'], action: Action, code: number, value: string): Rule {
  if (value.startsWith('{') && value.endsWith('}')) {
    const variable = VARIABLES[value];
    if (!variable) {
      if (value === '{server_ip}' || value === '{server_port}') throw new Error(`variable ${value} is not supported (the server's own address is not known per query)`);
      throw new Error(`unsupported variable name "${value}" (metadata variables need the metadata plugin, which clusterdns lacks)`);
    }
    return { mode, apply: (q, query) => (putComputed(options(q, query), action, code, () => variable(query)) ? [] : null) };
  }
  let data: Buffer;
  if (value.startsWith('0x')) {
    if (!/^([0-9a-f]{2})*$/i.test(value.slice(2))) throw new Error(`invalid hex data '${value}'`);
    data = Buffer.from(value.slice(2), 'hex');
  } else {
    data = Buffer.from(value);
  }
  return { mode, apply: (q, query) => (setOption(options(q, query), action, code, data) ? [] : null) };
}

/** ECS (RFC 7871) of the client's address cut to the rule's prefix lengths, source scope 0. */
function subnetData(query: Query, v4: number, v6: number): Buffer {
  const ip = clientIp(query);
  const v6client = ipFamily(ip) === 6;
  const bits = v6client ? v6 : v4;
  const addr = Buffer.alloc(v6client ? 16 : 4);
  if (v6client) ipv6Bytes(ip)!.copy(addr);
  else writeIpv4(ip, addr, 0);
  for (let i = 0; i < addr.length; i++) {
    const keep = Math.max(0, Math.min(8, bits - i * 8));
    addr[i]! &= (0xff << (8 - keep)) & 0xff;
  }
  // Host bits cleared, the address cut to the prefix's bytes (RFC 7871 §6; miekg/dns packs it so).
  const out = Buffer.alloc(4 + Math.ceil(bits / 8));
  out.writeUInt16BE(v6client ? 2 : 1, 0);
  out[2] = bits;
  out[3] = 0;
  addr.copy(out, 4, 0, out.length - 4);
  return out;
}

function subnetRule(mode: Rule['mode'], action: Action, v4Text: string, v6Text: string): Rule {
  const v4 = Number(v4Text), v6 = Number(v6Text);
  if (!/^\d+$/.test(v4Text) || v4 > 32) throw new Error(`invalid IPv4 bit mask length ${v4Text}`);
  if (!/^\d+$/.test(v6Text) || v6 > 128) throw new Error(`invalid IPv6 bit mask length ${v6Text}`);
  return { mode, apply: (q, query) => (putComputed(options(q, query), action, SUBNET, () => subnetData(query, v4, v6)) ? [] : null) };
}

/** `edns0 local|nsid|subnet ACTION ...` (CoreDNS's newEdns0Rule); `revert` is accepted (see README). */
export function newEdns0Rule(mode: Rule['mode'], input: string[]): Rule {
  if (input.length < 2) throw new Error('too few arguments for an EDNS0 rule');
  const kind = input[0]!.toLowerCase();
  const action = input[1]!.toLowerCase();
  if (!ACTIONS.has(action)) throw new Error(`invalid action: "${action}"`);
  let args = input;
  if (action !== 'unset' && args.at(-1) === 'revert') args = args.slice(0, -1);
  switch (kind) {
    case 'local':
      if (action === 'unset') {
        if (args.length !== 3) throw new Error('local unset action requires exactly two arguments');
        return { mode, apply: unset(parseCode(args[2]!)) };
      }
      if (args.length !== 4) throw new Error('EDNS0 local rules require three or four args');
      return localRule(mode, action as Action, parseCode(args[2]!), args[3]!);
    case 'nsid':
      if (args.length !== 2) throw new Error(action === 'unset' ? 'nsid unset action requires exactly one argument' : 'EDNS0 NSID rules can accept no more than one arg');
      if (action === 'unset') return { mode, apply: unset(NSID) };
      // The request carries an empty NSID option: "please tell me your NSID" (RFC 5001).
      return { mode, apply: (q, query) => (setOption(options(q, query), action as Action, NSID, Buffer.alloc(0)) ? [] : null) };
    case 'subnet':
      if (action === 'unset') {
        if (args.length !== 2) throw new Error('subnet unset action requires exactly one argument');
        return { mode, apply: unset(SUBNET) };
      }
      if (args.length !== 4) throw new Error('EDNS0 subnet rules require three or four args');
      return subnetRule(mode, action as Action, args[2]!, args[3]!);
    default:
      throw new Error(`invalid rule type "${kind}"`);
  }
}

