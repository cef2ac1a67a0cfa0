import { CLASS, classMnemonic, className, RCODE, TYPE, typeName } from '../../server/wire/constants.js';
import type { Message, RR } from '../../server/wire/message.js';
import { PluginError, ReentryError, type Next, type Plugin, type Query, type Reply, type SharedServices } from '../../server/types.js';
import type { Fall } from '../../pkg/fall.js';
import { client, metricSet } from '../../pkg/metrics.js';
import { matchZone } from '../../pkg/zone.js';
import { parseRecord } from '../file/zonefile.js';
import { GoMethod, GoStruct, TemplateExecError, type GoTemplate, type GoValue } from './gotemplate.js';

const SECTION_LABELS = ['server', 'zone', 'view', 'class', 'type', 'section', 'template'];

export const templateMetrics = metricSet((registry) => ({
  matches: new client.Counter({
    name: 'coredns_template_matches_total', help: 'Counter of template regex matches.',
    labelNames: ['server', 'zone', 'view', 'class', 'type'], registers: [registry],
  }),
  failures: new client.Counter({
    name: 'coredns_template_template_failures_total', help: 'Counter of go template failures.',
    labelNames: SECTION_LABELS, registers: [registry],
  }),
  rrFailures: new client.Counter({
    name: 'coredns_template_rr_failures_total', help: 'Counter of mis-templated RRs.',
    labelNames: SECTION_LABELS, registers: [registry],
  }),
}));
type Metrics = ReturnType<typeof templateMetrics>;

/** One `template CLASS TYPE [ZONE...] { ... }` line with its block. */
export interface TemplateRule {
  zones: string[];
  qclass: number;
  qtype: number;
  regex: RegExp[];
  /** The `match` lines as written (`.Regex` in templates). */
  regexText: string[];
  answer: GoTemplate[];
  additional: GoTemplate[];
  authority: GoTemplate[];
  rcode: number;
  /** `ederror`: an Extended DNS Error on the replies (RFC 8914). */
  ede?: { code: number; text?: string };
  fall: Fall;
}

/** miekg/dns ClassToString (what `.Class` shows). */
/** miekg/dns TypeToString: types it has no mnemonic for show as the empty string. */
const typeText = (t: number) => (/^TYPE\d+$/.test(typeName(t)) ? '' : typeName(t));

/** dns.Question's String(): `;name.<TAB>IN<TAB> A`. */
const questionString = (q: Query) => `;${q.name}\t${className(q.class)}\t ${typeName(q.type)}`;

type Matched = { zone: string; regex: number; m: RegExpExecArray } | 'pass' | 'servfail';
type Child = { inc(): void };

/** Matches counters bound to their labels, kept per label set: prom-client's label hashing is slow per query. */
const MAX_CELLS = 1000;

/**
 * CoreDNS's template: when the question's zone, class and type fit and a `match` regex matches the
 * lower-case name, the reply is built from the answer/additional/authority templates with `rcode`;
 * a miss passes on only with `fallthrough` (else SERVFAIL). Several `template` lines in a block are
 * several instances in Corefile order, which is what CoreDNS's single handler looping over them does.
 */
export class Template implements Plugin {
  readonly name = 'template';
  private readonly cells = new Map<string, Child>();
  private readonly builds: boolean;

  constructor(
    private readonly rule: TemplateRule,
    private readonly metrics: Metrics,
    private readonly shared: Pick<SharedServices, 'resolve'>,
    private readonly view = '',
  ) {
    this.builds = rule.answer.length + rule.additional.length + rule.authority.length > 0;
  }

  serve(q: Query, next: Next): Reply | Promise<Reply> {
    const m = this.match(q);
    if (m === 'pass') return next(q);
    if (m === 'servfail') return { rcode: RCODE.SERVFAIL };
    const rule = this.rule;
    const cls = classMnemonic(q.class !== CLASS.ANY ? q.class : rule.qclass) ?? '';
    const type = typeText(q.type !== TYPE.ANY ? q.type : rule.qtype);
    this.matched(q.server, m.zone, cls, type).inc();
    if (rule.rcode === RCODE.SERVFAIL) return { rcode: RCODE.SERVFAIL };
    let answer: RR[] = [], additional: RR[] = [], authority: RR[] = [];
    if (this.builds) {
      const data = this.data(q, m.zone, cls, type, rule.regexText[m.regex]!, m.m);
      const labels = { server: q.server, zone: m.zone, view: this.view, class: cls, type };
      const build = (section: string, list: GoTemplate[]) => list.map((t) => this.record(t, data, { ...labels, section }));
      answer = build('answer', rule.answer);
      additional = build('additional', rule.additional);
      authority = build('authority', rule.authority);
    }
    const msg: Message = {
      id: q.id, aa: true, rcode: rule.rcode, question: { name: q.name, type: q.type, class: q.class }, answer, authority, additional,
    };
    const reply: Reply = { rcode: rule.rcode, msg, plugin: this.name, ede: rule.ede?.code, edeText: rule.ede?.text };
    const chase = (q.type === TYPE.A || q.type === TYPE.AAAA) && answer.some((rr) => rr.type === TYPE.CNAME);
    return chase ? this.chase(q, reply) : reply;
  }

