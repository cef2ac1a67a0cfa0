import { classNumber, rcodeNumber, TYPE, typeByMnemonic } from '../../server/wire/constants.js';
import type { MxData, SoaData, SrvData } from '../../server/wire/message.js';
import { fqdn } from '../../pkg/zone.js';
import { newEdns0Rule } from './edns0.js';
import type { CnameRule, Question, RcodeRule, RecordRule, ResponseRule, Rule } from './types.js';

type Rewriter = (s: string) => string;

const MAX_REGEXP_LEN = 10_000;

function compile(pattern: string, what: string): RegExp {
  if (pattern.length > MAX_REGEXP_LEN) throw new Error(`regex pattern too long: ${pattern.length} > ${MAX_REGEXP_LEN}`);
  try {
    // Go's RE2 and JavaScript agree on the syntax people use in rewrite rules (groups, classes, anchors).
    return new RegExp(pattern);
  } catch {
    throw new Error(`invalid regex ${what}pattern: ${pattern}`);
  }
}

function groupCount(re: RegExp): number {
  return new RegExp(re.source + '|').exec('')!.length - 1;
}

function checkGroups(re: RegExp, to: string): void {
  let used = 0;
  for (let i = 0; i <= 100; i++) if (to.includes(`{${i}}`)) used++;
  if (used > groupCount(re)) {
    throw new Error(`the rewrite regex pattern (${to}) uses more subexpressions than its corresponding matching regex pattern (${re.source})`);
  }
}

function substitute(re: RegExp, to: string, src: string): string | undefined {
  const m = re.exec(src);
  if (!m) return undefined;
  let s = to;
  m.forEach((g, i) => { s = s.split(`{${i}}`).join(g ?? ''); });
  return s;
}

const regexRewriter = (re: RegExp, to: string): Rewriter => (s) => substitute(re, to, s) ?? s;

/** Maps a name and its subdomains: `orig` -> `repl`, `x.orig` -> `x.repl` (CoreDNS's remapStringRewriter). */
const remapRewriter = (orig: string, repl: string): Rewriter => (s) => {
  const l = s.toLowerCase();
  if (l === orig) return repl;
  const i = l.length - orig.length;
  if (i > 0 && l[i - 1] === '.' && l.endsWith(orig)) return s.slice(0, i) + repl;
  return s;
};

const suffixRewriter = (suffix: string, repl: string): Rewriter => (s) =>
  s.toLowerCase().endsWith(suffix) ? s.slice(0, s.length - suffix.length) + repl : s;

const nameRule = (rw: Rewriter): RecordRule => (rr) => {
  const name = rw(rr.name);
  return name === rr.name ? rr : { ...rr, name };
};

/** The names CoreDNS rewrites in `answer value`: targets of CNAME, NS, PTR, MX, SRV and the SOA mname. */
const valueRule = (rw: Rewriter): RecordRule => (rr) => {
  switch (rr.type) {
    case TYPE.CNAME: case TYPE.NS: case TYPE.PTR: {
      const v = rw(rr.data as string);
      return v === rr.data ? rr : { ...rr, data: v };
    }
    case TYPE.MX: {
      const d = rr.data as MxData;
      const v = rw(d.exchange);
      return v === d.exchange ? rr : { ...rr, data: { ...d, exchange: v } };
    }
    case TYPE.SRV: {
      const d = rr.data as SrvData;
      const v = rw(d.target);
      return v === d.target ? rr : { ...rr, data: { ...d, target: v } };
    }
    case TYPE.SOA: {
      const d = rr.data as SoaData;
      const v = rw(d.mname);
      return v === d.mname ? rr : { ...rr, data: { ...d, mname: v } };
    }
    default:
      return rr;
  }
};

type Match = 'exact' | 'prefix' | 'suffix' | 'substring' | 'regex';
const MATCHES = new Set<string>(['exact', 'prefix', 'suffix', 'substring', 'regex']);

/** `answer auto | answer name FROM TO | answer value FROM TO`, repeated. */
function parseAnswers(match: string, args: string[]): { auto: boolean; rules: RecordRule[] } {
  const rules: RecordRule[] = [];
  let auto = false, nameRules = 0;
  if (args.length < 2) throw new Error(`invalid arguments for ${match} rule`);
  for (let i = 0; i < args.length;) {
    if (args[i] !== 'answer') throw new Error(`unexpected '${args[i]}' for ${match} rule (want answer auto|name|value)`);
    const kind = args[i + 1];
    if (kind === undefined) throw new Error(`type missing for answer rule for ${match} rule`);
    i += 2;
    if (kind === 'auto') {
      auto = true;
      continue;
    }
    if (kind !== 'name' && kind !== 'value') throw new Error(`invalid type "${kind}" for answer rule for ${match} rule`);
    if (args.length - i < 2) throw new Error(`${kind} answer rule for ${match} rule: 2 arguments required`);
    const re = compile(args[i]!, '');
    const to = fqdn(args[i + 1]!);
    checkGroups(re, to);
    rules.push(kind === 'name' ? nameRule(regexRewriter(re, to)) : valueRule(regexRewriter(re, to)));
    if (kind === 'name') nameRules++;
    i += 2;
  }
  if (auto && nameRules > 0) throw new Error('auto name answer rule cannot be combined with explicit name answer rules');
  return { auto, rules };
}

