import { canonicalWire } from '../../server/respond.js';
import { TYPE } from '../../server/wire/constants.js';
import type { Plugin, Query, Reply } from '../../server/types.js';
import { shuffleWire, wouldReorder } from './shuffle.js';

/**
 * Round-robin load balancing of A/AAAA/MX records (CoreDNS's loadbalance). It wraps every answer of the
 * block, so it works on wire bytes: a Message from a later plugin is encoded once and memoised.
 */
export class LoadBalance implements Plugin {
  readonly name = 'loadbalance';

  answered(q: Query, r: Reply): Reply {
    // A zone transfer is not an answer to shuffle (CoreDNS's loadbalance skips AXFR/IXFR too).
    if (q.type === TYPE.AXFR || q.type === TYPE.IXFR) return r;
    return balance(r);
  }
}

export function balance(r: Reply): Reply {
  if (r.wire) {
    const wire = shuffleWire(r.wire);
    return wire === r.wire ? r : { ...r, wire };
  }
  const m = r.msg;
  if (!m || m.rcode !== 0 || !wouldReorder([m.answer, m.authority, m.additional])) return r;
  const wire = shuffleWire(canonicalWire(m));
  return { rcode: r.rcode, wire, plugin: r.plugin };
}
