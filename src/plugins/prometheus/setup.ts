import { SetupError } from '../../corefile/types.js';
import { splitHostPort } from '../../server/http.js';
import type { PluginDefinition } from '../../server/types.js';
import { Prometheus, serveMetrics } from './handler.js';
import { blockRecurses } from '../../server/config.js';

const DEFAULT_ADDRESS = 'localhost:9153';

/** `prometheus [ADDRESS] { runtime_metrics }` */
export const definition: PluginDefinition = {
  name: 'prometheus',
  once: true,
  setup(d, ctx) {
    const fail = (msg: string, line = d.line) => new SetupError(d.file, line, 'prometheus', msg);
    if (d.args.length > 1) throw fail(`wrong argument count: want at most one ADDRESS, got '${d.args.join(' ')}'`);
    const address = d.args[0] ?? DEFAULT_ADDRESS;
    checkAddress(address, (m) => fail(m));
    for (const c of d.children) {
      switch (c.name) {
        case 'runtime_metrics':
          // Node's process and GC metrics are always exported; accepted so CoreDNS Corefiles load.
          if (c.args.length) throw fail(`runtime_metrics takes no arguments, got '${c.args.join(' ')}'`, c.line);
          break;
        case 'tls':
          throw fail('tls is not supported: serve /metrics over plain HTTP (or terminate TLS in front)', c.line);
        default:
          throw fail(`unknown option: ${c.name}`, c.line);
      }
    }
    ctx.shared.http.route(address, '/metrics', serveMetrics, 'prometheus');
    return new Prometheus(address, blockRecurses(ctx.block));
  },
};

/** Like Go's net.SplitHostPort, which CoreDNS uses: the port is required (`:9153`, `localhost:9153`). */
export function checkAddress(address: string, fail: (msg: string) => Error): void {
  if (!/:\d+$/.test(address)) throw fail(`address ${address}: missing port in address`);
  try {
    splitHostPort(address, 0);
  } catch (e) {
    throw fail((e as Error).message);
  }
}
