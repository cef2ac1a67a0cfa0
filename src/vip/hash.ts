import { createHash } from 'node:crypto';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** RFC 4648 base32 (standard alphabet) of the first `chars * 5` bits of `buf`: all the chain names need. */
function base32Prefix(buf: Buffer, chars: number): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (let i = 0; out.length < chars; i++) {
    value = (value << 8) | buf[i]!;
    bits += 8;
    while (bits >= 5 && out.length < chars) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  return out;
}

/** kube-proxy's hash: base32(sha256(s))[:16], so rules are identical across restarts and to kube-proxy's. */
export function chainHash(s: string): string {
  return base32Prefix(createHash('sha256').update(s).digest(), 16);
}

export type ServiceChainKind = 'SVC' | 'SVL' | 'EXT' | 'FW';

/** `spn` is `ns/name` or `ns/name:portName`; `proto` lower case. */
export function serviceChain(kind: ServiceChainKind, spn: string, proto: string): string {
  return `KUBE-${kind}-${chainHash(spn + proto)}`;
}

/** `endpoint` is `ip:port` (`[ip]:port` for IPv6, as Go's net.JoinHostPort writes it). */
export function endpointChain(spn: string, proto: string, endpoint: string): string {
  return `KUBE-SEP-${chainHash(spn + proto + endpoint)}`;
}

export function joinHostPort(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** kube-proxy's nftables name length budget: 256 for a name, minus the longest prefix it puts in front. */
const NFT_BASE_MAX = 240;

/** `HASH8-base` truncated like kube-proxy's hashAndTruncate (the hash keeps truncated names unique). */
function nftHashed(base: string): string {
  const name = `${base32Prefix(createHash('sha256').update(base).digest(), 8)}-${base}`;
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
