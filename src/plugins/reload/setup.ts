import { readFileSync } from 'node:fs';
import type { PluginDefinition } from '../../server/types.js';
import { SetupArgs } from '../../pkg/args.js';
import { formatDuration } from '../../pkg/duration.js';
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
    const a = new SetupArgs('reload');
    const [intervalText, jitterText] = a.count(d, 0, 2, '[INTERVAL] [JITTER]');
    a.noBlock(d);
    const interval = intervalText === undefined ? DEFAULT_INTERVAL : a.duration(d, intervalText, MIN_INTERVAL);
    let jitter = jitterText === undefined ? DEFAULT_JITTER : a.duration(d, jitterText);
    if (jitter !== 0 && jitter < MIN_JITTER) throw a.error(d, `jitter value must be 0 or greater or equal to ${formatDuration(MIN_JITTER)}, got '${jitterText}'`);
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
