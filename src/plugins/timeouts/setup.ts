import { SetupArgs } from '../../pkg/args.js';
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
    const a = new SetupArgs('timeouts');
    a.count(d, 0);
    // As in CoreDNS: an empty block is a mistake, not a way to say "defaults".
    if (!d.children.length) throw a.error(d, 'timeouts block with no timeouts specified');
    const limits = { readMs: DEFAULT_TCP_LIMITS.readMs, writeMs: DEFAULT_TCP_LIMITS.writeMs, idleMs: DEFAULT_TCP_LIMITS.idleMs };
    for (const c of d.children) {
      const key = OPTIONS[c.name as keyof typeof OPTIONS];
      if (!key) throw a.error(c, `unknown option '${c.name}' (want read, write or idle)`);
      a.once(c);
      a.noBlock(c);
      const [text] = a.count(c, 1, 1, 'DURATION');
      const ms = a.duration(c, text!);
      if (ms < MIN_MS || ms > MAX_MS) throw a.error(c, `${c.name}: timeout provided '${text}' needs to be between 1 second and 24 hours`);
      limits[key] = ms;
    }
    return new Timeouts(limits);
  },
};
