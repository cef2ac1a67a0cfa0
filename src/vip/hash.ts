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