function newNameRule(mode: Rule['mode'], args: string[]): Rule {
  if (args.length < 2) throw new Error('too few arguments for a name rule');
  let match: Match = 'exact';
  let from: string, to: string, rest: string[];
  if (args.length === 2) {
    [from, to] = [fqdn(args[0]!), fqdn(args[1]!)];
    rest = [];
  } else {
    const m = args[0]!.toLowerCase();
    if (!MATCHES.has(m)) throw new Error(`name rule supports only exact, prefix, suffix, substring, and regex name matching, received: ${args[0]}`);
    match = m as Match;
    from = match === 'regex' ? args[1]! : fqdn(args[1]!);
    to = fqdn(args[2]!);
    rest = args.slice(3);
  }
  const { auto, rules: statics } = rest.length ? parseAnswers(match, rest) : { auto: false, rules: [] };
  const remap = (orig: string, cur: string): ResponseRule[] => [nameRule(remapRewriter(orig, cur)), valueRule(remapRewriter(orig, cur))];
  // CoreDNS always reverts an exact rewrite; the other kinds only with `answer auto`.
  const responses = (q: Question, before: string): ResponseRule[] =>
    (match === 'exact' || auto) ? [...remap(q.name, before), ...statics] : statics;
  let rewrite: (name: string) => string | undefined;
  switch (match) {
    case 'exact':
      rewrite = (n) => (n === from ? to : undefined);
      break;
    case 'prefix':
      rewrite = (n) => (n.startsWith(from) ? to + n.slice(from.length) : undefined);
      break;
    case 'suffix': {
      rewrite = (n) => (n.endsWith(from) ? n.slice(0, n.length - from.length) + to : undefined);
      // For suffixes the reverse mapping is simply the suffixes swapped.
      const back = auto ? [nameRule(suffixRewriter(to, from)), valueRule(suffixRewriter(to, from))] : [];
      return {
        mode,
        apply(q) {
          const n = rewrite(q.name);
          if (n === undefined) return null;
          q.name = n;
          return [...back, ...statics];
        },
      };
    }
    case 'substring':
      rewrite = (n) => (n.includes(from) ? n.split(from).join(to) : undefined);
      break;
    case 'regex': {
      const re = compile(from, 'matching ');
      checkGroups(re, to);
      rewrite = (n) => substitute(re, to, n);
      break;
    }
  }
  return {
    mode,
    apply(q) {
      const before = q.name;
      const n = rewrite(before);
      if (n === undefined) return null;
      q.name = n.toLowerCase();
      return responses(q, before);
    },
  };
}

function newTypeRule(mode: Rule['mode'], args: string[]): Rule {
  const [from, to] = args.map((a) => {
    const t = typeByMnemonic(a.toUpperCase());
    if (t === undefined) throw new Error(`invalid type "${a.toUpperCase()}"`);
    return t;
  }) as [number, number];
  return { mode, apply: (q) => (q.type === from ? ((q.type = to), []) : null) };
}

function newClassRule(mode: Rule['mode'], args: string[]): Rule {
  const [from, to] = args.map((a) => {
    const c = classNumber(a.toUpperCase());
    if (c === undefined) throw new Error(`invalid class "${a.toUpperCase()}"`);
    return c;
  }) as [number, number];
  return { mode, apply: (q) => (q.class === from ? ((q.class = to), []) : null) };
}

/** The question-name test of ttl and rcode rules: MATCH (exact, prefix, suffix, substring, regex) on NAME. */
function nameTest(rule: string, match: string, pattern: string): (n: string) => boolean {
  const m = match.toLowerCase();
  if (!MATCHES.has(m)) throw new Error(`${rule} rule supports only exact, prefix, suffix, substring, and regex name matching`);
  if (m === 'regex') {
    const re = compile(pattern, 'matching ');
    return (n) => re.test(n);
  }
  const s = fqdn(pattern);
  return m === 'exact' ? (n) => n === s : m === 'prefix' ? (n) => n.startsWith(s) : m === 'suffix' ? (n) => n.endsWith(s) : (n) => n.includes(s);
}

/** `N`, `MIN-MAX`, `-MAX`, `MIN-` (CoreDNS's ttl rule range). */
function parseTTLRange(v: string): [number, number] | undefined {
  const num = (s: string) => (/^\d+$/.test(s) && Number(s) <= 0xffffffff ? Number(s) : undefined);
  const parts = v.split('-');
  if (parts.length === 1) {
    const n = num(v);
    return n === undefined ? undefined : [n, n];
  }
  if (parts.length !== 2 || (parts[0] === '' && parts[1] === '')) return undefined;
  const min = parts[0] === '' ? 0 : num(parts[0]!);
  const max = parts[1] === '' ? 2147483647 : num(parts[1]!);
  if (min === undefined || max === undefined || min > max) return undefined;
  return [min, max];
}

