/** DNS numeric constants (RFC 1035, 3596, 2782, 6891). */
export const TYPE = {
  A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, HINFO: 13, MX: 15, TXT: 16, AAAA: 28, SRV: 33,
  OPT: 41, IXFR: 251, AXFR: 252, ANY: 255,
} as const;

export const CLASS = { IN: 1, CH: 3, ANY: 255 } as const;

export const RCODE = {
  NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5,
  /** Extended (needs OPT): upper bits travel in the OPT TTL. */
  BADVERS: 16,
} as const;

export const OPCODE = { QUERY: 0 } as const;

const typeNames = new Map<number, string>(Object.entries(TYPE).map(([k, v]) => [v, k]));
const typeNumbers = new Map<string, number>(Object.entries(TYPE));
const rcodeNames = new Map<number, string>(Object.entries(RCODE).map(([k, v]) => [v, k]));

/** `TYPE65280` style for types without a mnemonic, like dig prints them. */
export function typeName(t: number): string {
  return typeNames.get(t) ?? `TYPE${t}`;
}

export function typeNumber(name: string): number | undefined {
  const upper = name.toUpperCase();
  const known = typeNumbers.get(upper);
  if (known !== undefined) return known;
  const m = /^TYPE(\d{1,5})$/.exec(upper);
  return m ? Number(m[1]) : undefined;
}

export function rcodeName(r: number): string {
  return rcodeNames.get(r) ?? `RCODE${r}`;
}

export function rcodeNumber(name: string): number | undefined {
  return (RCODE as Record<string, number>)[name.toUpperCase()];
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