  private matched(server: string, zone: string, cls: string, type: string): Child {
    const key = `${server}|${zone}|${cls}|${type}`;
    let cell = this.cells.get(key);
    if (!cell) {
      if (this.cells.size >= MAX_CELLS) this.cells.clear();
      this.cells.set(key, (cell = this.metrics.matches.labels({ server, zone, view: this.view, class: cls, type })));
    }
    return cell;
  }

  private match(q: Query): Matched {
    const rule = this.rule;
    const zone = matchZone(q.lname, rule.zones);
    if (zone === undefined) return 'pass';
    if (rule.qclass !== CLASS.ANY && q.class !== CLASS.ANY && q.class !== rule.qclass) return 'pass';
    if (rule.qtype !== TYPE.ANY && q.type !== TYPE.ANY && q.type !== rule.qtype) return 'pass';
    for (let i = 0; i < rule.regex.length; i++) {
      const m = rule.regex[i]!.exec(q.lname);
      if (m) return { zone, regex: i, m };
    }
    return rule.fall.through(q.lname) ? 'pass' : 'servfail';
  }

  /** CoreDNS's templateData for one matched query. */
  private data(q: Query, zone: string, cls: string, type: string, regex: string, m: RegExpExecArray): GoStruct {
    const match = [...m].map((s) => s ?? '');
    const group = new Map<string, GoValue>(match.map((s, i) => [String(i), s]));
    for (const [k, v] of Object.entries(m.groups ?? {})) group.set(k, v ?? '');
    const question = new GoStruct('*dns.Question', { Name: q.name, Qtype: q.type, Qclass: q.class }, () => questionString(q));
    const message = new GoStruct('*dns.Msg', {
      Id: q.id, Opcode: q.opcode, RecursionDesired: q.rd, CheckingDisabled: q.cd,
      Question: [new GoStruct('dns.Question', { Name: q.name, Qtype: q.type, Qclass: q.class })],
    }, () => { throw new TemplateExecError('printing .Message whole is not supported by clusterdns (use its fields)'); });
    return new GoStruct('*template.templateData', {
      Zone: zone, Name: q.lname, Regex: regex, Match: match, Group: group,
      Class: cls, Type: type,
      Message: message, Question: question,
      Remote: q.remoteAddress.replace(/^::ffff:(?=\d+\.)/, ''),
      Var: null,
      // No metadata plugin here: every name is unset, which CoreDNS's .Meta shows as "".
      Meta: new GoMethod('Meta', 1, () => ''),
    });
  }

  /** Executes one template and reads its output as a record; failures are counted and answer SERVFAIL. */
  private record(t: GoTemplate, data: GoStruct, labels: Record<string, string>): RR {
    const l = { ...labels, template: t.toString() };
    let text: string;
    try {
      text = t.execute(data);
    } catch (e) {
      this.metrics.failures.inc(l);
      throw new PluginError(this.name, (e as Error).message);
    }
    try {
      return parseRecord(text, t.name);
    } catch (e) {
      this.metrics.rrFailures.inc(l);
      throw new PluginError(this.name, (e as Error).message);
    }
  }

  /**
   * A/AAAA questions: the target of each templated CNAME is resolved through the server (CoreDNS's
   * upstream) and its answer follows the CNAME, TC carried over; a failed lookup leaves the CNAME alone.
   */
  private async chase(q: Query, reply: Reply): Promise<Reply> {
    const msg = reply.msg!;
    const answer: RR[] = [];
    for (const rr of msg.answer) {
      answer.push(rr);
      if (rr.type !== TYPE.CNAME) continue;
      try {
        const up = await this.shared.resolve({ name: rr.data as string, type: q.type, server: q.server }, q);
        msg.tc = up.tc;
        answer.push(...up.answer);
      } catch (e) {
        if (e instanceof ReentryError) throw e;
      }
    }
    msg.answer = answer;
    return reply;
  }
}
