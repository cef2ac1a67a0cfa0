/** Reverse-DNS names: CIDR → reverse zones (CoreDNS plugin/pkg/cidr), IP ↔ in-addr.arpa./ip6.arpa. owner names. */
import { canonicalIP, ipFamily } from '../cluster/ip.js';

interface Prefix {
  family: 4 | 6;
  /** The network address (host bits cleared) as an integer of 32 or 128 bits. */
  network: bigint;
  ones: number;
}

const BITS = { 4: 32, 6: 128 } as const;
/** Bits per reverse label: an octet for IPv4, a nibble for IPv6. */
const LABEL_BITS = { 4: 8, 6: 4 } as const;
const SUFFIX = { 4: 'in-addr.arpa.', 6: 'ip6.arpa.' } as const;

/**
 * The reverse zones covering a CIDR. A prefix on a label boundary is one zone (`10.0.0.0/8` → `10.in-addr.arpa.`);
 * otherwise it is split into the next longer boundary (`10.0.0.0/22` → four /24 zones, `fd00::/7` → two /8 zones).
 * Throws on anything that is not an address/length pair; like CoreDNS, IPv6 text starting with `:` or `0` is
 * refused (`::/0`), write `ip6.arpa.` for the whole tree.
 */
export function cidrToReverseZones(cidr: string): string[] {
  const prefix = parseCidr(cidr);
  if (!prefix || cidr.startsWith(':') || (cidr.startsWith('0') && cidr.includes(':'))) {
    throw new Error(`invalid CIDR ${cidr}`);
  }
  const { family, network, ones } = prefix;
  const step = LABEL_BITS[family];
  const length = Math.ceil(ones / step) * step;
  const count = 1 << (length - ones);
  const zones: string[] = [];
  for (let i = 0; i < count; i++) {
    const subnet = network + (BigInt(i) << BigInt(BITS[family] - length));
    const kept = reverseLabels(subnet, family).slice((BITS[family] - length) / step);
    zones.push([...kept, SUFFIX[family]].join('.'));
  }
  return zones;
}

/** Whether `text` is an `ADDRESS/LENGTH` pair (what makes a server key or zone argument a reverse zone). */
export function isCidr(text: string): boolean {
  return parseCidr(text) !== undefined;
}

/** The PTR owner name of an IP: `10.0.0.1` → `1.0.0.10.in-addr.arpa.`; throws when `ip` is not an IP. */
export function reverseName(ip: string): string {
  const family = ipFamily(ip);
  if (!family || ip.includes('%')) throw new Error(`not an IP address: '${ip}'`);
  return [...reverseLabels(toBigInt(ip, family), family), SUFFIX[family]].join('.');
}

/** The IP a full reverse name stands for (case-insensitive, trailing dot optional); undefined for partial or invalid names. */
export function ipFromReverseName(name: string): string | undefined {
  const lower = name.toLowerCase().replace(/\.$/, '');
  for (const family of [4, 6] as const) {
    const suffix = '.' + SUFFIX[family].slice(0, -1);
    if (!lower.endsWith(suffix)) continue;
    const labels = lower.slice(0, -suffix.length).split('.').reverse();
    if (family === 4) {
      const ok = labels.length === 4 && labels.every((l) => /^(0|[1-9]\d{0,2})$/.test(l) && Number(l) <= 255);
      return ok ? labels.join('.') : undefined;
    }
    if (labels.length !== 32 || !labels.every((l) => /^[0-9a-f]$/.test(l))) return undefined;
    const groups = [];
    for (let i = 0; i < 32; i += 4) groups.push(labels.slice(i, i + 4).join(''));
    return canonicalIP(groups.join(':'));
  }
  return undefined;
}

function parseCidr(text: string): Prefix | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const ip = text.slice(0, slash);
  const len = text.slice(slash + 1);
  const family = ipFamily(ip);
  if (!family || ip.includes('%') || !/^(0|[1-9]\d{0,2})$/.test(len)) return undefined;
  const ones = Number(len);
  const bits = BITS[family];
  if (ones > bits) return undefined;
  const hostMask = (1n << BigInt(bits - ones)) - 1n;
  return { family, network: toBigInt(ip, family) & ~hostMask, ones };
}

/** Reverse labels, least significant first: one per octet (IPv4) or nibble (IPv6). */
function reverseLabels(value: bigint, family: 4 | 6): string[] {
  const step = LABEL_BITS[family];
  const labels: string[] = [];
  for (let shift = 0; shift < BITS[family]; shift += step) {
    const part = Number((value >> BigInt(shift)) & ((1n << BigInt(step)) - 1n));
    labels.push(family === 4 ? String(part) : part.toString(16));
  }
  return labels;
}

function toBigInt(ip: string, family: 4 | 6): bigint {
  if (family === 4) return ip.split('.').reduce((acc, octet) => (acc << 8n) | BigInt(Number(octet)), 0n);
  // Fold a trailing dotted quad (`::ffff:1.2.3.4`) into two hex groups, then expand `::`.
  let text = ip;
  const quad = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (quad) {
    const [a, b, c, d] = quad.slice(1).map(Number);
    text = text.slice(0, quad.index) + ((a << 8) | b).toString(16) + ':' + ((c << 8) | d).toString(16);
  }
  const [head, tail] = text.split('::');
  const left = head ? head.split(':') : [];
  const right = tail === undefined ? [] : tail ? tail.split(':') : [];
  const groups = tail === undefined ? left : [...left, ...Array(8 - left.length - right.length).fill('0'), ...right];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}
