import { SetupError } from '../../corefile/types.js';
import { tryParseDuration } from '../../pkg/duration.js';
import { DEFAULT_TCP_LIMITS, type TcpLimits } from '../../server/listeners.js';
import type { Plugin, PluginDefinition } from '../../server/types.js';

/** `timeouts { read D write D idle D }`: the TCP deadlines of the block's listeners. The server reads `limits`. */
export class Timeouts implements Plugin {
  readonly name = 'timeouts';
  constructor(readonly limits: Pick<TcpLimits, 'readMs' | 'writeMs' | 'idleMs'>) {}
  serve: Plugin['serve'] = (q, next) => next(q);
}

const OPTIONS = { read: 'readMs', write: 'writeMs', idle: 'idleMs' } as const;
const MIN_MS = 1000;
const MAX_MS = 24 * 3_600_000;

export const definition: PluginDefinition = {
  name: 'timeouts',
  once: true,
  setup(d) {
    const fail = (msg: string, line = d.line) => new SetupError(d.file, line, 'timeouts', msg);
    if (d.args.length) throw fail(`takes no arguments, got '${d.args.join(' ')}'`);
    // As in CoreDNS: an empty block is a mistake, not a way to say "defaults".
    if (!d.children.length) throw fail('timeouts block with no timeouts specified');
    const limits = { readMs: DEFAULT_TCP_LIMITS.readMs, writeMs: DEFAULT_TCP_LIMITS.writeMs, idleMs: DEFAULT_TCP_LIMITS.idleMs };
    const seen = new Set<string>();
    for (const c of d.children) {
      const key = OPTIONS[c.name as keyof typeof OPTIONS];
      if (!key) throw fail(`unknown option '${c.name}' (want read, write or idle)`, c.line);
      if (seen.has(c.name)) throw fail(`'${c.name}' given more than once`, c.line);
      seen.add(c.name);
      if (c.args.length !== 1 || c.children.length) throw fail(`${c.name} needs exactly one duration`, c.line);
      const ms = tryParseDuration(c.args[0]!);
      if (ms === undefined) throw fail(`${c.name}: invalid duration '${c.args[0]}' (want e.g. 3s, 1m)`, c.line);
      if (ms < MIN_MS || ms > MAX_MS) throw fail(`${c.name}: timeout provided '${c.args[0]}' needs to be between 1 second and 24 hours`, c.line);
      limits[key] = ms;
    }
    return new Timeouts(limits);
  },
};
