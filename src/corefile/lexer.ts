/** Splits Corefile text into tokens exactly as CoreDNS's Caddyfile lexer does (coredns/caddy caddyfile/lexer.go). */

export interface Token {
  text: string;
  /** Line of the token's first character; a quoted token may span more lines. */
  line: number;
}

const BOM = '\uFEFF';

export function tokenize(input: string): Token[] {
  const src = input.startsWith(BOM) ? input.slice(1) : input;
  const tokens: Token[] = [];
  let line = 1;
  let i = 0;
  // One iteration reads one token, like the lexer's next(): the comment flag lives only for that read, so after
  // `foo#bar baz` the comment ends at the space that ends `foo` and `baz` is a token again (CoreDNS does the same).
  while (i < src.length) {
    let val = '';
    let started = false;
    let tokenLine = line;
    let comment = false;
    let quoted = false;
    let escaped = false;
    for (; i < src.length; i++) {
      const ch = src[i];
      if (quoted) {
        if (!escaped && ch === '\\') {
          escaped = true;
          continue;
        }
        if (!escaped && ch === '"') {
          quoted = false;
          i++;
          break;
        }
        if (ch === '\n') line++;
        // Only `\"` is an escape; any other backslash stays in the token.
        if (escaped && ch !== '"') val += '\\';
        val += ch;
        escaped = false;
        continue;
      }
      if (isSpace(ch)) {
        // CoreDNS drops a bare CR without ending the token.
        if (ch === '\r') continue;
        if (ch === '\n') {
          line++;
          comment = false;
        }
        if (started) {
          i++;
          break;
        }
        continue;
      }
      if (ch === '#') comment = true;
      if (comment) continue;
      if (!started) {
        started = true;
        tokenLine = line;
        if (ch === '"') {
          quoted = true;
          continue;
        }
      }
      val += ch;
    }
    // An unterminated quote still yields what it holds; a closed `""` is a real, empty token.
    if (started && (!quoted || val !== '')) tokens.push({ text: val, line: tokenLine });
  }
  return tokens;
}

// Go's unicode.IsSpace: ASCII whitespace, NEL, NBSP and the Unicode space separators.
function isSpace(ch: string): boolean {
  return /^[\t\n\v\f\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]$/.test(ch);
}
