/** Reading a plugin's Corefile lines: argument counts, once-only options, ttl and durations, errors with file:line. */
import { SetupError } from './config-errors.js';
import { formatDuration, tryParseDuration } from './duration.js';
import { Fall } from './fall.js';
import { zonesFromArgs } from './zone.js';

/** A Corefile line as these helpers read it; the parser's Directive is one. */
export interface ArgLine {
  readonly name: string;
  readonly args: readonly string[];
  readonly children: readonly unknown[];
  readonly file: string;
  readonly line: number;
}

/**
 * One plugin's block being read. Every error is a SetupError naming the plugin and the line
 * (`Corefile:12 - Error during setup: plugin/hosts: ttl: ...`); a message about the plugin's own line has no
 * option prefix. One instance per block: `once` remembers the options seen in it.
 */
export class SetupArgs {
  private readonly seen = new Set<string>();

  constructor(readonly plugin: string) {}

  error(at: ArgLine, message: string): SetupError {
    return new SetupError(at.file, at.line, this.plugin, message);
  }

  /** The arguments of `at` when there are `min` to `max`; `usage` says what is wanted (`DURATION [JITTER]`). */
  count(at: ArgLine, min: number, max = min, usage?: string): readonly string[] {
    const n = at.args.length;
    if (n >= min && n <= max) return at.args;
    if (max === 0) throw this.error(at, `${this.prefix(at)}takes no arguments, got '${at.args.join(' ')}'`);
    throw this.error(at, `${this.prefix(at)}wrong argument count${usage ? `: want ${usage}` : ''}, got ${n}`);
  }

  /** A line that takes nothing: no arguments, no block (`whoami`, `any`, `minimal`). */
  bare(at: ArgLine): void {
    this.count(at, 0);
    this.noBlock(at);
  }

  /** Refuses a `{ ... }` block after `at`. */
  noBlock(at: ArgLine): void {
    if (at.children.length) throw this.error(at, `${this.prefix(at)}takes no block`);
  }

  /** Refuses a second line of the same option in this block. */
  once(at: ArgLine): void {
    if (this.seen.has(at.name)) throw this.error(at, `'${at.name}' given more than once`);
    this.seen.add(at.name);
  }

  /** Whether an option of this name was seen by `once`. */
  has(name: string): boolean {
    return this.seen.has(name);
  }

  /** `ttl SECONDS`: one whole number in [min, max]. */
  ttl(at: ArgLine, min: number, max: number): number {
    const [text] = this.count(at, 1, 1, 'SECONDS');
    const ttl = /^\d+$/.test(text!) ? Number(text) : NaN;
    if (!(ttl >= min && ttl <= max)) throw this.error(at, `ttl must be in range [${min}, ${max}]: ${text}`);
    return ttl;
  }

  /** The Go duration `text` (`5s`, `1m30s`) in milliseconds, at least `minMs`; errors name the option of `at`. */
  duration(at: ArgLine, text: string, minMs = 0): number {
    const ms = tryParseDuration(text);
    if (ms === undefined) throw this.error(at, `${this.prefix(at)}invalid duration '${text}' (want e.g. 5s, 500ms, 1m30s)`);
    if (ms < minMs) {
      const want = minMs === 0 ? 'must not be negative' : `must be at least ${formatDuration(minMs)}`;
      throw this.error(at, `${this.prefix(at)}duration ${want}, got '${text}'`);
    }
    return ms;
  }

  /** The whole number `text` (no sign), at most `max`; errors name the option of `at`. */
  uint(at: ArgLine, text: string | undefined, max = Number.MAX_SAFE_INTEGER): number {
    const n = text !== undefined && /^\d+$/.test(text) ? Number(text) : NaN;
    if (!(n <= max)) throw this.error(at, `${this.prefix(at)}want a whole number from 0 to ${max}, got '${text ?? ''}'`);
    return n;
  }

  /** Zone arguments (names, or CIDRs standing for their reverse zones) as lower-case FQDNs. */
  zones(at: ArgLine, args: readonly string[] = at.args): string[] {
    try {
      return zonesFromArgs(args);
    } catch (e) {
      throw this.error(at, `${this.prefix(at)}${(e as Error).message}`);
    }
  }

  /** `fallthrough [ZONES...]`. */
  fall(at: ArgLine): Fall {
    try {
      return Fall.fromArgs(at.args);
    } catch (e) {
      throw this.error(at, `${this.prefix(at)}${(e as Error).message}`);
    }
  }

  private prefix(at: ArgLine): string {
    return at.name === this.plugin ? '' : `${at.name}: `;
  }
}
