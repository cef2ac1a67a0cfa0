import { renderReply, responseLimit } from '../../server/respond.js';
import type { Query, Reply } from '../../server/types.js';

/**
 * The bytes the server will send for `reply`, rendered once per query for the plugins that need the
 * final size or header flags (prometheus, log): CoreDNS's recorders see the written message, and
 * truncation, our OPT and the echoed question all change the size. The server renders again after the
 * chain; see the operational plugins' report for the core hook that would share this render.
 *
 * A one-entry memo, not a WeakMap keyed by query: log and prometheus ask for the same query back to
 * back, and a WeakMap entry per short-lived query costs more than the render itself (measured ~7 µs).
 */
let lastQuery: Query | undefined;
let lastReply: Reply | undefined;
let lastOut: Buffer | undefined;

export function renderedResponse(q: Query, reply: Reply, ra: boolean): Buffer {
  if (q === lastQuery && reply === lastReply) return lastOut!;
  const out = renderReply(q, reply, responseLimit(q, q.proto), ra);
  lastQuery = q;
  lastReply = reply;
  lastOut = out;
  return out;
}

/** RA is set on a block's answers when it can recurse: the server decides that by the `forward` plugin. */
export function blockRecurses(block: { name: string }[]): boolean {
  return block.some((d) => d.name === 'forward');
}
