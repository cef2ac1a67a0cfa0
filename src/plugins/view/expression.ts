/**
 * The part of expr-lang (github.com/expr-lang/expr) that CoreDNS's `view` expressions use, over CoreDNS's
 * plugin/pkg/expression environment. An expression is parsed and type-checked once at setup, like
 * expr.Compile with expr.Env, and compiled to nested closures: a query runs plain function calls, no
 * tree walk and no per-query allocation for the common functions (name, type, client_ip, incidr).
 */
import { goRegexp } from '../../pkg/goregexp.js';
import { parseCidr, writeIpv4, writeIpv6 } from '../../pkg/ip.js';
import type { Peer } from '../../server/listeners.js';
import type { Query } from '../../server/types.js';
import { className, typeName } from '../../server/wire/constants.js';

export type Value = string | number | boolean | null | readonly Value[];
/** What one compiled expression gives for a query; a throw is an evaluation error (the view does not match). */
export type Program = (q: Query, peer: Peer) => Value;

export class ExprError extends Error {}

type Kind = 'string' | 'int' | 'float' | 'bool' | 'array' | 'nil' | 'any';

interface Node {
  kind: Kind;
  run: Program;
  /** Set when the value is known at setup (literals and what only depends on them). */
  constant?: { value: Value };
}

// ---------------------------------------------------------------- lexer

interface Tok { t: 'num' | 'str' | 'id' | 'op' | 'eof'; v: string; num?: number; pos: number }

const OPS = ['**', '==', '!=', '<=', '>=', '&&', '||', '??', '..', '!', '<', '>', '+', '-', '*', '/', '%', '^', '(', ')', '[', ']', ',', '?', ':', '.', '{', '}', '|'];

function lex(src: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (/\s/.test(c)) { i++; continue; }
    const start = i;
    if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(src[i + 1] ?? ''))) {
      const m = /^(0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|[0-9_]*\.?[0-9_]+(?:[eE][+-]?[0-9]+)?)/.exec(src.slice(i))!;
      let text = m[0];
      // `1..5` is a range, not the float `1.`.
      if (text.endsWith('.') && src[i + text.length] === '.') text = text.slice(0, -1);
      const clean = text.replace(/_/g, '');
      const num = /^0[oO]/.test(clean) ? parseInt(clean.slice(2), 8) : /^0[bB]/.test(clean) ? parseInt(clean.slice(2), 2) : Number(clean);
      if (Number.isNaN(num)) throw new ExprError(`invalid number ${text} (1:${start + 1})`);
      out.push({ t: 'num', v: text, num, pos: start });
      i += text.length;
      continue;
    }
    if (c === '"' || c === "'" || c === '`') {
      const [value, used] = readString(src, i);
      out.push({ t: 'str', v: value, pos: start });
      i += used;
      continue;
    }
    if (/[A-Za-z_$]/.test(c)) {
      const m = /^[A-Za-z_$][A-Za-z0-9_$]*/.exec(src.slice(i))!;
      out.push({ t: 'id', v: m[0], pos: start });
      i += m[0].length;
      continue;
    }
    const op = OPS.find((o) => src.startsWith(o, i));
    if (!op) throw new ExprError(`unrecognized character: U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')} '${c}' (1:${i + 1})`);
    out.push({ t: 'op', v: op, pos: start });
    i += op.length;
  }
  out.push({ t: 'eof', v: '', pos: src.length });
  return out;
}

