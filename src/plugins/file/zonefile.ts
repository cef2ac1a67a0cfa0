import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { CLASS, TYPE, typeName, typeNumber } from '../../server/wire/constants.js';
import type { RR, SoaData } from '../../server/wire/message.js';
import { formatIpv6, ipFamily, ipv6Bytes } from '../../pkg/ip.js';
import { nameToWire } from '../../server/wire/name.js';
import { isSubdomain } from '../../pkg/zone.js';

/** A zone file problem, with the place: `db.example.org:12: bad TTL 'x'` (line 0: the zone as a whole). */
export class ZoneFileError extends Error {
  constructor(readonly file: string, readonly line: number, message: string) {
    super(line > 0 ? `${file}:${line}: ${message}` : `${file}: ${message}`);
  }
}

interface Token { text: string; quoted: boolean }
interface Entry { tokens: Token[]; line: number; blankOwner: boolean }

/**
 * Splits zone-file text into entries (RFC 1035 §5.1): `;` comments, parentheses joining lines, quoted strings,
 * backslash escapes kept in the token (names need them), and whether the entry starts with blank space
 * (the owner is then the previous one).
 */
function tokenize(text: string, file: string): Entry[] {
  const entries: Entry[] = [];
  let tokens: Token[] = [];
  let line = 1, entryLine = 1, depth = 0, parenLine = 0;
  let blankOwner = false, atLineStart = true;
  let cur = '', inToken = false;
  const endToken = () => {
    if (inToken) tokens.push({ text: cur, quoted: false });
    cur = '';
    inToken = false;
  };
  const endEntry = () => {
    if (tokens.length) entries.push({ tokens, line: entryLine, blankOwner });
    tokens = [];
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (atLineStart && depth === 0) {
      blankOwner = c === ' ' || c === '\t';
      entryLine = line;
      atLineStart = false;
    }
    if (c === '\\') {
      cur += c + (text[i + 1] ?? '');
      inToken = true;
      i++;
      continue;
    }
    if (c === '"') {
      endToken();
      let s = '';
      let j = i + 1;
      for (; j < text.length && text[j] !== '"'; j++) {
        if (text[j] === '\\') s += text[j++]!;
        if (text[j] === '\n') line++;
        s += text[j] ?? '';
      }
      if (j >= text.length) throw new ZoneFileError(file, line, 'unterminated quoted string');
      tokens.push({ text: s, quoted: true });
      i = j;
      continue;
    }
    if (c === ';') {
      endToken();
      while (i + 1 < text.length && text[i + 1] !== '\n') i++;
      continue;
    }
    if (c === '(') {
      endToken();
      if (depth++ === 0) parenLine = line;
      continue;
    }
    if (c === ')') {
      endToken();
      if (--depth < 0) throw new ZoneFileError(file, line, "')' without '('");
      continue;
    }
    if (c === '\n' || c === ' ' || c === '\t' || c === '\r') {
      endToken();
      if (c === '\n') {
        line++;
        if (depth === 0) {
          endEntry();
          atLineStart = true;
        }
      }
      continue;
    }
    cur += c;
    inToken = true;
  }
  if (depth > 0) throw new ZoneFileError(file, parenLine, "'(' never closed");
  endToken();
  endEntry();
  return entries;
}

/** BIND-style TTL: `3600`, `1h`, `1h30m`, `2w` (RFC 1035 numbers plus BIND units); undefined if not one. */
export function parseTTL(text: string): number | undefined {
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    return n <= 0xffffffff ? n : undefined;
  }
  const units: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };
  const re = /(\d+)([smhdw])/giy;
  let total = 0, pos = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    total += Number(m[1]) * units[m[2]!.toLowerCase()]!;
    pos = re.lastIndex;
  }
  return pos === text.length && pos > 0 && total <= 0xffffffff ? total : undefined;
}

/** Master-file classes (RFC 1035 §5.1): data classes only, so the query-only NONE and ANY never read as a class token. */
const CLASSES: Record<string, number> = { IN: CLASS.IN, CH: CLASS.CH, CS: 2, HS: 4 };

/** `\DDD` and `\X` escapes of a character string (RFC 1035 §5.1) to the text the encoder writes. */
function unescapeText(s: string): string {
  return s.replace(/\\(\d{3}|.)/g, (_, e: string) => (e.length === 3 ? String.fromCharCode(Number(e)) : e));
}

/** Types we read in their text form; any other type needs the RFC 3597 `\# LEN HEX` form. */
const TEXT_TYPES = new Set<number>([TYPE.A, TYPE.AAAA, TYPE.NS, TYPE.CNAME, TYPE.DNAME, TYPE.SOA, TYPE.PTR, TYPE.MX, TYPE.TXT, TYPE.SRV, TYPE.CAA]);

export interface ZoneFile {
  origin: string;
  records: RR[];
}

