/** DNS numeric constants (RFC 1035, 3596, 2782, 6891). */
export const TYPE = {
  A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, HINFO: 13, MX: 15, TXT: 16, AAAA: 28, SRV: 33, DNAME: 39,
  OPT: 41, IXFR: 251, AXFR: 252, ANY: 255, CAA: 257,
} as const;

export const CLASS = { IN: 1, CH: 3, ANY: 255 } as const;

export const RCODE = {
  NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5, YXDOMAIN: 6, NOTAUTH: 9,
  /** Extended (needs OPT): upper bits travel in the OPT TTL. */
  BADVERS: 16,
} as const;

export const OPCODE = { QUERY: 0, NOTIFY: 4 } as const;

/** Mnemonics of types we only name (logs, metrics labels), never build or parse RDATA for. */
const NAMED_ONLY: Record<number, string> = {
  3: 'MD', 4: 'MF', 7: 'MB', 8: 'MG', 9: 'MR', 10: 'NULL', 11: 'WKS', 14: 'MINFO', 17: 'RP', 18: 'AFSDB',
  24: 'SIG', 25: 'KEY', 29: 'LOC', 35: 'NAPTR', 36: 'KX', 37: 'CERT', 42: 'APL', 43: 'DS',
  44: 'SSHFP', 45: 'IPSECKEY', 46: 'RRSIG', 47: 'NSEC', 48: 'DNSKEY', 49: 'DHCID', 50: 'NSEC3',
  51: 'NSEC3PARAM', 52: 'TLSA', 53: 'SMIMEA', 55: 'HIP', 59: 'CDS', 60: 'CDNSKEY', 61: 'OPENPGPKEY',
  62: 'CSYNC', 63: 'ZONEMD', 64: 'SVCB', 65: 'HTTPS', 99: 'SPF', 108: 'EUI48', 109: 'EUI64',
  249: 'TKEY', 250: 'TSIG', 253: 'MAILB', 254: 'MAILA', 256: 'URI',
};

const typeNames = new Map<number, string>([
  ...Object.entries(NAMED_ONLY).map(([k, v]) => [Number(k), v] as [number, string]),
  ...Object.entries(TYPE).map(([k, v]) => [v, k] as [number, string]),
]);
const typeNumbers = new Map<string, number>(Object.entries(TYPE));
/** miekg/dns StringToType: every mnemonic we can name, spelled as miekg spells it. */
const mnemonicTypes = new Map<string, number>([...typeNames].map(([n, s]) => [s, n]));

/** miekg/dns RcodeToString, extended codes included (16 is BADSIG there, which RFC 6891 also calls BADVERS). */
const rcodeNames = new Map<number, string>([
  ...['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED', 'YXDOMAIN', 'YXRRSET', 'NXRRSET', 'NOTAUTH', 'NOTZONE', 'DSOTYPENI']
    .map((n, i) => [i, n] as [number, string]),
  [16, 'BADSIG'], [17, 'BADKEY'], [18, 'BADTIME'], [19, 'BADMODE'], [20, 'BADNAME'], [21, 'BADALG'], [22, 'BADTRUNC'], [23, 'BADCOOKIE'],
]);
/** miekg/dns StringToRcode: the reverse of RcodeToString plus its NOTIMPL alias. */
const rcodeNumbers = new Map<string, number>([...[...rcodeNames].map(([n, s]) => [s, n] as [string, number]), ['NOTIMPL', 4]]);

/** miekg/dns ClassToString and its reverse, StringToClass. */
const classNames = new Map<number, string>([[1, 'IN'], [2, 'CS'], [3, 'CH'], [4, 'HS'], [254, 'NONE'], [255, 'ANY']]);
const classNumbers = new Map<string, number>([...classNames].map(([n, s]) => [s, n]));

/** `TYPE65280` style for types without a mnemonic, like dig prints them. */
export function typeName(t: number): string {
  return typeNames.get(t) ?? `TYPE${t}`;
}

/** dig's and zone files' spelling: any case, and TYPEnnn for the types we have no RDATA codec for. */
export function typeNumber(name: string): number | undefined {
  const upper = name.toUpperCase();
  const known = typeNumbers.get(upper);
  if (known !== undefined) return known;
  const m = /^TYPE(\d{1,5})$/.exec(upper);
  return m ? Number(m[1]) : undefined;
}

/** Unknown codes: `RCODE<n>` by default (CoreDNS's metrics label); the log's `{rcode}` wants the bare number. */
export function rcodeName(r: number, unknownPrefix: '' | 'RCODE' = 'RCODE'): string {
  return rcodeNames.get(r) ?? `${unknownPrefix}${r}`;
}

/** CoreDNS's Corefile spelling (dns.StringToType): an exact mnemonic, no TYPEnnn; callers upper-case where CoreDNS does. */
export function typeByMnemonic(name: string): number | undefined {
  return mnemonicTypes.get(name);
}

/** dns.StringToRcode: exact names; callers upper-case where CoreDNS does. */
export function rcodeNumber(name: string): number | undefined {
  return rcodeNumbers.get(name);
}

/** dns.ClassToString[c]: undefined for classes without a mnemonic (CoreDNS labels those ''). */
export function classMnemonic(c: number): string | undefined {
  return classNames.get(c);
}

/** dns.Class(c).String(), as logs and the template's question print it: `CLASS<n>` when there is no mnemonic. */
export function className(c: number): string {
  return classNames.get(c) ?? `CLASS${c}`;
}

/** dns.StringToClass: exact names; callers upper-case where CoreDNS does. */
export function classNumber(name: string): number | undefined {
  return classNumbers.get(name);
}

/** Header bit masks on the 16-bit flags word. */
export const FLAG = {
  QR: 0x8000, AA: 0x0400, TC: 0x0200, RD: 0x0100, RA: 0x0080, AD: 0x0020, CD: 0x0010,
} as const;

export const HEADER_SIZE = 12;
/** Classic DNS UDP limit when the client sent no EDNS (RFC 1035 §4.2.1). */
export const DEFAULT_UDP_SIZE = 512;
/** What we advertise and the ceiling we honour (DNS flag day 2020). */
export const SERVER_UDP_SIZE = 1232;
