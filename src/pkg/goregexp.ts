/**
 * Go `regexp` (RE2 syntax) patterns as JavaScript RegExps, for the `match` lines CoreDNS Corefiles carry.
 * Both engines search leftmost-first with the same greedy/lazy rules, so the translation is of syntax only:
 * `(?P<name>…)` groups, a leading `(?flags)`, `\A` `\z` `\Q…\E` `\x{…}` octal escapes, POSIX classes and
 * RE2's ASCII `\s`. What RE2 refuses (look-around, back-references) is refused here too, so a Corefile
 * CoreDNS rejects is rejected; RE2 syntax with no JavaScript equivalent here (Unicode classes, scoped or
 * mid-pattern flags, ungreedy mode) is a setup error saying so.
 */

/** RE2 caps a pattern's length to keep compilation bounded; CoreDNS's template enforces 10000. */
export const MAX_REGEXP_LEN = 10000;

const POSIX: Record<string, string> = {
  alnum: '0-9A-Za-z', alpha: 'A-Za-z', ascii: '\\x00-\\x7f', blank: '\\t ', cntrl: '\\x00-\\x1f\\x7f', digit: '0-9',
  graph: '!-~', lower: 'a-z', print: ' -~', punct: '!-\\/:-@\\[-`{-~', space: '\\t\\n\\v\\f\\r ', upper: 'A-Z',
  word: '0-9A-Za-z_', xdigit: '0-9A-Fa-f',
};

/** RE2's `\s` is ASCII `[\t\n\f\r ]`; JavaScript's also takes `\v` and Unicode spaces. */
const SPACE = '\\t\\n\\f\\r ';

const unit = (code: number) => `\\u${code.toString(16).padStart(4, '0')}`;

export class GoRegexpError extends Error {}

/** Translates and compiles a Go regexp; throws GoRegexpError with RE2's wording where it has one. */
export function goRegexp(src: string): RegExp {
  if (src.length > MAX_REGEXP_LEN) throw new GoRegexpError(`regex pattern too long: ${src.length} > ${MAX_REGEXP_LEN}`);
  let flags = '';
  let i = 0;
  const lead = /^\(\?([imsU]+)\)/.exec(src);
  if (lead) {
    if (lead[1]!.includes('U')) throw new GoRegexpError('the ungreedy flag (?U) is not supported');
    flags = [...new Set(lead[1]!)].join('');
    i = lead[0].length;
  }
  let out = '';
  let inClass = false;
  /** Index in `out` where the current class's content starts (for RE2's literal `]` first in a class). */
  let classStart = -1;
  const fail = (what: string): never => { throw new GoRegexpError(what); };
  while (i < src.length) {
    const c = src[i]!;
    if (c === '\\') {
      const [text, used] = escape(src, i, inClass, fail);
      out += text;
      i += used;
      continue;
    }
    if (inClass) {
      if (c === ']' && out.length > classStart) {
        inClass = false;
        out += ']';
      } else if (c === '[' && src[i + 1] === ':') {
        const m = /^\[:(\^?)([a-z]+):\]/.exec(src.slice(i));
        if (!m || !POSIX[m[2]!]) fail(`invalid character class range: \`${src.slice(i, i + 10)}\``);
        if (m![1]) fail(`negated POSIX class \`${m![0]}\` is not supported`);
        out += POSIX[m![2]!];
        i += m![0].length;
        continue;
      } else {
        // `]` first in a class is a literal in RE2 but closes an empty class in JavaScript.
        out += c === ']' || c === '[' ? '\\' + c : c;
      }
      i++;
      continue;
    }
    if (c === '[') {
      inClass = true;
      out += '[';
      i++;
      if (src[i] === '^') { out += '^'; i++; }
      classStart = out.length;
      continue;
    }
    if (c === '(' && src[i + 1] === '?') {
      const rest = src.slice(i);
      const named = /^\(\?P?<([A-Za-z0-9_]+)>/.exec(rest);
      if (named) {
        if (/^\d/.test(named[1]!)) fail(`capture group name '${named[1]}' starting with a digit is not supported`);
        out += `(?<${named[1]}>`;
        i += named[0].length;
        continue;
      }
      if (rest.startsWith('(?:')) { out += '(?:'; i += 3; continue; }
      if (/^\(\?(=|!|<=|<!)/.test(rest)) fail(`invalid or unsupported Perl syntax: \`${rest.slice(0, rest[2] === '<' ? 4 : 3)}\``);
      if (/^\(\?[imsU-]+[:)]/.test(rest)) fail(`flags other than a leading (?ims) are not supported: \`${/^\(\?[^:)]*[:)]/.exec(rest)![0]}\``);
      fail(`invalid or unsupported Perl syntax: \`${rest.slice(0, 3)}\``);
    }
    out += c;
    i++;
  }
  if (inClass) fail(`missing closing ]: \`${src.slice(src.lastIndexOf('['))}\``);
  try {
    return new RegExp(out, flags);
  } catch (e) {
    return fail((e as Error).message.replace(/^Invalid regular expression: /, ''));
  }
}

/** One escape at `src[i]` (a backslash): its JavaScript text and how many characters it used. */
function escape(src: string, i: number, inClass: boolean, fail: (what: string) => never): [string, number] {
  const c = src[i + 1];
  if (c === undefined) return fail('trailing backslash at end of expression');
  switch (c) {
    case 'A': return inClass ? fail('invalid escape sequence: `\\A`') : ['(?<![\\s\\S])', 2];
    case 'z': return inClass ? fail('invalid escape sequence: `\\z`') : ['(?![\\s\\S])', 2];
    case 'b': case 'B': return inClass ? fail(`invalid escape sequence: \`\\${c}\``) : ['\\' + c, 2];
    case 's': return [inClass ? SPACE : `[${SPACE}]`, 2];
    case 'S': return inClass ? fail('`\\S` inside a character class is not supported') : [`[^${SPACE}]`, 2];
    case 'd': case 'D': case 'w': case 'W': case 'f': case 'n': case 'r': case 't': case 'v': return ['\\' + c, 2];
    case 'a': return ['\\x07', 2];
    case 'p': case 'P': return fail(`Unicode character classes (\\${c}) are not supported`);
    case 'C': return fail('\\C (any byte) is not supported');
    case 'Q': {
      const end = src.indexOf('\\E', i + 2);
      const lit = src.slice(i + 2, end < 0 ? src.length : end);
      return [lit.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&'), (end < 0 ? src.length : end + 2) - i];
    }
    case 'x': {
      const m = /^\\x(?:\{([0-9A-Fa-f]{1,6})\}|([0-9A-Fa-f]{2}))/.exec(src.slice(i));
      if (!m) return fail(`invalid escape sequence: \`${src.slice(i, i + 4)}\``);
      const code = parseInt(m[1] ?? m[2]!, 16);
      if (code > 0xffff) return fail(`\\x{${m[1]}} beyond U+FFFF is not supported`);
      return [unit(code), m[0].length];
    }
  }
  if (c >= '0' && c <= '7') {
    // RE2: \0 and \1-\7 followed by more octal digits are octal codes; a lone \1-\9 would be a back-reference.
    const m = /^\\([0-7]{1,3})/.exec(src.slice(i))!;
    if (c !== '0' && m[1]!.length === 1) return fail(`invalid escape sequence: \`${m[0]}\``);
    return [unit(parseInt(m[1]!, 8)), m[0].length];
  }
  if (/[A-Za-z0-9]/.test(c)) return fail(`invalid escape sequence: \`\\${c}\``);
  return ['\\' + c, 2];
}
