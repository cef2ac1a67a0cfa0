import { SetupError } from '../../corefile/types.js';
import { listenAddress } from '../../server/http.js';
import type { PluginDefinition } from '../../server/types.js';
import { SetupArgs } from '../../pkg/args.js';
import { metricsHandler, Prometheus } from './handler.js';
import { recorderFor } from './recorder.js';

const DEFAULT_ADDRESS = 'localhost:9153';

/** `prometheus [ADDRESS] { runtime_metrics }` */
export const definition: PluginDefinition = {
  name: 'prometheus',
  once: true,
  setup(d, ctx) {
    const fail = (msg: string, line = d.line) => new SetupError(d.file, line, 'prometheus', msg);
    const address = listenAddress(d, DEFAULT_ADDRESS, fail);
    const a = new SetupArgs('prometheus');
    for (const c of d.children) {
      switch (c.name) {
        case 'runtime_metrics':
          // Node's process and GC metrics are always exported; accepted so CoreDNS Corefiles load.
          a.count(c, 0);
          break;
        case 'tls':
          throw a.error(c, 'tls is not supported: serve /metrics over plain HTTP (or terminate TLS in front)');
        default:
          throw a.error(c, `unknown option: ${c.name}`);
      }
    }
    ctx.shared.http.route(address, '/metrics', metricsHandler(ctx.shared.registry), 'prometheus');
    return new Prometheus(address, recorderFor(ctx.shared.registry).view(ctx.view));
  },
};
