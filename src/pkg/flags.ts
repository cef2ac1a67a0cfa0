/**
 * Command-line flags with Go's `flag` package semantics, as CoreDNS and kube-proxy users type them:
 * `-name value`, `-name=value`, one or two dashes, booleans as `-x` or `-x=false` (never `-x false`),
 * `--` ends the flags. Every command declares its flags; anything undeclared is a usage error.
 */

/** A bad command line: the caller prints the message and the usage to stderr and exits 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** One declared flag; `T` is its value after parsing (the initial value when absent). */
export interface Flag<T> {
  readonly help: string;
  /** Takes no value (`-x`, `-x=true`, `-x=false`). */
  readonly bool: boolean;
  /** Placeholder shown in usage after the name (`-conf FILE`). */
  readonly arg: string;
  readonly aliases: readonly string[];
  readonly initial: T;
  /** Shown in usage as `(default ...)`. */
  readonly shownDefault?: string;
  /** Folds one occurrence into the value so far; `flag` is the flag as typed, for messages. */
  set(prev: T, raw: string, flag: string): T;
}

interface Common { arg?: string; aliases?: string[] }

/** Go's strconv.ParseBool spellings. */
const BOOLS: Record<string, boolean> = {
  1: true, t: true, T: true, true: true, TRUE: true, True: true, 0: false, f: false, F: false, false: false, FALSE: false, False: false,
};

export function bool(help: string, o: Pick<Common, 'aliases'> & { default?: boolean } = {}): Flag<boolean> {
  return {
    help, bool: true, arg: '', aliases: o.aliases ?? [], initial: o.default ?? false, shownDefault: o.default ? 'true' : undefined,
    set(_prev, raw, flag) {
      const v = BOOLS[raw];
      if (v === undefined) throw new UsageError(`invalid boolean value '${raw}' for ${flag}`);
      return v;
    },
  };
}

export function text(help: string, o: Common & { default: string }): Flag<string>;
export function text(help: string, o?: Common): Flag<string | undefined>;
export function text(help: string, o: Common & { default?: string } = {}): Flag<string | undefined> {
  return value(help, (raw) => raw, { ...o, arg: o.arg ?? 'string', default: o.default, shown: o.default === undefined ? undefined : JSON.stringify(o.default) });
}

/** A flag whose text `parse` turns into a value; `parse` throws with a message naming `flag`. */
export function value<T>(help: string, parse: (raw: string, flag: string) => T, o: Common & { default: T; shown?: string }): Flag<T>;
export function value<T>(help: string, parse: (raw: string, flag: string) => T, o?: Common & { shown?: string }): Flag<T | undefined>;
export function value<T>(help: string, parse: (raw: string, flag: string) => T, o: Common & { default?: T; shown?: string } = {}): Flag<T | undefined> {
  return {
    help, bool: false, arg: o.arg ?? 'value', aliases: o.aliases ?? [], initial: o.default, shownDefault: o.shown,
    set: (_prev, raw, flag) => parse(raw, flag),
  };
}

/** Repeatable, and each occurrence may hold a comma-separated list (kube-proxy's `--node-ip a,b`). */
export function list<T = string>(help: string, parse: (raw: string, flag: string) => T, o: Common = {}): Flag<T[]> {
  return {
    help, bool: false, arg: o.arg ?? 'value', aliases: o.aliases ?? [], initial: [],
    set: (prev, raw, flag) => [...prev, ...raw.split(',').map((s) => parse(s.trim(), flag))],
  };
}

/** A non-negative integer up to 65535. */
export function port(raw: string, flag: string): number {
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!(n <= 65535)) throw new UsageError(`${flag}: '${raw}' is not a port`);
  return n;
}

export type FlagSet = Record<string, Flag<unknown>>;
export type Values<S extends FlagSet> = { [K in keyof S]: S[K] extends Flag<infer T> ? T : never };

export interface Parsed<S extends FlagSet> {
  values: Values<S>;
  /** Names (as declared) of the flags given on the command line. */
  given: Set<keyof S & string>;
  /** Arguments that are not flags. */
  args: string[];
}

export interface ParseOptions {
  /**
   * Non-flag arguments may come between flags (`resolve NAME -type A`). Go's flag stops at the first
   * one instead; commands that take no arguments never notice the difference.
   */
  interspersed?: boolean;
}

const FLAG = /^--?([^-=][^=]*)(?:=([\s\S]*))?$/;

export function parseFlags<S extends FlagSet>(set: S, argv: readonly string[], o: ParseOptions = {}): Parsed<S> {
  const byName = new Map<string, string>();
  for (const [name, f] of Object.entries(set)) for (const n of [name, ...f.aliases]) byName.set(n, name);
  const values = Object.fromEntries(Object.entries(set).map(([name, f]) => [name, f.initial])) as Record<string, unknown>;
  const given = new Set<string>();
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      args.push(...argv.slice(i + 1));
      break;
    }
    const m = FLAG.exec(a);
    if (!m) {
      if (!o.interspersed) {
        args.push(...argv.slice(i));
        break;
      }
      args.push(a);
      continue;
    }
    const typed = a.slice(0, a.length - (m[2] === undefined ? 0 : m[2].length + 1));
    const name = byName.get(m[1]!);
    if (name === undefined) throw new UsageError(`flag provided but not defined: ${typed}`);
    const f = set[name]!;
    let raw = m[2];
    if (raw === undefined) {
      if (f.bool) raw = 'true';
      else if (i + 1 < argv.length) raw = argv[++i]!;
      else throw new UsageError(`flag needs an argument: ${typed}`);
    }
    try {
      values[name] = f.set(values[name], raw, typed);
    } catch (e) {
      throw e instanceof UsageError ? e : new UsageError((e as Error).message);
    }
    given.add(name);
  }
  return { values: values as Values<S>, given: given as Set<keyof S & string>, args };
}

/**
 * A command's options from its parser, the way Go's flag treats a command line: a usage error is printed
 * with the usage (status 2), `-help` prints the usage (status 0). A number is the status to exit with.
 */
export function commandLine<T extends { help: boolean }>(command: string, usage: () => string, parse: () => T): T | number {
  let o: T;
  try {
    o = parse();
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`${command}: ${e.message}\n${usage()}`);
    return 2;
  }
  if (!o.help) return o;
  process.stdout.write(usage());
  return 0;
}

/** Go's PrintDefaults layout: `  -name arg` then the help on an indented line, sorted by name. */
export function describeFlags(set: FlagSet, dashes: '-' | '--' = '-'): string {
  return Object.entries(set).sort(([a], [b]) => (a < b ? -1 : 1)).map(([name, f]) => {
    const names = [name, ...f.aliases].map((n) => dashes + n).join(', ');
    const dflt = f.shownDefault === undefined ? '' : ` (default ${f.shownDefault})`;
    return `  ${names}${f.bool ? '' : ' ' + f.arg}\n    \t${f.help}${dflt}\n`;
  }).join('');
}
