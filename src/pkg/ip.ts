/**
 * IP addresses and CIDRs: family, canonical text, IPv6 bytes, prefix parsing and containment. The one codec
 * every layer uses (store conversion, Corefile zones, wire AAAA, hosts files, VIP rules).
 */
import { isIP } from 'node:net';

export type Family = 4 | 6;

/** 4 or 6, or 0 when `ip` is not an IP (Node's `isIP`: an IPv6 zone such as `%eth0` counts). */
export function ipFamily(ip: string): Family | 0 {
  return isIP(ip) as Family | 0;
}

/** Canonical text form of an IP (IPv6 per RFC 5952 as WHATWG URLs print it), or undefined when it is not one. */
export function canonicalIP(ip: string): string | undefined {
  const v = isIP(ip);
  if (v === 4) return ip.split('.').map((p) => String(Number(p))).join('.');
  if (v === 6) {
    const b = ipv6Bytes(ip);
    return b && formatIpv6(b, 0);
  }
  return undefined;
}

/**
 * Writes the 16 bytes of an IPv6 address (hex groups, one `::`, an optional trailing dotted quad) at `off`;
 * false when `text` is not one. Scans characters and allocates nothing: every AAAA answer is encoded with it.
 */
export function writeIpv6(text: string, out: Uint8Array, off: number): boolean {
  const n = text.length;
  let group = 0;
  let gap = -1;
  let i = 0;
  if (n >= 2 && text.charCodeAt(0) === 0x3a) {
    if (text.charCodeAt(1) !== 0x3a) return false;
    gap = 0;
    i = 2;
  }
  while (i < n) {
    const start = i;
    let v = 0;
    for (let h = hexDigit(text.charCodeAt(i)); h >= 0 && i - start < 5; h = hexDigit(text.charCodeAt(++i))) v = (v << 4) | h;
    if (i < n && text.charCodeAt(i) === 0x2e) {
      if (group > 6 || !writeQuad(text, start, out, off + group * 2)) return false;
      group += 2;
      break;
    }
    const digits = i - start;
    if (digits === 0 || digits > 4 || group === 8) return false;
    out[off + group * 2] = v >> 8;
    out[off + group * 2 + 1] = v & 0xff;
    group++;
    if (i === n) break;
    if (text.charCodeAt(i++) !== 0x3a || i === n) return false;
    if (text.charCodeAt(i) === 0x3a) {
      if (gap >= 0) return false;
      gap = group;
      i++;
    }
  }
  if (gap < 0) return group === 8;
  // `::` stands for at least one zero group (RFC 4291 §2.2).
  if (group > 7) return false;
  const shift = (8 - group) * 2;
  for (let k = off + group * 2 - 1; k >= off + gap * 2; k--) out[k + shift] = out[k]!;
  out.fill(0, off + gap * 2, off + gap * 2 + shift);
  return true;
}

/** Writes the 4 bytes of a dotted-quad IPv4 address at `off`; false when `text` is not one. Allocates nothing (A answers). */
export function writeIpv4(text: string, out: Uint8Array, off: number): boolean {
  return writeQuad(text, 0, out, off);
}

/** The 16 bytes of an IPv6 address in a new buffer, or undefined when `text` is not one (no zone allowed). */
export function ipv6Bytes(text: string): Buffer | undefined {
  const b = Buffer.allocUnsafe(16);
  return writeIpv6(text, b, 0) ? b : undefined;
}

/** RFC 5952 text of the IPv6 address at `bytes[off..off+16]`: lower case, the first longest zero run (≥ 2) as `::`. */
export function formatIpv6(bytes: Uint8Array, off = 0): string {
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (bytes[off + i * 2] !== 0 || bytes[off + i * 2 + 1] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && bytes[off + j * 2] === 0 && bytes[off + j * 2 + 1] === 0) j++;
    if (j - i > bestLen) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  let s = '';
  let sep = '';
  for (let i = 0; i < 8; i++) {
    if (i === bestStart) { s += '::'; sep = ''; i += bestLen - 1; continue; }
    s += sep + ((bytes[off + i * 2]! << 8) | bytes[off + i * 2 + 1]!).toString(16);
    sep = ':';
  }
  return s;
}

/** A parsed `ADDRESS/LENGTH`: the network (host bits cleared) as an integer of 32 or 128 bits. */
export interface Cidr {
  family: Family;
  network: bigint;
  ones: number;
}

export const FAMILY_BITS = { 4: 32, 6: 128 } as const;

