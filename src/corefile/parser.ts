/**
 * Corefile parser: tokens → server blocks → directives with nested blocks. It follows CoreDNS's Caddyfile parser
 * (coredns/caddy caddyfile/parse.go) token for token — imports splice raw tokens into the stream, so an imported
 * file or snippet may hold keys, whole blocks or just a few directive lines — but keeps directive order and nesting
 * as a tree instead of grouping tokens by directive name.
 */
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { expandEnv } from './env.js';
import { globFiles, globProblem, hasWildcard, readConfigFile } from './imports.js';
import { tokenize } from './lexer.js';
import { CorefileError, type Corefile, type Directive, type ServerBlock } from './types.js';

export interface ParseOptions {
  /** Source of `{$VAR}` / `{%VAR%}` values; default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Reads an imported file (absolute path); default: the file system, a directory is an error. */
  readFile?: (path: string) => string;
  /** Expands an absolute import pattern to existing paths; a pattern without wildcard yields itself if it exists. */
  glob?: (pattern: string) => string[];
  /** Receives non-fatal problems (an import glob matching nothing); default: stderr with `[WARNING]`. */
  warn?: (message: string) => void;
}

// CoreDNS caps: enough for any real Corefile, small enough to stop exponential snippet fan-out.
const MAX_SNIPPET_EXPANSIONS = 10000;
const MAX_FILE_EXPANSIONS = 100000;
/**
 * Ours: tokens after every import is spliced in. CoreDNS's caps alone let 3 KB of nested snippets grow to
 * millions of tokens (seconds of CPU and a gigabyte on a reload); the kubeadm Corefile has about 60.
 */
export const MAX_TOKENS = 100_000;

interface Tok {
  text: string;
  line: number;
  file: string;
  /**
   * The imports this token came through, starting with the Corefile itself: `(name)` for a snippet, an absolute
   * path for a file. Every expansion gets its own array, so identity also tells two expansions apart.
   */
  via: readonly string[];
}

export function parseCorefile(text: string, file: string, opts: ParseOptions = {}): Corefile {
  const parser = new Parser(text, file, {
    env: opts.env ?? process.env,
    readFile: opts.readFile ?? readConfigFile,
    glob: opts.glob ?? globFiles,
    warn: opts.warn ?? ((m) => process.stderr.write(`[WARNING] ${m}\n`)),
  });
  return { file, blocks: parser.parseAll() };
}

/** Reads and parses a Corefile; imports resolve against its directory. */
export function loadCorefile(path: string, opts: ParseOptions = {}): Corefile {
  return parseCorefile(readConfigFile(path), path, opts);
}

/**
 * The token stream as a gap buffer: tokens before the gap in `head`, after it in `tail` (reversed). An
 * import splices its tokens in at the cursor, where the gap already is, so it costs what it inserts rather
 * than a copy of the whole stream (which made nested snippet imports quadratic).
 */
class TokenBuffer {
  private readonly head: Tok[];
  private readonly tail: Tok[] = [];

  constructor(toks: Tok[]) {
    this.head = toks;
  }

  get length(): number {
    return this.head.length + this.tail.length;
  }

  /** Like indexing an array: undefined past either end, typed as present (callers check the length). */
  get(i: number): Tok {
    const h = this.head.length;
    return (i < h ? this.head[i] : this.tail[this.tail.length - 1 - (i - h)]) as Tok;
  }

  last(): Tok | undefined {
    return this.tail.length ? this.tail[0] : this.head.at(-1);
  }

  /** Replaces `count` tokens at `at` by `items`. */
  splice(at: number, count: number, items: Tok[]): void {
    while (this.head.length > at) this.tail.push(this.head.pop()!);
    while (this.head.length < at && this.tail.length) this.head.push(this.tail.pop()!);
    for (let i = 0; i < count && this.tail.length; i++) this.tail.pop();
    for (let i = items.length - 1; i >= 0; i--) this.tail.push(items[i]!);
  }
}

class Parser {
  private toks: TokenBuffer;
  private cursor = -1;
  private readonly snippets = new Map<string, Tok[]>();
  private snippetExpansions = 0;
  private fileExpansions = 0;

  constructor(
    text: string,
    private readonly file: string,
    private readonly opts: Required<ParseOptions>,
  ) {
    const via = [resolve(file)];
    this.toks = new TokenBuffer(tokenize(text).map((t) => ({ ...t, file, via })));
    if (this.toks.length > MAX_TOKENS) throw new CorefileError(file, 1, `more than ${MAX_TOKENS} tokens`);
  }

  parseAll(): ServerBlock[] {
    const blocks: ServerBlock[] = [];
    while (this.next()) {
      const block = this.serverBlock();
      if (block) blocks.push(block);
    }
    return blocks;
  }