const SIMPLE_ESCAPES: Record<string, string> = { a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\\': '\\', "'": "'", '"': '"' };

/** A quoted string at `i`: Go's escapes in '…' and "…", none in `…`. Returns the value and the characters used. */
function readString(src: string, i: number): [string, number] {
  const quote = src[i]!;
  let out = '';
  let j = i + 1;
  for (; j < src.length && src[j] !== quote; j++) {
    const c = src[j]!;
    if (c !== '\\' || quote === '`') { out += c; continue; }
    const e = src[++j];
    if (e !== undefined && e in SIMPLE_ESCAPES) { out += SIMPLE_ESCAPES[e]; continue; }
    const hex = e === 'x' ? 2 : e === 'u' ? 4 : e === 'U' ? 8 : 0;
    const digits = hex ? src.slice(j + 1, j + 1 + hex) : src.slice(j, j + 3);
    if (hex ? /^[0-9a-fA-F]+$/.test(digits) && digits.length === hex : /^[0-7]{3}$/.test(digits)) {
      out += String.fromCodePoint(parseInt(digits, hex ? 16 : 8));
      j += hex ? hex : 2;
      continue;
    }
    throw new ExprError(`invalid char escape (1:${j + 1})`);
  }
  if (j >= src.length) throw new ExprError(`literal not terminated (1:${src.length + 1})`);
  return [out, j - i + 1];
}

// ---------------------------------------------------------------- environment

const isNum = (k: Kind) => k === 'int' || k === 'float';
const loose = (k: Kind) => k === 'any';

interface Func {
  args: Kind[];
  result: Kind;
  /** Builds the call from its compiled arguments (constant ones can be prepared once). */
  make(args: Node[]): Program;
}

const ipScratch = new Uint8Array(16);

/**
 * Writes `ip` into ipScratch as Go's net.IP would hold it for Contains: 4 bytes for IPv4 and IPv4-mapped
 * IPv6, else 16. Returns the length, 0 when `ip` is not an address.
 */
function parseIpInto(ip: string): 0 | 4 | 16 {
  if (writeIpv4(ip, ipScratch, 0)) return 4;
  if (!ip.includes(':') || !writeIpv6(ip, ipScratch, 0)) return 0;
  for (let i = 0; i < 10; i++) if (ipScratch[i] !== 0) return 16;
  if (ipScratch[10] !== 0xff || ipScratch[11] !== 0xff) return 16;
  ipScratch.copyWithin(0, 12, 16);
  return 4;
}

interface Prefix { bytes: Uint8Array; ones: number }

function parsePrefix(cidr: string): Prefix | undefined {
  const p = parseCidr(cidr);
  if (!p) return undefined;
  const len = p.family === 4 ? 4 : 16;
  const bytes = new Uint8Array(len);
  let n = p.network;
  for (let i = len - 1; i >= 0; i--, n >>= 8n) bytes[i] = Number(n & 0xffn);
  return { bytes, ones: p.ones };
}

/** Go's (*net.IPNet).Contains on the address in ipScratch, `len` bytes long. */
function prefixHas(p: Prefix, len: number): boolean {
  if (len !== p.bytes.length) return false;
  const full = p.ones >> 3;
  for (let i = 0; i < full; i++) if (ipScratch[i] !== p.bytes[i]) return false;
  const rest = p.ones & 7;
  if (!rest) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (ipScratch[full]! & mask) === p.bytes[full];
}

function incidr(ip: string, p: Prefix | string): boolean {
  const prefix = typeof p === 'string' ? parsePrefix(p) : p;
  if (!prefix) throw new ExprError(`invalid CIDR address: ${p as string}`);
  const len = parseIpInto(ip);
  if (!len) throw new ExprError('first argument is not an IP address');
  return prefixHas(prefix, len);
}

const query = (result: Kind, get: Program): Func => ({ args: [], result, make: () => get });

/** CoreDNS's plugin/pkg/expression DefaultEnv, plus the expr-lang builtins a view can use. */
const FUNCS: Record<string, Func> = {
  name: query('string', (q) => q.lname),
  type: query('string', (q) => typeName(q.type)),
  class: query('string', (q) => className(q.class)),
  proto: query('string', (q) => q.proto),
  // The request's own length: a query is one message, so its length is what came in.
  size: query('int', (q) => q.raw.length),
  client_ip: query('string', (_q, p) => p.address),
  port: query('string', (_q, p) => String(p.port)),
  id: query('int', (q) => q.id),
  opcode: query('int', (q) => q.opcode),
  do: query('bool', (q) => q.edns?.do === true),
  // request.Size: 64 KiB over TCP, the advertised EDNS0 size (at least 512) over UDP, else 512.
  bufsize: query('int', (q) => (q.proto === 'tcp' ? 65535 : q.edns ? Math.max(512, q.edns.udpSize) : 512)),
  server_ip: query('string', (_q, p) => p.localAddress ?? ''),
  server_port: query('string', (_q, p) => String(p.localPort ?? '')),
  // No metadata plugin here: CoreDNS answers "" for a label nobody published.
  metadata: { args: ['string'], result: 'string', make: () => () => '' },
  incidr: {
    args: ['string', 'string'], result: 'bool',
    make([ip, cidr]) {
      if (cidr!.constant) {
        const text = cidr!.constant.value as string;
        const prefix = parsePrefix(text);
        if (!prefix) throw new ExprError(`incidr: invalid CIDR address: ${text}`);
        const ipRun = ip!.run;
        return (q, p) => incidr(ipRun(q, p) as string, prefix);
      }
      const [a, b] = [ip!.run, cidr!.run];
      return (q, p) => incidr(a(q, p) as string, b(q, p) as string);
    },
  },
  lower: { args: ['string'], result: 'string', make: ([s]) => (q, p) => (s!.run(q, p) as string).toLowerCase() },
  upper: { args: ['string'], result: 'string', make: ([s]) => (q, p) => (s!.run(q, p) as string).toUpperCase() },
  len: {
    args: ['any'], result: 'int',
    make([v]) {
      if (v!.kind !== 'string' && v!.kind !== 'array' && !loose(v!.kind)) throw new ExprError(`invalid argument for len (type ${v!.kind})`);
      const run = v!.run;
      return (q, p) => {
        const x = run(q, p);
        if (typeof x === 'string') return Buffer.byteLength(x);
        if (Array.isArray(x)) return x.length;
        throw new ExprError('invalid argument for len');
      };
    },
  },
};

// ---------------------------------------------------------------- parser + compiler

/** expr-lang's binary operators and precedences (parser/operator); comparisons and word operators share 20. */
const BINARY: Record<string, { prec: number; right?: boolean }> = {
  or: { prec: 10 }, '||': { prec: 10 }, and: { prec: 15 }, '&&': { prec: 15 },
  '==': { prec: 20 }, '!=': { prec: 20 }, '<': { prec: 20 }, '>': { prec: 20 }, '<=': { prec: 20 }, '>=': { prec: 20 },
  in: { prec: 20 }, matches: { prec: 20 }, contains: { prec: 20 }, startsWith: { prec: 20 }, endsWith: { prec: 20 },
  '+': { prec: 30 }, '-': { prec: 30 }, '*': { prec: 60 }, '/': { prec: 60 }, '%': { prec: 60 },
  '**': { prec: 100, right: true }, '^': { prec: 100, right: true }, '??': { prec: 500 },
};
const UNARY: Record<string, number> = { not: 50, '!': 50, '-': 90, '+': 90 };
const NEGATABLE = new Set(['in', 'matches', 'contains', 'startsWith', 'endsWith']);

const constant = (kind: Kind, value: Value): Node => ({ kind, run: () => value, constant: { value } });

function describe(tok: Tok): string {
  if (tok.t === 'eof') return 'EOF';
  if (tok.t === 'id') return `Identifier("${tok.v}")`;
  if (tok.t === 'num') return `Number("${tok.v}")`;
  if (tok.t === 'str') return `String("${tok.v}")`;
  return `Operator("${tok.v}")`;
}

/**
 * What the parser returns: the node, built only once the whole text has parsed, so a syntax error anywhere
 * is reported before a type error (expr-lang parses, then checks).
 */
type Later = () => Node;

class Parser {
  private i = 0;
  constructor(private readonly toks: Tok[]) {}

  private peek(): Tok { return this.toks[this.i]!; }
  private next(): Tok { return this.toks[this.i++]!; }
  private at(v: string): boolean { const t = this.peek(); return (t.t === 'op' || t.t === 'id') && t.v === v; }
  private unexpected(tok = this.peek()): ExprError { return new ExprError(`unexpected token ${describe(tok)} (1:${tok.pos + 1})`); }
  private expect(v: string): void { if (!this.at(v)) throw this.unexpected(); this.i++; }

  /** Comma-separated expressions up to and including `close` (call arguments, array items). */
  private list(close: string): Later[] {
    const items: Later[] = [];
    while (!this.at(close)) {
      items.push(this.expression(0));
      if (!this.at(close)) this.expect(',');
    }
    this.i++;
    return items;
  }

  parse(): Node {
    const n = this.expression(0);
    if (this.peek().t !== 'eof') throw this.unexpected();
    return n();
  }

  private expression(min: number): Later {
    let left = this.unary();
    for (;;) {
      const tok = this.peek();
      let op = tok.t === 'op' || tok.t === 'id' ? tok.v : '';
      let negate = false;
      // `not in`, `not matches`, ...: the word operator, negated.
      if (op === 'not' && NEGATABLE.has(this.toks[this.i + 1]?.v ?? '') && this.toks[this.i + 1]!.t === 'id') {
        negate = true;
        op = this.toks[this.i + 1]!.v;
      }
      const info = BINARY[op];
      if (!info || info.prec < min) break;
      this.i += negate ? 2 : 1;
      const right = this.expression(info.right ? info.prec : info.prec + 1);
      const l = left;
      left = negate ? () => not(binary(op, l(), right(), tok), tok) : () => binary(op, l(), right(), tok);
    }
    if (min === 0 && this.at('?')) {
      const tok = this.next();
      const then = this.expression(0);
      this.expect(':');
      const other = this.expression(0);
      const cond = left;
      left = () => ternary(cond(), then(), other(), tok);
    }
    return left;
  }

  private unary(): Later {
    const tok = this.peek();
    const prec = (tok.t === 'op' || tok.t === 'id') ? UNARY[tok.v] : undefined;
    if (prec === undefined) return this.primary();
    this.i++;
    const later = this.expression(prec);
    return () => {
      const operand = later();
      if (tok.v === 'not' || tok.v === '!') return not(operand, tok);
      if (!isNum(operand.kind) && !loose(operand.kind)) throw new ExprError(`invalid operation: ${tok.v} (mismatched type ${operand.kind}) (1:${tok.pos + 1})`);
      if (tok.v === '+') return operand;
      return fold({ kind: operand.kind, run: (q, p) => -(operand.run(q, p) as number) }, [operand]);
    };
  }

  private primary(): Later {
    const tok = this.next();
    switch (tok.t) {
      case 'num': return () => constant(/^0[xXoObB]|^[0-9_]+$/.test(tok.v) ? 'int' : 'float', tok.num!);
      case 'str': return () => constant('string', tok.v);
      case 'id': {
        if (tok.v === 'true' || tok.v === 'false') return () => constant('bool', tok.v === 'true');
        if (tok.v === 'nil') return () => constant('nil', null);
        const f = FUNCS[tok.v];
        if (!this.at('(')) {
          return () => { throw new ExprError(f ? `${tok.v} is a function: call it as ${tok.v}() (1:${tok.pos + 1})` : `unknown name ${tok.v} (1:${tok.pos + 1})`); };
        }
        this.i++;
        const args = this.list(')');
        return () => {
          if (!f) throw new ExprError(`unknown func ${tok.v} (1:${tok.pos + 1})`);
          return call(tok, f, args.map((a) => a()));
        };
      }
      case 'op':
        if (tok.v === '(') {
          const n = this.expression(0);
          this.expect(')');
          return n;
        }
        if (tok.v === '[') {
          const later = this.list(']');
          return () => {
            const items = later.map((l) => l());
            const runs = items.map((n) => n.run);
            return fold({ kind: 'array', run: (q, p) => runs.map((r) => r(q, p)) }, items);
          };
        }
    }
    throw this.unexpected(tok);
  }
}

/** A node whose inputs are all constants becomes a constant (so `matches` and `in` prepare once). */
function fold(n: Node, inputs: Node[]): Node {
  if (!inputs.every((x) => x.constant)) return n;
  const value = n.run(undefined as unknown as Query, undefined as unknown as Peer);
  return constant(n.kind, value);
}

function call(tok: Tok, f: Func, args: Node[]): Node {
  const name = tok.v;
  if (args.length < f.args.length) throw new ExprError(`not enough arguments to call ${name} (1:${tok.pos + 1})`);
  if (args.length > f.args.length) throw new ExprError(`too many arguments to call ${name} (1:${tok.pos + 1})`);
  args.forEach((a, i) => {
    const want = f.args[i]!;
    if (want !== 'any' && a.kind !== want && !loose(a.kind)) throw new ExprError(`cannot use ${a.kind} as argument (type ${want}) to call ${name} (1:${tok.pos + 1})`);
  });
  return { kind: f.result, run: f.make(args) };
}

function not(n: Node, tok: Tok): Node {
  if (n.kind !== 'bool' && !loose(n.kind)) throw new ExprError(`invalid operation: ${tok.v} (mismatched type ${n.kind}) (1:${tok.pos + 1})`);
  const run = n.run;
  return fold({ kind: 'bool', run: (q, p) => !bool(run(q, p)) }, [n]);
}

function ternary(c: Node, a: Node, b: Node, tok: Tok): Node {
  if (c.kind !== 'bool' && !loose(c.kind)) throw new ExprError(`non-bool expression (type ${c.kind}) used as condition (1:${tok.pos + 1})`);
  const [cr, ar, br] = [c.run, a.run, b.run];
  return { kind: a.kind === b.kind ? a.kind : 'any', run: (q, p) => (bool(cr(q, p)) ? ar(q, p) : br(q, p)) };
}

function bool(v: Value): boolean {
  if (typeof v !== 'boolean') throw new ExprError('not a bool');
  return v;
}

function equal(a: Value, b: Value): boolean {
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, i) => equal(x, (b as Value[])[i]!));
  }
  return a === b;
}