interface ParseState {
  /** The zone being loaded: every owner must lie in it whatever $ORIGIN says. */
  zone: string;
  origin: string;
  defaultTTL: number | undefined;
  lastTTL: number | undefined;
  lastOwner: string | undefined;
  includeDepth: number;
  /** One record on its own (parseRecord): any class, no `$` directives. */
  single?: boolean;
}

/**
 * Parses an RFC 1035 master file into records with absolute owner names. `origin` is the zone the Corefile
 * names ($ORIGIN may change it for what follows). `$INCLUDE` paths are relative to the including file.
 */
export function parseZoneFile(text: string, origin: string, file: string): ZoneFile {
  const records: RR[] = [];
  const st: ParseState = { zone: origin, origin, defaultTTL: undefined, lastTTL: undefined, lastOwner: undefined, includeDepth: 0 };
  parseInto(text, file, st, records);
  return { origin, records };
}

/**
 * One record in presentation format, read as miekg/dns's NewRR reads it (CoreDNS's template answers): names
 * relative to the root, TTL 3600 and class IN when not given, any class. Throws ZoneFileError naming `what`.
 */
export function parseRecord(text: string, what: string): RR {
  const records: RR[] = [];
  const st: ParseState = { zone: '.', origin: '.', defaultTTL: 3600, lastTTL: undefined, lastOwner: undefined, includeDepth: 0, single: true };
  parseInto(text, what, st, records);
  if (records.length !== 1) throw new ZoneFileError(what, 0, `want one resource record, got ${records.length} in '${text}'`);
  return records[0]!;
}

function parseInto(text: string, file: string, st: ParseState, out: RR[]): void {
  for (const e of tokenize(text, file)) {
    const fail = (msg: string): never => { throw new ZoneFileError(file, e.line, msg); };
    const name = (t: Token | undefined, what: string): string => {
      if (!t) return fail(`missing ${what}`);
      return absoluteName(t.text, st.origin, fail);
    };
    const first = e.tokens[0]!;
    if (!e.blankOwner && !first.quoted && first.text.startsWith('$')) {
      if (st.single) fail(`a record, not the directive ${first.text}`);
      const args = e.tokens.slice(1);
      switch (first.text.toUpperCase()) {
        case '$ORIGIN':
          if (args.length !== 1) fail('$ORIGIN needs exactly one name');
          st.origin = name(args[0], '$ORIGIN name').toLowerCase();
          continue;
        case '$TTL': {
          if (args.length !== 1) fail('$TTL needs exactly one TTL');
          const ttl = parseTTL(args[0]!.text);
          if (ttl === undefined) fail(`bad $TTL '${args[0]!.text}'`);
          st.defaultTTL = ttl;
          continue;
        }
        case '$INCLUDE': {
          if (args.length < 1 || args.length > 2) fail('$INCLUDE needs a file name and an optional origin');
          if (st.includeDepth >= 8) fail('$INCLUDE nested more than 8 deep');
          const path = isAbsolute(args[0]!.text) ? args[0]!.text : resolve(dirname(file), args[0]!.text);
          let inc: string;
          try {
            inc = readFileSync(path, 'utf8');
          } catch (err) {
            return fail(`$INCLUDE ${path}: ${(err as Error).message}`);
          }
          // RFC 1035 §5.1: the origin given to $INCLUDE (or the current one) applies inside the included file only.
          const saved = st.origin;
          if (args[1]) st.origin = name(args[1], '$INCLUDE origin').toLowerCase();
          st.includeDepth++;
          parseInto(inc, path, st, out);
          st.includeDepth--;
          st.origin = saved;
          continue;
        }
        default:
          fail(`unknown directive ${first.text}`);
      }
    }
    let i = 0;
    let owner: string;
    if (e.blankOwner) {
      if (!st.lastOwner) fail('record without an owner name and no previous owner');
      owner = st.lastOwner!;
    } else {
      owner = name(e.tokens[i++], 'owner');
    }
    let ttl: number | undefined;
    let klass: number | undefined;
    for (let k = 0; k < 2 && i < e.tokens.length; k++) {
      const t = e.tokens[i]!.text;
      const c = CLASSES[t.toUpperCase()];
      if (c !== undefined && klass === undefined) {
        klass = c;
        i++;
      } else if (ttl === undefined && /^\d/.test(t)) {
        ttl = parseTTL(t);
        if (ttl === undefined) fail(`bad TTL '${t}'`);
        i++;
      }
    }
    const typeTok = e.tokens[i++];
    if (!typeTok) fail('missing type');
    const type = typeNumber(typeTok!.text);
    if (type === undefined) fail(`unknown type '${typeTok!.text}' (write TYPEnnn with \\# RDATA)`);
    if (klass !== undefined && klass !== CLASS.IN && !st.single) fail(`class ${typeTok!.text} not supported, only IN`);
    if (!isSubdomain(owner.toLowerCase(), st.zone)) fail(`${owner} is out of zone ${st.zone}`);
    const rdata = e.tokens.slice(i);
    const data = parseRdata(type!, rdata, (t, what) => name(t, what), fail);
    if (ttl === undefined) {
      // RFC 2308 §4: $TTL; before it, BIND uses the last explicit TTL, then the SOA minimum.
      ttl = st.defaultTTL ?? st.lastTTL ?? (type === TYPE.SOA ? (data as SoaData).minimum : undefined);
      if (ttl === undefined) fail('no TTL given and no $TTL or earlier TTL to default to');
    } else {
      st.lastTTL = ttl;
    }
    st.lastOwner = owner;
    out.push({ name: owner, type: type!, class: klass ?? CLASS.IN, ttl: ttl!, data });
  }
}

