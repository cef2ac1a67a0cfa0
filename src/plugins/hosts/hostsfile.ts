import { formatIpv6, ipFamily, ipv6Bytes } from '../../pkg/ip.js';
import { reverseName } from '../../pkg/reverse.js';
import { fqdn, isSubdomain } from '../../pkg/zone.js';

/** An address from a hosts line, in canonical text form. */
export interface HostAddr { family: 4 | 6; ip: string }

/** One parsed hosts source (the file or the inline lines). Keys are lower-case FQDNs. */
export interface HostsMap {
  v4: Map<string, string[]>;
  v6: Map<string, string[]>;
  /** `*.example.com.` owners: match exactly one more label (CoreDNS ≥ 1.13 hosts wildcards). */
  wild4: Map<string, string[]>;
  wild6: Map<string, string[]>;
  /** Reverse owner name (`4.3.2.1.in-addr.arpa.`) -> host names. */
  ptr: Map<string, string[]>;
  /** Number of (address, name) pairs, what coredns_hosts_entries counts. */
  entries: number;
}

/**
 * Parses an address the way Go's net.ParseIP does for hosts files: an IPv6 zone (`fe80::1%eth0`) is
 * dropped, and an IPv4-mapped IPv6 address counts as IPv4 (Go's To4()).
 */
export function parseHostAddr(text: string): HostAddr | undefined {
  if (ipFamily(text) === 4) return { family: 4, ip: text };
  const bare = text.replace(/%.*$/, '');
  if (!bare.includes(':')) return undefined;
  const b = ipv6Bytes(bare);
  if (!b) return undefined;
  if (b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) {
    return { family: 4, ip: `${b[12]}.${b[13]}.${b[14]}.${b[15]}` };
  }
  return { family: 6, ip: formatIpv6(b) };
}

function add(m: Map<string, string[]>, key: string, value: string): boolean {
  const list = m.get(key);
  if (!list) {
    m.set(key, [value]);
    return true;
  }
  // An RRset holds no duplicates (RFC 2181 §5): `1.2.3.4 a a` gives one record.
  if (list.includes(value)) return false;
  list.push(value);
  return true;
}

/** A line whose first field is not an address: inline lines report it, file lines are skipped like hosts(5) readers do. */
export interface BadLine { line: number; text: string }

/**
 * Parses hosts(5) text. Only names inside `origins` are kept (CoreDNS: names outside the plugin's zones are
 * ignored); PTR entries are built unless `reverse` is false. Wildcard owners never get PTRs.
 */
export function parseHosts(text: string, origins: string[], reverse: boolean, bad?: (b: BadLine) => void): HostsMap {
  const m: HostsMap = { v4: new Map(), v6: new Map(), wild4: new Map(), wild6: new Map(), ptr: new Map(), entries: 0 };
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const hash = lines[i]!.indexOf('#');
    const fields = (hash >= 0 ? lines[i]!.slice(0, hash) : lines[i]!).trim().split(/\s+/).filter(Boolean);
    if (fields.length === 0) continue;
    const addr = parseHostAddr(fields[0]!);
    if (!addr || fields.length < 2) {
      bad?.({ line: i + 1, text: fields.join(' ') });
      continue;
    }
    for (const raw of fields.slice(1)) {
      const name = fqdn(raw);
      if (!origins.some((z) => isSubdomain(name, z))) continue;
      if (name.startsWith('*.')) {
        if (add(addr.family === 4 ? m.wild4 : m.wild6, name, addr.ip)) m.entries++;
        continue;
      }
      if (add(addr.family === 4 ? m.v4 : m.v6, name, addr.ip)) m.entries++;
      if (reverse) add(m.ptr, reverseName(addr.ip), name);
    }
  }
  return m;
}

/** Addresses of `name` in one map: an exact owner wins over a wildcard one label up. */
export function lookupFamily(exact: Map<string, string[]>, wild: Map<string, string[]>, name: string): string[] {
  const hit = exact.get(name);
  if (hit) return hit;
  if (wild.size === 0 || name === '.') return [];
  const dot = name.indexOf('.');
  return wild.get('*.' + name.slice(dot + 1)) ?? [];
}
