import { RCODE, TYPE } from '../../server/wire/constants.js';
import { decodeMessage, type Message } from '../../server/wire/message.js';
import { answerMemo, messageBytes } from '../../server/memo.js';
import { withEdnsOptions, withQuestion } from '../../server/requery.js';
import { ReentryError, type Next, type Plugin, type Query, type Reply, type SharedServices } from '../../server/types.js';
import { logger } from '../../pkg/log.js';
import { encodeOptions } from './edns0.js';
import type { CnameRule, Question, RecordRule, ResponseRule, Rule } from './types.js';

const log = logger('plugin/rewrite');

/**
 * Bounds of the memo of mapped responses, per source (a Message or wire buffer from later plugins) and
 * original question, which lets an unchanged source map to the same Message object so the server's
 * per-object encoding memo keeps working. One source can stand for any number of asked names (a regex
 * rule mapping many names onto one cluster name), so the memo is bounded as a whole, not per source.
 */
export const MEMO_ENTRIES = 4096;
export const MEMO_BYTES = 8 << 20;

/** The rules of every `rewrite` line of a block, applied in order (CoreDNS builds one handler for them all). */
export class Rewrite implements Plugin {
  readonly name = 'rewrite';
  private readonly memo = answerMemo<Message>(MEMO_ENTRIES, MEMO_BYTES, messageBytes);
  /** Identity of each source object in memo keys; an entry dies with its source. */
  private readonly sources = new WeakMap<object, number>();
  private lastSource = 0;

  constructor(readonly rules: Rule[], private readonly shared: SharedServices) {}

  /** Mapped responses memoised now (tests: the memo stays bounded). */
  get memoised(): number {
    return this.memo.size;
  }

  serve(q: Query, next: Next): Reply | Promise<Reply> {
    const cur: Question = { name: q.lname, type: q.type, class: q.class };
    const responseRules: ResponseRule[] = [];
    let matched = false;
    for (const rule of this.rules) {
      const rr = rule.apply(cur, q);
      if (!rr) continue;
      matched = true;
      responseRules.push(...rr);
      if (rule.mode === 'stop') break;
    }
    if (!matched) return next(q);
    let inner: Query = q;
    if (cur.name !== q.lname || cur.type !== q.type || cur.class !== q.class || cur.options) {
      const rebuilt = rebuildQuery(q, cur);
      if (!rebuilt) return { rcode: RCODE.SERVFAIL };
      inner = rebuilt;
    }
    const key = `${q.lname}|${q.type}|${q.class}`;
    const r = next(inner);
    const cnames = responseRules.filter((x): x is CnameRule => 'cname' in x);
    if (cnames.length) return (async () => this.chase(q, this.revert(q, key, await r, responseRules), cnames))();
    return r instanceof Promise ? r.then((x) => this.revert(q, key, x, responseRules)) : this.revert(q, key, r, responseRules);
  }

  /**
   * cname rules (CoreDNS's cnameTargetRuleWithReqState): the first CNAME of the answer whose target a rule
   * maps gets the new target, the records after it are replaced by the answer for the new target (resolved
   * through the server for the question's type), and TC comes from that answer.
   */
  private async chase(q: Query, r: Reply, rules: CnameRule[]): Promise<Reply> {
    const m = r.msg;
    if (!m) return r;
    for (let i = 0; i < m.answer.length; i++) {
      const rr = m.answer[i]!;
      if (rr.type !== TYPE.CNAME) continue;
      // Last rule first, as CoreDNS applies response rules.
      let to: string | undefined;
      for (let j = rules.length - 1; j >= 0 && to === undefined; j--) to = rules[j]!.cname(rr.data as string);
      if (to === undefined) continue;
      let up: Message;
      try {
        up = await this.shared.resolve({ name: to, type: q.type, server: q.server }, q);
      } catch (e) {
        if (e instanceof ReentryError) throw e;
        log.error(`upstream lookup failed: ${(e as Error).message}`);
        return r;
      }
      const answer = [...m.answer.slice(0, i).filter((x) => x.type === TYPE.CNAME), { ...rr, data: to }, ...up.answer];
      return { rcode: r.rcode, msg: { ...m, answer, tc: !!up.tc }, plugin: r.plugin };
    }
    return r;
  }

  /** Restores the original question and applies the response rules (last rule first, like CoreDNS). */
  private revert(q: Query, key: string, r: Reply, rules: ResponseRule[]): Reply {
    const src: Message | Buffer | undefined = r.msg ?? r.wire;
    if (!src) return r;
    let id = this.sources.get(src);
    if (id === undefined) this.sources.set(src, (id = ++this.lastSource));
    const memoKey = `${id}|${key}`;
    const hit = this.memo.get(memoKey);
    if (hit) return { rcode: hit.rcode, msg: hit, plugin: r.plugin };
    let m: Message;
    try {
      m = r.msg ?? decodeMessage(r.wire!);
    } catch (e) {
      log.error(`undecodable response for ${q.name}: ${(e as Error).message}`);
      return { rcode: RCODE.SERVFAIL };
    }
    const records = rules.filter((x): x is RecordRule => typeof x === 'function');
    const map = (rrs: Message['answer']) => rrs.map((rr) => records.reduceRight((x, rule) => rule(x), rr));
    let rcode = m.rcode;
    for (let i = rules.length - 1; i >= 0; i--) {
      const rule = rules[i]!;
      if ('rcode' in rule && rcode === rule.rcode.from) rcode = rule.rcode.to;
    }
    const out: Message = {
      ...m, rcode, edns: null, question: { name: q.name, type: q.type, class: q.class },
      answer: map(m.answer), authority: map(m.authority), additional: map(m.additional),
    };
    this.memo.set(memoKey, out);
    return { rcode, msg: out, plugin: r.plugin };
  }
}

/** The query `next` sees, or undefined (logged) when the rewritten name cannot be encoded. */
function rebuildQuery(q: Query, cur: Question): Query | undefined {
  try {
    const asked = cur.name !== q.lname || cur.type !== q.type || cur.class !== q.class ? withQuestion(q, cur) : q;
    return cur.options ? withEdnsOptions(asked, encodeOptions(cur.options)) : asked;
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