function absoluteName(text: string, origin: string, fail: (m: string) => never): string {
  let n: string;
  if (text === '@') n = origin;
  else if (text.endsWith('.') && !text.endsWith('\\.')) n = text;
  else n = origin === '.' ? text + '.' : `${text}.${origin}`;
  try {
    nameToWire(n);
  } catch (err) {
    fail(`bad name '${text}': ${(err as Error).message}`);
  }
  return n;
}

function parseRdata(
  type: number, t: Token[], name: (t: Token | undefined, what: string) => string, fail: (m: string) => never,
): RR['data'] {
  const tn = typeName(type);
  if (t[0]?.text === '\\#' && !t[0].quoted) {
    const len = Number(t[1]?.text);
    if (!/^\d+$/.test(t[1]?.text ?? '')) fail(`${tn}: \\# needs a length`);
    const hex = t.slice(2).map((x) => x.text).join('');
    if (!/^([0-9a-fA-F]{2})*$/.test(hex) || hex.length / 2 !== len) fail(`${tn}: \\# length ${len} does not match ${hex.length / 2} bytes of hex`);
    const bytes = Buffer.from(hex, 'hex');
    if (type === TYPE.A && len === 4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
    if (type === TYPE.AAAA && len === 16) return formatIpv6(bytes);
    if (TEXT_TYPES.has(type)) fail(`${tn}: use the text form, \\# is only read for A, AAAA and types without one`);
    return bytes;
  }
  const want = (n: number) => {
    if (t.length !== n) fail(`${tn} needs ${n} RDATA field${n > 1 ? 's' : ''}, got ${t.length}`);
  };
  const u16 = (x: Token, what: string) => {
    if (!/^\d+$/.test(x.text) || Number(x.text) > 65535) fail(`${tn}: bad ${what} '${x.text}'`);
    return Number(x.text);
  };
  const u32 = (x: Token, what: string) => {
    const v = parseTTL(x.text);
    if (v === undefined) fail(`${tn}: bad ${what} '${x.text}'`);
    return v!;
  };
  switch (type) {
    case TYPE.A:
      want(1);
      if (ipFamily(t[0]!.text) !== 4) fail(`A: bad IPv4 address '${t[0]!.text}'`);
      return t[0]!.text;
    case TYPE.AAAA: {
      want(1);
      const bytes = ipv6Bytes(t[0]!.text);
      return bytes ? formatIpv6(bytes) : fail(`AAAA: bad IPv6 address '${t[0]!.text}'`);
    }
    case TYPE.NS: case TYPE.CNAME: case TYPE.PTR: case TYPE.DNAME:
      want(1);
      return name(t[0], `${tn} target`);
    case TYPE.CAA: {
      // RFC 8659 §4.1: flags, a tag of letters and digits, then the value as the rest of the RDATA.
      want(3);
      const flags = t[0]!.text;
      const tag = t[1]!.text;
      if (!/^\d+$/.test(flags) || Number(flags) > 255) fail(`CAA: bad flags '${flags}'`);
      if (!/^[A-Za-z0-9]{1,15}$/.test(tag)) fail(`CAA: bad tag '${tag}'`);
      const value = Buffer.from(unescapeText(t[2]!.text), 'utf8');
      return Buffer.concat([Buffer.from([Number(flags), tag.length]), Buffer.from(tag, 'latin1'), value]);
    }
    case TYPE.MX:
      want(2);
      return { preference: u16(t[0]!, 'preference'), exchange: name(t[1], 'MX exchange') };
    case TYPE.SRV:
      want(4);
      return { priority: u16(t[0]!, 'priority'), weight: u16(t[1]!, 'weight'), port: u16(t[2]!, 'port'), target: name(t[3], 'SRV target') };
    case TYPE.SOA:
      want(7);
      return {
        mname: name(t[0], 'SOA mname'), rname: name(t[1], 'SOA rname'), serial: u32(t[2]!, 'serial'),
        refresh: u32(t[3]!, 'refresh'), retry: u32(t[4]!, 'retry'), expire: u32(t[5]!, 'expire'), minimum: u32(t[6]!, 'minimum'),
      };
    case TYPE.TXT: {
      if (!t.length) fail('TXT needs at least one string');
      return t.map((x) => {
        const s = unescapeText(x.text);
        if (Buffer.byteLength(s) > 255) fail('TXT string longer than 255 bytes');
        return s;
      });
    }
    default:
      return fail(`${tn}: only the RFC 3597 form \\# LEN HEX is read for this type`);
  }
}
