/**
 * The part of Go's text/template that CoreDNS template Corefiles use: text with `{{ pipeline }}` actions
 * (trim markers and comments included), fields and map keys (`.Name`, `.Group.ip`, `$.Zone`), the
 * `.Meta "name"` method, string/number/bool literals, parenthesised pipelines, `|` pipelines, and the
 * functions index, len, slice, print, printf, println plus CoreDNS's parseInt. Control structures
 * (if/range/with/define/template/block), variables other than `$`, and the other builtins are refused
 * at setup with a message saying so; everything accepted behaves as Go's does, including the
 * runtime errors ("index out of range") that make CoreDNS answer SERVFAIL.
 */

/** A setup-time problem with a template's text. */
export class TemplateSyntaxError extends Error {}
/** A failure while executing a template for one query (CoreDNS: template_failures_total, SERVFAIL). */
export class TemplateExecError extends Error {}

/** A Go struct value: its type name (for error messages), its fields, and a String() method if it has one. */
export class GoStruct {
  constructor(readonly type: string, readonly fields: Record<string, GoValue>, readonly str?: () => string) {}
}
/** A method of the data (`.Meta`): called with the action's arguments. */
export class GoMethod {
  constructor(readonly name: string, readonly arity: number, readonly fn: (...args: GoValue[]) => GoValue) {}
}
/** Go values as templates see them; `undefined` is Go's invalid value (a missing map key), printed `<no value>`. */
export type GoValue = string | number | bigint | boolean | GoValue[] | Map<string, GoValue> | GoStruct | GoMethod | null | undefined;

type Node =
  | { kind: 'field'; chain: string[]; root: 'dot' | 'dollar' }
  | { kind: 'string'; value: string; text: string }
  | { kind: 'number'; value: number; text: string }
  | { kind: 'bool'; value: boolean }
  | { kind: 'ident'; name: string }
  | { kind: 'pipe'; cmds: Node[][] };

type Piece = string | { pipe: Node[][]; pos: string };

/** Functions this subset evaluates; Go's other builtins are refused by name at setup. */
const FUNCS = new Set(['index', 'len', 'slice', 'print', 'printf', 'println', 'parseInt']);
const GO_BUILTINS = new Set(['and', 'or', 'not', 'call', 'html', 'js', 'urlquery', 'eq', 'ne', 'lt', 'le', 'gt', 'ge']);
const KEYWORDS = new Set(['if', 'else', 'end', 'range', 'with', 'define', 'template', 'block', 'break', 'continue']);

export class GoTemplate {
  private constructor(readonly name: string, private readonly pieces: Piece[]) {}

  /** Parses `text`; throws TemplateSyntaxError (Go's wording where Go has one, ours for what is not supported). */
  static parse(name: string, text: string): GoTemplate {
    return new GoTemplate(name, parsePieces(name, text));
  }

  /** Go's Tree.Root.String(): the template as Go prints it back (CoreDNS's `template` metric label). */
  toString(): string {
    return this.pieces.map((p) => (typeof p === 'string' ? p : `{{${pipeString(p.pipe)}}}`)).join('');
  }

  execute(data: GoValue): string {
    let out = '';
    for (const p of this.pieces) {
      if (typeof p === 'string') { out += p; continue; }
      const ctx = { name: this.name, pos: p.pos, dot: data, root: data };
      out += printValue(evalPipe(ctx, p.pipe));
    }
    return out;
  }
}

/* ------------------------------------------------------------------ parsing */

