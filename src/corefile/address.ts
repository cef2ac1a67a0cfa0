/** Server-block keys: `[SCHEME://]ZONE[:PORT]` (CoreDNS core/dnsserver/register.go and plugin.SplitHostPort). */
import { isCidr } from '../pkg/ip.js';
import { cidrToReverseZones } from '../pkg/reverse.js';
import { fqdn } from '../pkg/zone.js';
import type { ServerAddress } from './types.js';

type Scheme = ServerAddress['scheme'];

/** Longest first: `https3://` must not be read as `https://` + `3//…`. */
const SCHEMES: readonly Scheme[] = ['https3', 'https', 'dns', 'tls', 'grpc', 'quic'];

/** Port a scheme listens on when the key names none; `dns` follows `-dns.port`. */
export function defaultPort(scheme: Scheme, dnsPort = 53): number {
  switch (scheme) {
    case 'dns':
      return dnsPort;
    case 'tls':
    case 'quic':
      return 853;
    default:
      return 443;
  }
}

/**
 * Parses a server-block key. With `defaultPort` (the `-dns.port` value) a key without a port gets its scheme's
 * default port; without it `port` stays null. Throws an Error with CoreDNS's wording on a bad key.
 */
export function parseServerKey(key: string, dnsPort: number | null = null): ServerAddress {
  let scheme: Scheme = 'dns';
  let rest = key;
  const schemeEnd = key.indexOf('://');
  if (schemeEnd >= 0) {
    const name = key.slice(0, schemeEnd);
    const known = SCHEMES.find((s) => s === name);
    if (!known) throw new Error(`unknown scheme '${name}://' in '${key}'; use one of ${SCHEMES.map((s) => s + '://').join(', ')}`);
    scheme = known;
    rest = key.slice(schemeEnd + 3);
  }

  // The port is whatever follows the last colon when it is a number; an IPv6 CIDR keeps its colons because
  // its mask (`/8`) comes before any port.
  let port: number | null = null;
  const colon = rest.lastIndexOf(':');
  if (colon >= 0 && colon === rest.length - 1) throw new Error(`expecting data after last colon: "${rest}"`);
  if (colon >= 0 && /^\d+$/.test(rest.slice(colon + 1))) {
    port = Number(rest.slice(colon + 1));
    if (port > 65535) throw new Error(`invalid port ${rest.slice(colon + 1)} in '${key}'`);
    rest = rest.slice(0, colon);
  }
  const zone = rest;

  if (zone.length > 255) throw new Error(`specified zone is too long: ${zone.length} > 255`);
  if (!isDomainName(zone)) throw new Error(`zone is not a valid domain name: ${zone}`);

  let zones: string[];
  if (isCidr(zone)) {
    zones = cidrToReverseZones(zone);
  } else if (zone.includes(':')) {
    // CoreDNS would take `example.org:abc` or `[fd00::]/8` for a zone name with a colon in it; nobody means that.
    throw new Error(`invalid key '${key}': a port must be numeric and an IPv6 reverse zone is written as a CIDR without brackets (fd00::/8)`);
  } else if (zone.includes(',')) {
    // Only a comma that ends a token separates keys (`a, b`); `a,b` would otherwise be one odd zone.
    throw new Error(`invalid key '${key}': separate keys with a space or ', '`);
  } else if (/^[0-9a-f.:]+\/\d+$/i.test(zone)) {
    throw new Error(`invalid CIDR ${zone}`);
  } else {
    zones = [fqdn(zone)];
  }
  return { scheme, zones, port: port ?? (dnsPort === null ? null : defaultPort(scheme, dnsPort)), key };
}

/**
 * miekg/dns IsDomainName: almost any byte is allowed; labels are non-empty (except the root) and at most 63
 * octets, and the name fits 255 octets on the wire.
 */
function isDomainName(name: string): boolean {
  if (name === '') return false;
  if (name === '.') return true;
  const labels = (name.endsWith('.') ? name.slice(0, -1) : name).split('.');
  let wire = 1;
  for (const label of labels) {
    const length = Buffer.byteLength(label.replace(/\\(\d{3}|.)/g, 'x'));
    if (length === 0 || length > 63) return false;
    wire += length + 1;
  }
  return wire <= 255;
}