  private get val(): string {
    return this.toks.get(this.cursor)?.text ?? '';
  }

  private next(): boolean {
    if (this.cursor >= this.toks.length - 1) return false;
    this.cursor++;
    return true;
  }

  /** Whether the current token starts a line; a quoted token spanning lines ends on its last line. */
  private isNewLine(at = this.cursor): boolean {
    if (at < 1) return true;
    if (at > this.toks.length - 1) return false;
    const prev = this.toks.get(at - 1);
    const cur = this.toks.get(at);
    return prev.file !== cur.file || prev.via !== cur.via || prev.line + lineBreaks(prev.text) < cur.line;
  }

  /** Advances only to a token on the same line (Dispenser.NextArg). */
  private nextArg(): boolean {
    if (this.cursor + 1 >= this.toks.length || this.isNewLine(this.cursor + 1)) return false;
    this.cursor++;
    return true;
  }

  private err(message: string, tok: Tok | undefined = this.toks.get(this.cursor) ?? this.toks.last()): CorefileError {
    return new CorefileError(tok?.file ?? this.file, tok?.line ?? 1, message);
  }

  private env(text: string): string {
    return expandEnv(text, this.opts.env);
  }

  private serverBlock(): ServerBlock | undefined {
    const start = this.toks.get(this.cursor);
    const { keys, first, eof } = this.addresses();
    if (eof) {
      // A file that is only a line of keys: CoreDNS serves those zones with no plugins.
      return keys.length > 0 ? { keys, directives: [], file: first!.file, line: first!.line } : undefined;
    }
    if (keys.length === 1 && keys[0].startsWith('(') && keys[0].endsWith(')')) {
      this.defineSnippet(keys[0].slice(1, -1), first!);
      return undefined;
    }
    if (keys.length === 0) {
      // CoreDNS silently drops such a block; an unset variable in the key is the usual cause, so say so.
      throw this.err(`Server block has no key before '${this.val}' (is an environment variable in the key unset?)`, start);
    }
    return { keys, directives: this.blockContents(), file: first!.file, line: first!.line };
  }

  private addresses(): { keys: string[]; first: Tok | undefined; eof: boolean } {
    const keys: string[] = [];
    let first: Tok | undefined;
    let expectingAnother = false;
    for (;;) {
      let key = this.env(this.val);
      if (key === 'import' && this.isNewLine()) {
        this.doImport();
        continue;
      }
      if (key === '}') throw this.err("Unexpected '}' because no matching opening brace");
      if (key === '{') {
        if (expectingAnother) throw this.err("Expected another address but had '{' - check for extra comma");
        break;
      }
      // A trailing comma separates keys and lets the list continue on the next line.
      expectingAnother = key.endsWith(',');
      if (expectingAnother) key = key.slice(0, -1);
      if (key !== '') {
        first ??= this.toks.get(this.cursor);
        keys.push(key);
      }
      if (!this.next()) {
        if (expectingAnother) throw this.err('Unexpected EOF');
        return { keys, first, eof: true };
      }
      if (!expectingAnother && this.isNewLine()) break;
    }
    return { keys, first, eof: false };
  }

  private defineSnippet(name: string, keyTok: Tok): void {
    if (this.snippets.has(name)) throw this.err(`redeclaration of previously declared snippet ${name}`, keyTok);
    if (this.val !== '{') throw this.err(`Unexpected token '${this.val}', expecting '{'`);
    const open = this.toks.get(this.cursor);
    const body: Tok[] = [];
    let depth = 1;
    while (this.next()) {
      const tok = this.toks.get(this.cursor);
      if (tok.text === '}' && --depth === 0) {
        this.snippets.set(name, body);
        return;
      }
      if (tok.text === '{') depth++;
      body.push(tok);
    }
    throw this.err(`Unexpected EOF, expecting '}' to close snippet (${name}) opened at ${where(open, this.toks.last())}`);
  }

  /** The directives of a server block; a file with a single block may leave out its braces. */
  private blockContents(): Directive[] {
    const open = this.val === '{' ? this.toks.get(this.cursor) : undefined;
    if (!open) this.cursor--;
    const directives: Directive[] = [];
    while (this.next()) {
      if (this.val === '}') {
        if (!open) throw this.err("Unexpected '}' because no matching opening brace");
        return directives;
      }
      if (this.val === 'import') {
        this.doImport();
        this.cursor--;
        continue;
      }
      directives.push(this.directive());
    }
    if (open) throw this.err(`Unexpected EOF, expecting '}' to close the server block opened at ${where(open, this.toks.last())}`);
    return directives;
  }