/** Parses `ADDRESS/LENGTH` strictly (no zone, no leading zeros in the length); undefined when it is not one. */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const ip = text.slice(0, slash);
  const len = text.slice(slash + 1);
  const family = ipFamily(ip);
  if (!family || ip.includes('%') || !/^(0|[1-9]\d{0,2})$/.test(len)) return undefined;
  const ones = Number(len);
  const bits = FAMILY_BITS[family];
  if (ones > bits) return undefined;
  const hostMask = (1n << BigInt(bits - ones)) - 1n;
  return { family, network: ipToBigInt(ip, family) & ~hostMask, ones };
}

/**
 * `ADDRESS/LENGTH` in canonical form (`fd00:0::/064` → `fd00::/64`), host bits kept as written (rules use it
 * verbatim); undefined when it is not one. Looser than parseCidr about the length, as the API server is.
 */
export function canonicalCidr(text: string): string | undefined {
  const slash = text.indexOf('/');
  const ip = slash > 0 ? canonicalIP(text.slice(0, slash)) : undefined;
  const len = text.slice(slash + 1);
  if (ip === undefined || !/^\d{1,3}$/.test(len) || Number(len) > (ip.includes(':') ? 128 : 32)) return undefined;
  return `${ip}/${Number(len)}`;
}

/** Whether `text` is an `ADDRESS/LENGTH` pair (what makes a server key or zone argument a reverse zone). */
export function isCidr(text: string): boolean {
  return parseCidr(text) !== undefined;
}

/** The family of a CIDR's address part (0 when it is not an IP); for CIDRs validated where they were read. */
export function cidrFamily(cidr: string): Family | 0 {
  const slash = cidr.indexOf('/');
  return ipFamily(slash < 0 ? cidr : cidr.slice(0, slash));
}

/** Whether `ip` lies in `cidr` (a bare address counts as a full-length prefix); false across families. */
export function cidrContains(cidr: string, ip: string): boolean {
  const prefix = parseCidr(cidr.includes('/') ? cidr : `${cidr}/${ipFamily(cidr) === 6 ? 128 : 32}`);
  const family = ipFamily(ip);
  if (!prefix || !family || ip.includes('%')) return false;
  return prefixContains(prefix, family, ipToBigInt(ip, family));
}

/** Whether the address `value` (as ipToBigInt gives it) of `family` lies in the parsed `prefix`. */
export function prefixContains(prefix: Cidr, family: Family, value: bigint): boolean {
  if (family !== prefix.family) return false;
  const shift = BigInt(FAMILY_BITS[family] - prefix.ones);
  return prefix.network >> shift === value >> shift;
}

/** The address as an integer of 32 or 128 bits; `ip` must be a valid address of `family` without a zone. */
export function ipToBigInt(ip: string, family: Family): bigint {
  if (family === 4) return ip.split('.').reduce((acc, octet) => (acc << 8n) | BigInt(Number(octet)), 0n);
  const b = ipv6Bytes(ip);
  if (!b) throw new Error(`not an IPv6 address: '${ip}'`);
  return (b.readBigUInt64BE(0) << 64n) | b.readBigUInt64BE(8);
}

function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10;
  return -1;
}

/** A dotted quad from `start` to the end of `text`, written as 4 bytes; false unless it is exactly one. */
function writeQuad(text: string, start: number, out: Uint8Array, at: number): boolean {
  let octet = 0;
  let digits = 0;
  let parts = 0;
  for (let i = start; i <= text.length; i++) {
    const c = i === text.length ? 0x2e : text.charCodeAt(i);
    if (c === 0x2e) {
      if (digits === 0 || parts === 4) return false;
      out[at + parts++] = octet;
      octet = 0;
      digits = 0;
    } else if (c >= 0x30 && c <= 0x39 && digits < 3) {
      octet = octet * 10 + c - 0x30;
      if (octet > 255) return false;
      digits++;
    } else {
      return false;
    }
  }
  return parts === 4;
}

export interface HostAndPort {
  host: string;
  port: number;
}

/** `IP`, `IP:port`, `[v6]`, `[v6]:port`, bare v6 (CoreDNS's parse.HostPort); undefined when it is none of those. */
export function parseHostPort(text: string, defaultPort = 53): HostAndPort | undefined {
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (bracket) return ipFamily(bracket[1]!) === 6 ? { host: bracket[1]!, port: bracket[2] ? Number(bracket[2]) : defaultPort } : undefined;
  if (ipFamily(text) === 6) return { host: text, port: defaultPort };
  const v4 = /^([^:]+)(?::(\d+))?$/.exec(text);
  if (v4 && ipFamily(v4[1]!) === 4) return { host: v4[1]!, port: v4[2] ? Number(v4[2]) : defaultPort };
  return undefined;
}
