import { RCODE } from '../../server/wire/constants.js';
import { decodeMessage, type Message } from '../../server/wire/message.js';
import { withQuestion } from '../../server/requery.js';
import type { Next, Plugin, Query, Reply } from '../../server/types.js';
import { logger } from '../../pkg/log.js';
import type { Question, ResponseRule, Rule } from './rules.js';

const log = logger('plugin/rewrite');

/**
 * Mapped responses per source (a Message or wire buffer from later plugins) and original question, so an
 * unchanged source maps to the same Message object and the server's per-object encoding memo keeps working.
 */
type Memo = WeakMap<object, Map<string, Message>>;

/** The rules of every `rewrite` line of a block, applied in order (CoreDNS builds one handler for them all). */
export class Rewrite implements Plugin {
  readonly name = 'rewrite';
  private memo: Memo = new WeakMap();

  constructor(readonly rules: Rule[]) {}

  serve(q: Query, next: Next): Reply | Promise<Reply> {
    const cur: Question = { name: q.lname, type: q.type, class: q.class };
    const responseRules: ResponseRule[] = [];
    let matched = false;
    for (const rule of this.rules) {
      const rr = rule.apply(cur);
      if (!rr) continue;
      matched = true;
      responseRules.push(...rr);
      if (rule.mode === 'stop') break;
    }
    if (!matched) return next(q);
    let inner: Query = q;
    if (cur.name !== q.lname || cur.type !== q.type || cur.class !== q.class) {
      const rebuilt = rebuildQuery(q, cur);
      if (!rebuilt) return { rcode: RCODE.SERVFAIL };
      inner = rebuilt;
    }
    const key = `${q.lname}|${q.type}|${q.class}`;
    const r = next(inner);
    return r instanceof Promise ? r.then((x) => this.revert(q, key, x, responseRules)) : this.revert(q, key, r, responseRules);
  }

  /** Restores the original question and applies the response rules (last rule first, like CoreDNS). */
  private revert(q: Query, key: string, r: Reply, rules: ResponseRule[]): Reply {
    const src: Message | Buffer | undefined = r.msg ?? r.wire;
    if (!src) return r;
    let byQuestion = this.memo.get(src);
    const hit = byQuestion?.get(key);
    if (hit) return { rcode: r.rcode, msg: hit, plugin: r.plugin };
    let m: Message;
    try {
      m = r.msg ?? decodeMessage(r.wire!);
    } catch (e) {
      log.error(`undecodable response for ${q.name}: ${(e as Error).message}`);
      return { rcode: RCODE.SERVFAIL };
    }
    const map = (rrs: Message['answer']) => rrs.map((rr) => rules.reduceRight((x, rule) => rule(x), rr));
    const out: Message = {
      ...m, edns: null, question: { name: q.name, type: q.type, class: q.class },
      answer: map(m.answer), authority: map(m.authority), additional: map(m.additional),
    };
    if (!byQuestion) this.memo.set(src, (byQuestion = new Map()));
    byQuestion.set(key, out);
    return { rcode: r.rcode, msg: out, plugin: r.plugin };
  }
}

/** The query `next` sees, or undefined (logged) when the rewritten name cannot be encoded. */
function rebuildQuery(q: Query, cur: Question): Query | undefined {
  try {
    return withQuestion(q, cur);
  } catch (e) {
    log.error(`invalid name after rewrite: ${cur.name}: ${(e as Error).message}`);
    return undefined;
  }
}

/** Later `rewrite` lines of a block: their rules already run in the first instance. */
export class RewritePassThrough implements Plugin {
  readonly name = 'rewrite';
  serve(q: Query, next: Next): Reply | Promise<Reply> {
    return next(q);
  }
}