function binary(op: string, l: Node, r: Node, tok: Tok): Node {
  const mismatch = () => new ExprError(`invalid operation: ${op} (mismatched types ${l.kind} and ${r.kind}) (1:${tok.pos + 1})`);
  const lr = l.run;
  const rr = r.run;
  const either = loose(l.kind) || loose(r.kind);
  const numbers = isNum(l.kind) && isNum(r.kind);
  const strings = l.kind === 'string' && r.kind === 'string';
  switch (op) {
    case '||': case 'or': case '&&': case 'and': {
      if ((l.kind !== 'bool' && !loose(l.kind)) || (r.kind !== 'bool' && !loose(r.kind))) throw mismatch();
      const and = op === '&&' || op === 'and';
      return fold({ kind: 'bool', run: and ? (q, p) => bool(lr(q, p)) && bool(rr(q, p)) : (q, p) => bool(lr(q, p)) || bool(rr(q, p)) }, [l, r]);
    }
    case '==': case '!=': {
      if (!(either || numbers || l.kind === r.kind || l.kind === 'nil' || r.kind === 'nil')) throw mismatch();
      const eq = op === '==';
      return fold({ kind: 'bool', run: (q, p) => equal(lr(q, p), rr(q, p)) === eq }, [l, r]);
    }
    case '<': case '>': case '<=': case '>=': {
      if (!(either || numbers || strings)) throw mismatch();
      const cmp = { '<': (a: Value, b: Value) => a! < b!, '>': (a: Value, b: Value) => a! > b!, '<=': (a: Value, b: Value) => a! <= b!, '>=': (a: Value, b: Value) => a! >= b! }[op];
      return fold({
        kind: 'bool', run: (q, p) => {
          const a = lr(q, p);
          const b = rr(q, p);
          if (typeof a !== typeof b || (typeof a !== 'string' && typeof a !== 'number')) throw new ExprError(`invalid operation: ${op}`);
          return cmp(a, b);
        },
      }, [l, r]);
    }
    case 'in': {
      if (r.kind !== 'array' && !loose(r.kind)) throw mismatch();
      if (r.constant) {
        const items = r.constant.value as Value[];
        // A list of plain values (the usual `type() in ['A', 'AAAA']`): one Set lookup per query.
        if (items.every((x) => !Array.isArray(x))) {
          const set = new Set(items);
          return fold({ kind: 'bool', run: (q, p) => set.has(lr(q, p)) }, [l]);
        }
      }
      return fold({
        kind: 'bool', run: (q, p) => {
          const list = rr(q, p);
          if (!Array.isArray(list)) throw new ExprError('in: not an array');
          const x = lr(q, p);
          return list.some((y) => equal(x, y));
        },
      }, [l, r]);
    }
    case 'matches': {
      if (!(either || strings)) throw mismatch();
      if (r.constant) {
        const re = regexp(r.constant.value as string, tok);
        return fold({ kind: 'bool', run: (q, p) => re.test(str(lr(q, p))) }, [l]);
      }
      return fold({ kind: 'bool', run: (q, p) => regexp(str(rr(q, p)), tok).test(str(lr(q, p))) }, [l, r]);
    }
    case 'contains': case 'startsWith': case 'endsWith': {
      if (!(either || strings)) throw mismatch();
      const test = op === 'contains' ? (a: string, b: string) => a.includes(b) : op === 'startsWith' ? (a: string, b: string) => a.startsWith(b) : (a: string, b: string) => a.endsWith(b);
      return fold({ kind: 'bool', run: (q, p) => test(str(lr(q, p)), str(rr(q, p))) }, [l, r]);
    }
    case '??':
      return fold({ kind: l.kind === r.kind ? l.kind : 'any', run: (q, p) => lr(q, p) ?? rr(q, p) }, [l, r]);
    case '+':
      if (strings) return fold({ kind: 'string', run: (q, p) => str(lr(q, p)) + str(rr(q, p)) }, [l, r]);
    // fall through: numbers
    default: {
      if (!(either || numbers)) throw mismatch();
      const intResult = l.kind === 'int' && r.kind === 'int' && op !== '/' && op !== '**' && op !== '^';
      if (op === '%' && !(either || intResult)) throw mismatch();
      const f = ARITH[op]!;
      return fold({
        kind: either ? 'any' : intResult ? 'int' : 'float', run: (q, p) => {
          const a = lr(q, p);
          const b = rr(q, p);
          if (typeof a !== 'number' || typeof b !== 'number') throw new ExprError(`invalid operation: ${op}`);
          return f(a, b);
        },
      }, [l, r]);
    }
  }
}

const ARITH: Record<string, (a: number, b: number) => number> = {
  '+': (a, b) => a + b, '-': (a, b) => a - b, '*': (a, b) => a * b, '/': (a, b) => a / b,
  '%': (a, b) => { if (b === 0) throw new ExprError('integer divide by zero'); return a % b; },
  '**': (a, b) => a ** b, '^': (a, b) => a ** b,
};

function str(v: Value): string {
  if (typeof v !== 'string') throw new ExprError('not a string');
  return v;
}

function regexp(pattern: string, tok: Tok): RegExp {
  try {
    return goRegexp(pattern);
  } catch (e) {
    throw new ExprError(`error parsing regexp: ${(e as Error).message} (1:${tok.pos + 1})`);
  }
}

/** Parses and type-checks `src` (what expr.Compile refuses is refused here); throws ExprError. */
export function compileExpression(src: string): Program {
  return new Parser(lex(src)).parse().run;
}
