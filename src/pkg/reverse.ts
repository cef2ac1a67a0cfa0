/** Reverse-DNS names: CIDR → reverse zones (CoreDNS plugin/pkg/cidr), IP ↔ in-addr.arpa./ip6.arpa. owner names. */
import { FAMILY_BITS, formatIpv6, ipFamily, ipToBigInt, ipv6Bytes, parseCidr, type Family } from './ip.js';

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
  const bits = FAMILY_BITS[family];
  const step = LABEL_BITS[family];
  const length = Math.ceil(ones / step) * step;
  const count = 1 << (length - ones);
  const zones: string[] = [];
  for (let i = 0; i < count; i++) {
    const subnet = network + (BigInt(i) << BigInt(bits - length));
    const kept = reverseLabels(subnet, family).slice((bits - length) / step);
    zones.push([...kept, SUFFIX[family]].join('.'));
  }
  return zones;
}

/** The PTR owner name of an IP: `10.0.0.1` → `1.0.0.10.in-addr.arpa.`; throws when `ip` is not an IP. */
export function reverseName(ip: string): string {
  const family = ipFamily(ip);
  if (!family || ip.includes('%')) throw new Error(`not an IP address: '${ip}'`);
  if (family === 4) return `${ip.split('.').map(Number).reverse().join('.')}.${SUFFIX[4]}`;
  return [...reverseLabels(ipToBigInt(ip, 6), 6), SUFFIX[6]].join('.');
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
    const bytes = ipv6Bytes(groups.join(':'));
    return bytes && formatIpv6(bytes);
  }
  return undefined;
}

/** Reverse labels, least significant first: one per octet (IPv4) or nibble (IPv6). */
function reverseLabels(value: bigint, family: Family): string[] {
  const step = LABEL_BITS[family];
  const labels: string[] = [];
  for (let shift = 0; shift < FAMILY_BITS[family]; shift += step) {
    const part = Number((value >> BigInt(shift)) & ((1n << BigInt(step)) - 1n));
    labels.push(family === 4 ? String(part) : part.toString(16));
  }
  return labels;
}
