import { renderReply, responseLimit } from '../../server/respond.js';
import type { Query, Reply } from '../../server/types.js';

/**
 * The bytes the server will send for `reply`, rendered at most once per query for the plugins that
 * need the final size or header flags (prometheus, log): CoreDNS's recorders see the written message,
 * and truncation, our OPT and the echoed question all change the size. The server renders again
 * after the chain; see the operational plugins' report for the core hook that would remove that.
 */
const memo = new WeakMap<Query, { reply: Reply; out: Buffer }>();

export function renderedResponse(q: Query, reply: Reply, ra: boolean): Buffer {
  const seen = memo.get(q);
  if (seen && seen.reply === reply) return seen.out;
  const out = renderReply(q, reply, responseLimit(q, q.proto), ra);
  memo.set(q, { reply, out });
  return out;
}

/** RA is set on a block's answers when it can recurse: the server decides that by the `forward` plugin. */
export function blockRecurses(block: { name: string }[]): boolean {
  return block.some((d) => d.name === 'forward');
}
