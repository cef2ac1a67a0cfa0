import { canonicalWire } from '../../server/respond.js';
import { HEADER_SIZE } from '../../server/wire/constants.js';
import { readName } from '../../server/wire/name.js';
import type { Plugin, Query, Reply } from '../../server/types.js';
import { typify } from '../log/format.js';

/**
 * CoreDNS's minimal: a successful answer that is not a delegation loses its authority and additional
 * sections. Denials, errors and delegations pass unchanged (their SOA/NS/glue is the point of them).
 * Works on the encoded reply, so forwarded answers are cut without a decode.
 */
export class Minimal implements Plugin {
  readonly name = 'minimal';

  answered(q: Query, r: Reply): Reply {
    if (!r.msg && !r.wire) return r;
    const wire = r.wire ?? canonicalWire(r.msg!);
    if (wire.readUInt16BE(8) === 0 && wire.readUInt16BE(10) === 0) return r;
    if (typify(q, wire) !== 'NOERROR') return r;
    const cut = answerEnd(wire);
    if (cut < 0) return r;
    const out = Buffer.from(wire.subarray(0, cut));
    out.writeUInt32BE(0, 8);
    return { rcode: r.rcode, wire: out, plugin: r.plugin };
  }
}

/** Offset just after the answer section, or -1 when the message does not parse that far. */
function answerEnd(wire: Buffer): number {
  try {
    let off = HEADER_SIZE;
    for (let i = wire.readUInt16BE(4); i > 0; i--) off = readName(wire, off)[1] + 4;
    for (let i = wire.readUInt16BE(6); i > 0; i--) {
      const at = readName(wire, off)[1];
      off = at + 10 + wire.readUInt16BE(at + 8);
    }
    return off <= wire.length ? off : -1;
  } catch {
    return -1;
  }
}
