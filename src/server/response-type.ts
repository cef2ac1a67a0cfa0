import { RCODE } from './wire/constants.js';

/** CoreDNS's response.Typify classes (plugin/pkg/response), as log's `{/class}` and cache's TTL rules use them. */
export type ResponseType = 'NOERROR' | 'NXDOMAIN' | 'NODATA' | 'DELEGATION' | 'SERVERERROR' | 'META' | 'OTHERERROR';

/**
 * Typify from what a response holds: its RCODE, answer count, whether the authority section has an SOA and
 * how many NS records. Zone transfers (META) are the caller's to recognise from the question.
 */
export function responseType(rcode: number, answers: number, soa: boolean, nsRecords: number): ResponseType {
  if (answers > 0 && rcode === RCODE.NOERROR) return 'NOERROR';
  if (answers > 0 && rcode === RCODE.NXDOMAIN) return 'OTHERERROR';
  if (soa && rcode === RCODE.NOERROR) return 'NODATA';
  if (rcode === RCODE.NXDOMAIN) return 'NXDOMAIN';
  if (rcode === RCODE.SERVFAIL || rcode === RCODE.NOTIMP) return 'SERVERERROR';
  if (nsRecords > 0 && rcode === RCODE.NOERROR) return 'DELEGATION';
  if (rcode === RCODE.NOERROR) return 'NOERROR';
  return 'OTHERERROR';
}