function parsePieces(name: string, text: string): Piece[] {
  const pieces: Piece[] = [];
  let i = 0;
  let line = 1;
  let trimNext = false;
  while (i < text.length) {
    const open = text.indexOf('{{', i);
    let lit = text.slice(i, open < 0 ? text.length : open);
    if (trimNext) lit = lit.replace(/^[ \t\r\n]+/, '');
    trimNext = false;
    if (open < 0) { if (lit) pieces.push(lit); break; }
    // `{{- ` trims the space before; the dash must be followed by a space so `{{-3}}` stays a number.
    const trimLeft = /^\{\{-[ \t\r\n]/.test(text.slice(open));
    if (trimLeft) lit = lit.replace(/[ \t\r\n]+$/, '');
    if (lit) pieces.push(lit);
    line += (text.slice(i, open).match(/\n/g) ?? []).length;
    const start = open + (trimLeft ? 3 : 2);
    const fail = (msg: string): never => { throw new TemplateSyntaxError(`template: ${name}:${line}: ${msg}`); };
    const close = findClose(text, start, fail);
    let body = text.slice(start, close);
    // Go's position of an action: line, and byte offset in that line of its first command.
    const pos = `${name}:${line}:${start + body.length - body.trimStart().length - text.lastIndexOf('\n', open - 1) - 1}`;
    const trimRight = /[ \t\r\n]-$/.test(body);
    if (trimRight) body = body.slice(0, -2);
    line += (text.slice(open, close).match(/\n/g) ?? []).length;
    i = close + 2;
    trimNext = trimRight;
    const inner = body.trim();
    if (inner.startsWith('/*')) {
      if (!inner.endsWith('*/')) fail('unclosed comment');
      continue;
    }
    const p = new Parser(lex(body, fail), fail);
    const pipe = p.pipeline(true);
    p.end();
    pieces.push({ pipe, pos });
  }
  return pieces;
}

/** The `}}` closing an action that starts at `from`, skipping quoted strings (they may hold `}}`). */
function findClose(text: string, from: number, fail: (m: string) => never): number {
  for (let i = from; i < text.length; i++) {
    const c = text[i];
    if (c === '"' || c === '`' || c === "'") {
      const end = c === '`' ? text.indexOf('`', i + 1) : quotedEnd(text, i);
      if (end < 0) fail('unterminated quoted string');
      i = end;
    } else if (c === '}' && text[i + 1] === '}') {
      return i;
    }
  }
  return fail('unclosed action');
}

function quotedEnd(text: string, at: number): number {
  const q = text[at];
  for (let i = at + 1; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === q) return i;
    else if (text[i] === '\n') return -1;
  }
  return -1;
}

type Tok = { t: 'field'; v: string } | { t: 'var'; v: string } | { t: 'ident'; v: string } | { t: 'string'; v: string; text: string }
  | { t: 'number'; v: number; text: string } | { t: '(' | ')' | '|' | ':=' | '=' | ',' | 'char' };

function lex(body: string, fail: (m: string) => never): Tok[] {
  const toks: Tok[] = [];
  const re = /\s+|(\.(?:[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)?)|(\$[A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)|([A-Za-z_][A-Za-z0-9_]*)|("(?:[^"\\\n]|\\.)*")|(`[^`]*`)|('(?:[^'\\\n]|\\.)*')|([-+]?\d[\w.]*)|(:=|[()|=,])/y;
  let at = 0;
  while (at < body.length) {
    re.lastIndex = at;
    const m = re.exec(body);
    if (!m) return fail(`unexpected "${body[at]}" in command`);
    at = re.lastIndex;
    if (m[1] !== undefined) toks.push({ t: 'field', v: m[1] });
    else if (m[2] !== undefined) toks.push({ t: 'var', v: m[2] });
    else if (m[3] !== undefined) toks.push({ t: 'ident', v: m[3] });
    else if (m[4] !== undefined) toks.push({ t: 'string', v: unquote(m[4], fail), text: m[4] });
    else if (m[5] !== undefined) toks.push({ t: 'string', v: m[5].slice(1, -1), text: m[5] });
    else if (m[6] !== undefined) toks.push({ t: 'char' });
    else if (m[7] !== undefined) toks.push({ t: 'number', v: integer(m[7], fail), text: m[7] });
    else if (m[8] !== undefined) toks.push({ t: m[8] as '(' });
  }
  return toks;
}

/** An integer constant in Go syntax (decimal, 0x, 0o, 0b, leading-0 octal, `_` separators). */
function integer(text: string, fail: (m: string) => never): number {
  const m = /^([-+]?)(?:0[xX]((?:_?[0-9a-fA-F])+)|0[bB]((?:_?[01])+)|0[oO]?((?:_?[0-7])+)|([1-9](?:_?\d)*|0))$/.exec(text);
  if (!m) return fail(`number ${text} is not supported by clusterdns's template subset (integers only)`);
  const [, sign, hex, bin, oct, dec] = m;
  const v = hex ? parseInt(hex.replace(/_/g, ''), 16) : bin ? parseInt(bin.replace(/_/g, ''), 2)
    : oct ? parseInt(oct.replace(/_/g, ''), 8) : Number(dec!.replace(/_/g, ''));
  return sign === '-' ? -v : v;
}

/** Go's strconv.Unquote for a double-quoted literal (the escapes Go allows there). */
function unquote(lit: string, fail: (m: string) => never): string {
  return lit.slice(1, -1).replace(/\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{3}|[abfnrtv\\"])|\\(.)/g, (_, e: string | undefined, bad: string | undefined) => {
    if (bad !== undefined) return fail(`unquote: invalid syntax in ${lit}`);
    const simple: Record<string, string> = { a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\\': '\\', '"': '"' };
    if (e!.length === 1) return simple[e!]!;
    if (/^[0-7]/.test(e!)) return String.fromCharCode(parseInt(e!, 8));
    return String.fromCodePoint(parseInt(e!.slice(1), 16));
  });
}

class Parser {
  private i = 0;
  constructor(private readonly toks: Tok[], private readonly fail: (m: string) => never) {}

  end(): void {
    if (this.i < this.toks.length) this.fail(`unexpected ${describe(this.toks[this.i]!)} in operand`);
  }

  /** command ('|' command)*; `top` is the action itself (keywords and declarations are refused there). */
  pipeline(top: boolean): Node[][] {
    const first = this.toks[this.i];
    if (!first) this.fail('missing value for command');
    if (top && first!.t === 'ident' && KEYWORDS.has(first!.v)) {
      this.fail(`{{${first!.v}}} is not supported by clusterdns's template subset (no control structures)`);
    }
    if (this.toks.some((t) => t.t === ':=' || t.t === '=')) this.fail('variable declarations are not supported by clusterdns\'s template subset');
    const cmds: Node[][] = [];
    for (;;) {
      const cmd: Node[] = [];
      while (this.i < this.toks.length && this.toks[this.i]!.t !== '|' && this.toks[this.i]!.t !== ')') cmd.push(this.operand());
      if (!cmd.length) this.fail('missing value for command');
      const head = cmd[0]!;
      if (cmds.length && (head.kind === 'string' || head.kind === 'number' || head.kind === 'bool' || (head.kind === 'field' && head.root === 'dot' && !head.chain.length))) {
        this.fail(`non executable command in pipeline stage ${cmds.length + 1}`);
      }
      cmds.push(cmd);
      if (this.toks[this.i]?.t !== '|') return cmds;
      this.i++;
    }
  }

  private operand(): Node {
    const tok = this.toks[this.i++]!;
    switch (tok.t) {
      case 'field': return { kind: 'field', chain: tok.v === '.' ? [] : tok.v.slice(1).split('.'), root: 'dot' };
      case 'var':
        if (tok.v !== '$' && !tok.v.startsWith('$.')) this.fail(`variable ${tok.v.split('.')[0]} is not supported by clusterdns's template subset (only $)`);
        return { kind: 'field', chain: tok.v === '$' ? [] : tok.v.slice(2).split('.'), root: 'dollar' };
      case 'string': return { kind: 'string', value: tok.v, text: tok.text };
      case 'number': return { kind: 'number', value: tok.v, text: tok.text };
      case 'char': return this.fail('character constants are not supported by clusterdns\'s template subset');
      case 'ident':
        if (tok.v === 'true' || tok.v === 'false') return { kind: 'bool', value: tok.v === 'true' };
        if (tok.v === 'nil') return this.fail('nil is not a command');
        if (KEYWORDS.has(tok.v)) return this.fail(`unexpected <${tok.v}> in command`);
        if (GO_BUILTINS.has(tok.v)) return this.fail(`function "${tok.v}" is not supported by clusterdns's template subset`);
        if (!FUNCS.has(tok.v)) return this.fail(`function "${tok.v}" not defined`);
        return { kind: 'ident', name: tok.v };
      case '(': {
        const cmds = this.pipeline(false);
        if (this.toks[this.i]?.t !== ')') this.fail('unclosed left paren');
        this.i++;
        const next = this.toks[this.i];
        if (next?.t === 'field') this.fail('field chains on a parenthesised pipeline are not supported by clusterdns\'s template subset');
        return { kind: 'pipe', cmds };
      }
      default: return this.fail(`unexpected ${describe(tok)} in operand`);
    }
  }
}

function describe(t: Tok): string {
  return 'v' in t ? `"${t.t === 'string' ? t.text : String(t.v)}"` : `"${t.t}"`;
}

/* ------------------------------------------------------------------ printing the tree back (metric label) */

function nodeString(n: Node): string {
  switch (n.kind) {
    case 'field': return (n.root === 'dollar' ? '$' : '') + (n.chain.length ? '.' + n.chain.join('.') : n.root === 'dot' ? '.' : '');
    case 'string': return n.text.startsWith('`') ? n.text : JSON.stringify(n.value);
    case 'number': return n.text;
    case 'bool': return String(n.value);
    case 'ident': return n.name;
    case 'pipe': return `(${pipeString(n.cmds)})`;
  }
}

function pipeString(cmds: Node[][]): string {
  return cmds.map((c) => c.map(nodeString).join(' ')).join(' | ');
}

/* ------------------------------------------------------------------ execution */

interface Ctx { name: string; pos: string; dot: GoValue; root: GoValue }

function execFail(ctx: Ctx, at: string, msg: string): never {
  throw new TemplateExecError(`template: ${ctx.pos}: executing "${ctx.name}" at <${at}>: ${msg}`);
}

function evalPipe(ctx: Ctx, cmds: Node[][]): GoValue {
  let piped: { v: GoValue } | undefined;
  for (const cmd of cmds) piped = { v: evalCommand(ctx, cmd, piped) };
  return piped!.v;
}

function evalCommand(ctx: Ctx, cmd: Node[], piped: { v: GoValue } | undefined): GoValue {
  const [head, ...rest] = cmd as [Node, ...Node[]];
  const at = cmd.map(nodeString).join(' ');
  const args = () => [...rest.map((n) => evalArg(ctx, n)), ...(piped ? [piped.v] : [])];
  if (head.kind === 'ident') return callFunc(ctx, at, head.name, args());
  if (head.kind === 'field') {
    const v = evalField(ctx, head, at);
    if (v instanceof GoMethod) {
      const a = args();
      if (a.length !== v.arity) execFail(ctx, at, `wrong number of args for ${v.name}: want ${v.arity} got ${a.length}`);
      return v.fn(...a);
    }
    if (rest.length || piped) execFail(ctx, at, `${nodeString(head)} has arguments but cannot be invoked as function`);
    return v;
  }
  if (rest.length || piped) execFail(ctx, at, `can't give argument to non-function ${nodeString(head)}`);
  return evalArg(ctx, head);
}

function evalArg(ctx: Ctx, n: Node): GoValue {
  switch (n.kind) {
    case 'string': case 'number': case 'bool': return n.value;
    case 'pipe': return evalPipe(ctx, n.cmds);
    case 'field': {
      const v = evalField(ctx, n, nodeString(n));
      return v instanceof GoMethod ? evalCommand(ctx, [n], undefined) : v;
    }
    case 'ident': return callFunc(ctx, n.name, n.name, []);
  }
}

function evalField(ctx: Ctx, n: Extract<Node, { kind: 'field' }>, at: string): GoValue {
  let v = n.root === 'dollar' ? ctx.root : ctx.dot;
  for (const f of n.chain) {
    if (v instanceof Map) v = v.get(f);
    else if (v === null) v = undefined;
    else if (v instanceof GoStruct && f in v.fields) v = v.fields[f];
    else if (v === undefined) execFail(ctx, at, `nil pointer evaluating interface {}.${f}`);
    else execFail(ctx, at, `can't evaluate field ${f} in type ${goType(v)}`);
  }
  return v;
}

function goType(v: GoValue): string {
  if (typeof v === 'string') return 'string';
  if (typeof v === 'number') return 'int';
  if (typeof v === 'bigint') return 'uint64';
  if (typeof v === 'boolean') return 'bool';
  if (Array.isArray(v)) return '[]string';
  if (v instanceof Map) return 'map[string]string';
  if (v instanceof GoStruct) return v.type;
  return 'interface {}';
}

function toInt(ctx: Ctx, at: string, v: GoValue, what: string): number {
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  if (typeof v === 'bigint') return Number(v);
  return execFail(ctx, at, `error calling ${what}: cannot index slice/array with type ${goType(v)}`);
}

function callFunc(ctx: Ctx, at: string, name: string, a: GoValue[]): GoValue {
  const want = (min: number, max = min) => {
    if (a.length < min || a.length > max) execFail(ctx, at, `wrong number of args for ${name}: want ${min === max ? min : `at least ${min}`} got ${a.length}`);
  };
  switch (name) {
    case 'index': {
      want(1, Infinity);
      let v = a[0];
      for (const k of a.slice(1)) {
        if (Array.isArray(v) || typeof v === 'string') {
          const i = toInt(ctx, at, k, 'index');
          if (i < 0 || i >= v.length) execFail(ctx, at, `error calling index: index out of range: ${i}`);
          v = typeof v === 'string' ? v.charCodeAt(i) : v[i];
        } else if (v instanceof Map) {
          if (typeof k !== 'string') execFail(ctx, at, `error calling index: value has type ${goType(k)}; should be string`);
          v = v.get(k as string) ?? '';
        } else if (v === null) {
          v = '';
        } else {
          execFail(ctx, at, `error calling index: can't index item of type ${goType(v)}`);
        }
      }
      return v;
    }
    case 'len': {
      want(1);
      const v = a[0];
      if (typeof v === 'string') return Buffer.byteLength(v);
      if (Array.isArray(v)) return v.length;
      if (v instanceof Map) return v.size;
      if (v === null) return 0;
      return execFail(ctx, at, `error calling len: len of type ${goType(v)}`);
    }
    case 'slice': {
      want(1, 3);
      const v = a[0];
      if (typeof v !== 'string' && !Array.isArray(v)) return execFail(ctx, at, `error calling slice: can't slice item of type ${goType(v)}`);
      const from = a.length > 1 ? toInt(ctx, at, a[1], 'slice') : 0;
      const to = a.length > 2 ? toInt(ctx, at, a[2], 'slice') : v.length;
      if (from < 0 || to > v.length || from > to) execFail(ctx, at, `error calling slice: index out of range: ${from > to ? from : to}`);
      return v.slice(from, to);
    }
    case 'print': return sprint(a);
    case 'println': return a.map(printValue).join(' ') + '\n';
    case 'printf': {
      want(1, Infinity);
      if (typeof a[0] !== 'string') execFail(ctx, at, `wrong type for value; expected string; got ${goType(a[0])}`);
      return sprintf(a[0] as string, a.slice(1));
    }
    case 'parseInt': {
      want(3);
      if (typeof a[0] !== 'string') execFail(ctx, at, `wrong type for value; expected string; got ${goType(a[0])}`);
      const [base, bits] = [toInt(ctx, at, a[1], 'parseInt'), toInt(ctx, at, a[2], 'parseInt')];
      const r = parseUint(a[0] as string, base, bits);
      if (typeof r === 'string') execFail(ctx, at, `error calling parseInt: ${r}`);
      return r as bigint;
    }
  }
  return execFail(ctx, at, `function "${name}" not defined`);
}

/** Go's strconv.ParseUint: the value, or the error text. */
export function parseUint(s: string, base: number, bitSize: number): bigint | string {
  const err = (why: string) => `strconv.ParseUint: parsing ${JSON.stringify(s)}: ${why}`;
  if (s === '') return err('invalid syntax');
  if (bitSize === 0) bitSize = 64;
  if (bitSize < 0 || bitSize > 64) return `strconv.ParseUint: parsing ${JSON.stringify(s)}: invalid bit size ${bitSize}`;
  let digits = s;
  let underscores = false;
  if (base === 0) {
    base = 10;
    underscores = true;
    const m = /^0([xXbBoO])?/.exec(s);
    if (m && s.length > 1) {
      base = m[1] ? { x: 16, b: 2, o: 8 }[m[1].toLowerCase() as 'x' | 'b' | 'o'] : 8;
      digits = s.slice(m[1] ? 2 : 1);
    }
  } else if (base < 2 || base > 36) {
    return `strconv.ParseUint: parsing ${JSON.stringify(s)}: invalid base ${base}`;
  }
  if (underscores) {
    if (/^_|__|_$/.test(digits) && digits !== '') return err('invalid syntax');
    digits = digits.replace(/_/g, '');
  }
  if (digits === '') return err('invalid syntax');
  const max = (1n << BigInt(bitSize)) - 1n;
  let n = 0n;
  for (const ch of digits.toLowerCase()) {
    const d = ch >= '0' && ch <= '9' ? ch.charCodeAt(0) - 48 : ch >= 'a' && ch <= 'z' ? ch.charCodeAt(0) - 87 : 99;
    if (d >= base) return err('invalid syntax');
    n = n * BigInt(base) + BigInt(d);
  }
  return n > max ? err('value out of range') : n;
}

/** fmt.Sprint: operands printed with %v, a space between two operands when neither is a string. */
function sprint(a: GoValue[]): string {
  let out = '';
  a.forEach((v, i) => {
    if (i > 0 && typeof v !== 'string' && typeof a[i - 1] !== 'string') out += ' ';
    out += printValue(v);
  });
  return out;
}

/** fmt.Sprintf for the verbs templates use: %v %s %d %x %X %o %q %c %t %% with flags -0+ and width/precision. */
function sprintf(format: string, a: GoValue[]): string {
  let n = 0;
  return format.replace(/%([-+0 #]*)(\d+)?(?:\.(\d+))?([a-zA-Z%])/g, (_all, flags: string, width: string | undefined, prec: string | undefined, verb: string) => {
    if (verb === '%') return '%';
    if (n >= a.length) return `%!${verb}(MISSING)`;
    const v = a[n++];
    let s: string;
    const int = typeof v === 'number' && Number.isInteger(v) ? BigInt(v) : typeof v === 'bigint' ? v : undefined;
    switch (verb) {
      case 'v': s = printValue(v); break;
      case 's': s = typeof v === 'string' ? v : printValue(v); if (prec !== undefined) s = s.slice(0, Number(prec)); break;
      case 'q': s = JSON.stringify(typeof v === 'string' ? v : printValue(v)); break;
      case 'd': s = int !== undefined ? int.toString(10) : `%!d(${goType(v)}=${printValue(v)})`; break;
      case 'x': case 'X': case 'o': {
        const radix = verb === 'o' ? 8 : 16;
        s = int !== undefined ? int.toString(radix) : typeof v === 'string' && verb !== 'o' ? Buffer.from(v).toString('hex') : `%!${verb}(${goType(v)}=${printValue(v)})`;
        if (verb === 'X') s = s.toUpperCase();
        break;
      }
      case 'c': s = int !== undefined ? String.fromCodePoint(Number(int)) : `%!c(${goType(v)}=${printValue(v)})`; break;
      case 't': s = typeof v === 'boolean' ? String(v) : `%!t(${goType(v)}=${printValue(v)})`; break;
      default: return `%!${verb}(${goType(v)}=${printValue(v)})`;
    }
    if (flags.includes('+') && int !== undefined && int >= 0n && 'dxXo'.includes(verb)) s = '+' + s;
    const w = width ? Number(width) : 0;
    if (s.length < w) {
      if (flags.includes('-')) s = s.padEnd(w);
      else if (flags.includes('0') && 'dxXo'.includes(verb)) s = s.startsWith('-') || s.startsWith('+') ? s[0] + s.slice(1).padStart(w - 1, '0') : s.padStart(w, '0');
      else s = s.padStart(w);
    }
    return s;
  }) + (n < a.length ? `%!(EXTRA ${a.slice(n).map((v) => `${goType(v)}=${printValue(v)}`).join(', ')})` : '');
}

/** What fmt.Fprint writes for a value (text/template's printValue). */
export function printValue(v: GoValue): string {
  if (v === undefined) return '<no value>';
  if (v === null) return 'map[]';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return `[${v.map(printValue).join(' ')}]`;
  if (v instanceof Map) return `map[${[...v.keys()].sort().map((k) => `${k}:${printValue(v.get(k))}`).join(' ')}]`;
  if (v instanceof GoStruct) return v.str ? v.str() : `{${Object.values(v.fields).map(printValue).join(' ')}}`;
  return `<method ${v.name}>`;
}
