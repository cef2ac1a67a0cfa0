import { typeName } from '../../server/wire/constants.js';

/** Mnemonics the core's table lacks but CoreDNS prints (log `{type}`) and counts (metrics `type`). */
const MORE_TYPES: Record<number, string> = {
  3: 'MD', 4: 'MF', 7: 'MB', 8: 'MG', 9: 'MR', 10: 'NULL', 11: 'WKS', 14: 'MINFO', 17: 'RP', 18: 'AFSDB',
  24: 'SIG', 25: 'KEY', 29: 'LOC', 35: 'NAPTR', 36: 'KX', 37: 'CERT', 39: 'DNAME', 42: 'APL', 43: 'DS',
  44: 'SSHFP', 45: 'IPSECKEY', 46: 'RRSIG', 47: 'NSEC', 48: 'DNSKEY', 49: 'DHCID', 50: 'NSEC3',
  51: 'NSEC3PARAM', 52: 'TLSA', 53: 'SMIMEA', 55: 'HIP', 59: 'CDS', 60: 'CDNSKEY', 61: 'OPENPGPKEY',
  62: 'CSYNC', 63: 'ZONEMD', 64: 'SVCB', 65: 'HTTPS', 99: 'SPF', 108: 'EUI48', 109: 'EUI64',
  249: 'TKEY', 250: 'TSIG', 253: 'MAILB', 254: 'MAILA', 256: 'URI', 257: 'CAA',
};

export function qtypeName(t: number): string {
  return MORE_TYPES[t] ?? typeName(t);
}

/** CoreDNS's `monitorType`: the qtypes that get their own `type` label; everything else is "other". */
const MONITORED = new Set([1, 28, 5, 48, 43, 15, 50, 47, 2, 12, 46, 6, 33, 16, 65, 64, 251, 252, 255]);

export function metricType(t: number): string {
  return MONITORED.has(t) ? qtypeName(t) : 'other';
}

/**
 * miekg/dns RcodeToString. Unknown codes: the metrics label says `RCODE<n>` (CoreDNS's rcode.ToString),
 * the log's `{rcode}` the bare number (its replacer).
 */
const RCODES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED', 'YXDOMAIN', 'YXRRSET', 'NXRRSET', 'NOTAUTH', 'NOTZONE'];
const EXT_RCODES: Record<number, string> = { 16: 'BADVERS', 17: 'BADKEY', 18: 'BADTIME', 19: 'BADMODE', 20: 'BADNAME', 21: 'BADALG', 22: 'BADTRUNC', 23: 'BADCOOKIE' };

export function rcodeString(r: number, unknownPrefix: '' | 'RCODE'): string {
  return RCODES[r] ?? EXT_RCODES[r] ?? `${unknownPrefix}${r}`;
}
