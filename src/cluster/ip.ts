import { isIP } from 'node:net';

/** Canonical text form of an IP (IPv6 per RFC 5952), or undefined when it is not an IP. */
export function canonicalIP(ip: string): string | undefined {
  const v = isIP(ip);
  if (v === 4) return ip.split('.').map((p) => String(Number(p))).join('.');
  if (v === 6) return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
  return undefined;
}

export function ipFamily(ip: string): 4 | 6 | 0 {
  return isIP(ip) as 4 | 6 | 0;
}