  /** One directive line at server-block level; its scope ends at the end of the line or of its `{ }` block. */
  private directive(): Directive {
    const tok = this.toks.get(this.cursor);
    const d: Directive = { name: this.env(tok.text), args: [], children: [], file: tok.file, line: tok.line };
    while (this.next()) {
      if (this.isNewLine()) {
        this.cursor--;
        break;
      }
      if (this.val === '{') {
        d.children = this.nestedBlock();
        break;
      }
      // CoreDNS requires the server block's `}` to start a line: `.:53 { errors }` is an error there too.
      if (this.val === '}') throw this.err("Unexpected '}' because no matching opening brace");
      d.args.push(this.env(this.val));
    }
    return d;
  }

  /** The lines of a `{ ... }` opened by a directive, up to the matching `}`; deeper blocks nest in `children`. */
  private nestedBlock(): Directive[] {
    const open = this.toks.get(this.cursor);
    const children: Directive[] = [];
    while (this.next()) {
      const tok = this.toks.get(this.cursor);
      if (tok.text === '}') return children;
      if (tok.text === 'import' && this.isNewLine()) {
        this.doImport();
        this.cursor--;
        continue;
      }
      if (tok.text === '{') throw this.err("Unexpected '{': a block opens at the end of a directive line");
      const child: Directive = { name: this.env(tok.text), args: [], children: [], file: tok.file, line: tok.line };
      while (this.next()) {
        if (this.isNewLine() || this.val === '}') {
          this.cursor--;
          break;
        }
        if (this.val === '{') {
          child.children = this.nestedBlock();
          break;
        }
        child.args.push(this.env(this.val));
      }
      children.push(child);
    }
    throw this.err(`Unexpected EOF, expecting '}' to close the block opened at ${where(open, this.toks.last())}`);
  }

  /**
   * Replaces `import ARG` with the snippet's or the files' tokens and leaves the cursor on the first of them (or on
   * what followed the import when nothing was imported).
   */
  private doImport(): void {
    const importTok = this.toks.get(this.cursor);
    if (!this.nextArg()) throw this.err("Wrong argument count or unexpected line ending after 'import'");
    const pattern = this.env(this.val);
    if (pattern === '') throw this.err('Import requires a non-empty filepath');
    if (this.nextArg()) throw this.err('Import takes only one argument (glob pattern or file)');
    const at = this.cursor - 1;

    let imported: Tok[] = [];
    const snippet = this.snippets.get(pattern);
    if (snippet) {
      if (this.snippetExpansions++ >= MAX_SNIPPET_EXPANSIONS) {
        throw this.err(`maximum snippet import depth (${MAX_SNIPPET_EXPANSIONS}) exceeded`);
      }
      const via = this.enter(importTok, `(${pattern})`);
      imported = snippet.map((t) => ({ ...t, via }));
    } else {
      if (this.fileExpansions++ >= MAX_FILE_EXPANSIONS) {
        throw this.err(`maximum file import depth (${MAX_FILE_EXPANSIONS}) exceeded`);
      }
      // Relative to the file holding the import, not the working directory (as CoreDNS does).
      const full = isAbsolute(pattern) ? pattern : join(dirname(resolve(importTok.file)), pattern);
      const problem = globProblem(full);
      if (problem) throw this.err(problem);
      const matches = this.opts.glob(full);
      if (matches.length === 0) {
        if (!hasWildcard(full)) throw this.err(`File to import not found: ${pattern}`);
        this.opts.warn(`${importTok.file}:${importTok.line} - No files matching import glob pattern: ${pattern}`);
      }
      for (const match of matches) {
        const path = resolve(match);
        const via = this.enter(importTok, path);
        let text: string;
        try {
          text = this.opts.readFile(path);
        } catch (e) {
          throw this.err(`Could not import ${match}: ${(e as Error).message}`);
        }
        for (const t of tokenize(text)) imported.push({ ...t, file: path, via });
      }
    }
    this.toks.splice(at, 2, imported);
    this.cursor = at;
    if (this.toks.length > MAX_TOKENS) {
      throw this.err(`the Corefile grows past ${MAX_TOKENS} tokens with this import (${pattern}): nested snippets or imports expand too far`, importTok);
    }
  }

  /** The import chain for tokens expanded from `source`; CoreDNS only caps cycles, we name them. */
  private enter(importTok: Tok, source: string): readonly string[] {
    const seen = importTok.via.indexOf(source);
    if (seen >= 0) {
      const cycle = [...importTok.via.slice(seen), source].join(' -> ');
      throw this.err(`import cycle: ${cycle}`, importTok);
    }
    return [...importTok.via, source];
  }
}

function lineBreaks(text: string): number {
  return text.split('\n').length - 1;
}

function where(tok: Tok, from: Tok | undefined): string {
  return from && from.file === tok.file ? `line ${tok.line}` : `${tok.file}:${tok.line}`;
}