function newTTLRule(mode: Rule['mode'], args: string[]): Rule {
  if (args.length < 2) throw new Error(`too few (${args.length}) arguments for a ttl rule`);
  if (args.length > 3) throw new Error(`too many (${args.length}) arguments for a ttl rule`);
  const range = parseTTLRange(args[args.length - 1]!);
  if (!range) throw new Error(`invalid TTL '${args[args.length - 1]}' for a ttl rule`);
  const [min, max] = range;
  const test = nameTest('ttl', args.length === 3 ? args[0]! : 'exact', args[args.length - 2]!);
  const clamp: RecordRule = (rr) => {
    const ttl = rr.ttl < min ? min : rr.ttl > max ? max : rr.ttl;
    return ttl === rr.ttl ? rr : { ...rr, ttl };
  };
  return { mode, apply: (q) => (test(q.name) ? [clamp] : null) };
}

/** An rcode by number (0-23) or by name, as CoreDNS's isValidRCode takes it. */
function parseRcode(v: string): number | undefined {
  if (/^\d+$/.test(v)) return Number(v) <= 23 ? Number(v) : undefined;
  return rcodeNumber(v.toUpperCase());
}

/** `rcode [MATCH] NAME FROM TO`: responses to matching questions with rcode FROM get TO. */
function newRcodeRule(mode: Rule['mode'], args: string[]): Rule {
  if (args.length < 3) throw new Error(`too few (${args.length}) arguments for a rcode rule`);
  if (args.length > 4) throw new Error(`too many (${args.length}) arguments for a rcode rule`);
  const [fromText, toText] = args.slice(-2) as [string, string];
  const from = parseRcode(fromText);
  if (from === undefined) throw new Error(`invalid matching RCODE '${fromText}' for a rcode rule`);
  const to = parseRcode(toText);
  if (to === undefined) throw new Error(`invalid replacement RCODE '${toText}' for a rcode rule`);
  const test = nameTest('rcode', args.length === 4 ? args[0]! : 'exact', args[args.length - 3]!);
  const rule: RcodeRule = { rcode: { from, to } };
  return { mode, apply: (q) => (test(q.name) ? [rule] : null) };
}

/**
 * `cname [MATCH] FROM TO`: CNAME targets of the response matching FROM become TO, and TO is resolved again
 * through the server for the question's type (CoreDNS's cnameTargetRule). It matches every question.
 */
function newCnameRule(mode: Rule['mode'], args: string[]): Rule {
  if (args.length < 2) throw new Error(`too few (${args.length}) arguments for a cname rule`);
  if (args.length > 3) throw new Error(`too many (${args.length}) arguments for a cname rule`);
  const match = args.length === 3 ? args[0]!.toLowerCase() : 'exact';
  if (!MATCHES.has(match)) throw new Error(`unknown cname rewrite type: ${match}`);
  let [from, to] = args.slice(-2).map((a) => a.toLowerCase()) as [string, string];
  let target: CnameRule['cname'];
  switch (match) {
    case 'exact':
      [from, to] = [fqdn(from), fqdn(to)];
      target = (t) => (t === from ? to : undefined);
      break;
    case 'prefix':
      target = (t) => (t.startsWith(from) ? to + t.slice(from.length) : undefined);
      break;
    case 'suffix':
      target = (t) => (t.endsWith(from) ? t.slice(0, t.length - from.length) + to : undefined);
      break;
    case 'substring':
      target = (t) => (t.includes(from) ? t.split(from).join(to) : undefined);
      break;
    default: {
      const re = compile(from, 'cname rewrite ');
      target = (t) => substitute(re, to, t);
    }
  }
  const rule: CnameRule = { cname: (t) => target(t.toLowerCase()) };
  return { mode, apply: () => [rule] };
}

/** Parses one `rewrite` line (CoreDNS's newRule): `[continue|stop] FIELD ...`. */
export function parseRule(args: string[]): Rule {
  if (!args.length) throw new Error('no rule type specified for rewrite');
  let mode: Rule['mode'] = 'stop';
  let rest = args;
  const first = args[0]!.toLowerCase();
  if (first === 'continue' || first === 'stop') {
    mode = first;
    if (args.length < 2) throw new Error(`${first} rule must begin with a rule type`);
    rest = args.slice(1);
  }
  const field = rest[0]!.toLowerCase();
  const fieldArgs = rest.slice(1);
  switch (field) {
    case 'answer':
      throw new Error('response rewrites must begin with a name rule');
    case 'name':
      return newNameRule(mode, fieldArgs);
    case 'type':
      if (fieldArgs.length !== 2) throw new Error('type rules must have exactly two arguments');
      return newTypeRule(mode, fieldArgs);
    case 'class':
      if (fieldArgs.length !== 2) throw new Error('class rules must have exactly two arguments');
      return newClassRule(mode, fieldArgs);
    case 'ttl':
      return newTTLRule(mode, fieldArgs);
    case 'rcode':
      return newRcodeRule(mode, fieldArgs);
    case 'cname':
      return newCnameRule(mode, fieldArgs);
    case 'edns0':
      return newEdns0Rule(mode, fieldArgs);
    default:
      throw new Error(`invalid rule type "${rest[0]}"`);
  }
}
