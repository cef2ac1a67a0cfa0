import { readFileSync } from 'node:fs';
import { SetupError } from '../../corefile/types.js';
import type { PluginDefinition } from '../../server/types.js';
import { formatDuration, parseDuration } from '../../pkg/duration.js';
import { Reload, sha512 } from './handler.js';

const DEFAULT_INTERVAL = 30_000;
const DEFAULT_JITTER = 15_000;
const MIN_INTERVAL = 2_000;
const MIN_JITTER = 1_000;

/** `reload [INTERVAL] [JITTER]` */
export const definition: PluginDefinition = {
  name: 'reload',
  once: true,
  setup(d, ctx) {
    const fail = (msg: string) => new SetupError(d.file, d.line, 'reload', msg);
    if (d.args.length > 2) throw fail(`wrong argument count: want [INTERVAL] [JITTER], got '${d.args.join(' ')}'`);
    if (d.children.length) throw fail(`takes no block, got '${d.children[0]!.name}' on line ${d.children[0]!.line}`);
    const duration = (i: number, what: string, dflt: number): number => {
      const text = d.args[i];
      if (text === undefined) return dflt;
      try {
        return parseDuration(text);
      } catch (e) {
        throw fail(`${what}: ${(e as Error).message}`);
      }
    };
    const interval = duration(0, 'INTERVAL', DEFAULT_INTERVAL);
    if (interval < MIN_INTERVAL) throw fail(`interval value must be greater or equal to ${formatDuration(MIN_INTERVAL)}, got '${d.args[0]}'`);
    let jitter = duration(1, 'JITTER', DEFAULT_JITTER);
    if (jitter !== 0 && jitter < MIN_JITTER) throw fail(`jitter value must be 0 or greater or equal to ${formatDuration(MIN_JITTER)}, got '${d.args[1]}'`);
    jitter = Math.min(jitter, interval / 2);
    // Spread replicas that share one ConfigMap over [-jitter/2, +jitter/2) so they do not reload together.
    const period = interval + (jitter > 0 ? Math.random() * jitter - jitter / 2 : 0);
    return new Reload(ctx.corefile, currentHash(ctx.corefile), Math.round(period), (reason) => ctx.shared.requestReload(reason));
  },
};

/** The hash of the file as this config read it; null when the config did not come from a readable file. */
function currentHash(file: string): string | null {
  try {
    return sha512(readFileSync(file));
  } catch {
    return null;
  }
}
