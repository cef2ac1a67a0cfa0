import crypto from 'node:crypto';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

const ALPHABET_CODES = [...ALPHABET].map((c) => c.charCodeAt(0));

/**
 * `prefix` followed by RFC 4648 base32 (standard alphabet) of the first `chars * 5` bits of a latin1
 * `digest` (one character per byte): all the chain names need.
 * Built from char codes in one call, prefix included: a concatenated name is a rope that every use (rule
 * output, Set and Map lookups, sort keys) has to flatten first, and there are 100k+ of them per sync.
 */
function base32Prefix(digest: string, chars: number, prefix = ''): string {
  const codes: number[] = [];
  for (let i = 0; i < prefix.length; i++) codes.push(prefix.charCodeAt(i));
  chars += prefix.length;
  let bits = 0;
  let value = 0;
  for (let i = 0; codes.length < chars; i++) {
    value = (value << 8) | digest.charCodeAt(i);
    bits += 8;
    while (bits >= 5 && codes.length < chars) {
      codes.push(ALPHABET_CODES[(value >>> (bits - 5)) & 31]!);
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  return String.fromCharCode(...codes);
}

/**
 * SHA-256 as a binary (latin1) string, one character per byte. At 100k endpoint chain names per model the call
 * overhead dominates: the one-shot `crypto.hash` (Node 20.12+) returning a string takes a fifth of the time
 * of a Hash object with a Buffer digest (no object, no backing store). Older Node 20 releases use the Hash object.
 */
const sha256: (s: string) => string = typeof crypto.hash === 'function'
  ? (s) => crypto.hash('sha256', s, 'binary')
  : (s) => crypto.createHash('sha256').update(s).digest('binary');

/** kube-proxy's hash: base32(sha256(s))[:16], so rules are identical across restarts and to kube-proxy's. */
export function chainHash(s: string, prefix = ''): string {
  return base32Prefix(sha256(s), 16, prefix);
}

export type ServiceChainKind = 'SVC' | 'SVL' | 'EXT' | 'FW';

/** `spn` is `ns/name` or `ns/name:portName`; `proto` lower case. */
export function serviceChain(kind: ServiceChainKind, spn: string, proto: string): string {
  return chainHash(spn + proto, `KUBE-${kind}-`);
}

/** All four chains of a service port: kube-proxy hashes the same `spn + proto` for each, so once here. */
export function serviceChains(spn: string, proto: string): Record<'svc' | 'svl' | 'ext' | 'fw', string> {
  const digest = sha256(spn + proto);
  return {
    svc: base32Prefix(digest, 16, 'KUBE-SVC-'), svl: base32Prefix(digest, 16, 'KUBE-SVL-'),
    ext: base32Prefix(digest, 16, 'KUBE-EXT-'), fw: base32Prefix(digest, 16, 'KUBE-FW-'),
  };
}

/** `endpoint` is `ip:port` (`[ip]:port` for IPv6, as Go's net.JoinHostPort writes it). */
export function endpointChain(spn: string, proto: string, endpoint: string): string {
  return chainHash(spn + proto + endpoint, 'KUBE-SEP-');
}

export function joinHostPort(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** kube-proxy's nftables name length budget: 256 for a name, minus the longest prefix it puts in front. */
const NFT_BASE_MAX = 240;

/** `HASH8-base` truncated like kube-proxy's hashAndTruncate (the hash keeps truncated names unique). */
function nftHashed(base: string): string {
  const name = `${base32Prefix(sha256(base), 8)}-${base}`;
  return name.length > NFT_BASE_MAX ? `${name.slice(0, NFT_BASE_MAX - 3)}...` : name;
}

/**
 * kube-proxy's nftables chain base for a service port: `HASH-ns/name/proto/portName`
 * (`ns1/svc1:p80` + tcp → `ULMVA6XW-ns1/svc1/tcp/p80`). `spn` is `ns/name` or `ns/name:portName`.
 */
export function nftServiceBase(spn: string, proto: string): string {
  const colon = spn.indexOf(':');
  const svc = colon < 0 ? spn : spn.slice(0, colon);
  const port = colon < 0 ? '' : spn.slice(colon + 1);
  return nftHashed(`${svc}/${proto}/${port}`);
}

/** Endpoint base: `HASH-ns/name/proto/portName__ip/port`; IPv6 colons become dots (not allowed in names). */
export function nftEndpointBase(spn: string, proto: string, ip: string, port: number): string {
  const colon = spn.indexOf(':');
  const svc = colon < 0 ? spn : spn.slice(0, colon);
  const portName = colon < 0 ? '' : spn.slice(colon + 1);
  return nftHashed(`${svc}/${proto}/${portName}__${ip.replaceAll(':', '.')}/${port}`);
}
