import { hostname } from 'node:os';
import { SetupArgs } from '../../pkg/args.js';
import { logger } from '../../pkg/log.js';
import { VERSION } from '../../pkg/version.js';
import type { Directive } from '../../corefile/types.js';
import type { PluginDefinition } from '../../server/types.js';
import { Dnstap, dnstapMetrics, type DnstapConfig } from './handler.js';
import { endpointText, QUEUE_UNIT, TapOutput, type Endpoint } from './io.js';

/** CoreDNS's bounds: the write buffer in MiB, the queue in units of 10,000 messages. */
const MAX_WRITE_BUFFER = 1024;
const MAX_QUEUE = 4096;
const MIB = 1 << 20;

const log = logger('plugin/dnstap');

export interface DnstapSetup extends DnstapConfig {
  endpoint: Endpoint;
  writeBufferMiB: number;
  queueUnits: number;
}

function parseEndpoint(a: SetupArgs, d: Directive, text: string): Endpoint {
  const scheme = /^(tcp|tls):\/\//.exec(text)?.[1] as 'tcp' | 'tls' | undefined;
  if (!scheme) {
    const path = text.startsWith('unix://') ? text.slice('unix://'.length) : text;
    if (!path) throw a.error(d, `no socket path in '${text}'`);
    return { proto: 'unix', path };
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw a.error(d, `invalid endpoint '${text}' (want ${scheme}://HOST:PORT)`);
  }
  const port = Number(url.port);
  // Ours: CoreDNS takes a missing port and fails at every dial; the Corefile is wrong, so say so now.
  if (!url.hostname || !(port >= 1 && port <= 65535)) throw a.error(d, `invalid endpoint '${text}' (want ${scheme}://HOST:PORT)`);
  return { proto: scheme, host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port, skipVerify: false };
}

/** `dnstap SOCKET [full] [WRITEBUFFER] [QUEUE]` and its block, read as CoreDNS's parseConfig does. */
export function parseDnstap(d: Directive): DnstapSetup {
  const a = new SetupArgs('dnstap');
  const args = a.count(d, 1, 4, 'SOCKET [full] [WRITEBUFFER] [QUEUE]');
  if (args[0] === 'listen') throw a.error(d, "'dnstap listen' (collectors connecting to the server) is not supported; give the collector's SOCKET");
  const endpoint = parseEndpoint(a, d, args[0]!);
  // CoreDNS ignores any other word in second place; a misspelt `full` should not silently leave the messages out.
  if (args.length >= 2 && args[1] !== 'full') throw a.error(d, `want 'full' after the socket, got '${args[1]}'`);
  const bounded = (text: string | undefined, max: number, what: string) => {
    if (text === undefined) return 1;
    const n = /^\d+$/.test(text) ? Number(text) : NaN;
    if (!(n >= 1 && n <= max)) throw a.error(d, `${what} must be between 1 and ${max}: ${text}`);
    return n;
  };
  const s: DnstapSetup = {
    endpoint,
    full: args[1] === 'full',
    writeBufferMiB: bounded(args[2], MAX_WRITE_BUFFER, 'WRITEBUFFER (MiB)'),
    queueUnits: bounded(args[3], MAX_QUEUE, `QUEUE (x${QUEUE_UNIT} messages)`),
    identity: Buffer.from(hostname()),
    version: Buffer.from(`clusterdns-${VERSION}`),
  };
  for (const c of d.children) {
    switch (c.name) {
      case 'identity':
        a.once(c);
        s.identity = Buffer.from(a.count(c, 1, 1, 'IDENTITY')[0]!);
        break;
      case 'version':
        a.once(c);
        s.version = Buffer.from(a.count(c, 1, 1, 'VERSION')[0]!);
        break;
      case 'extra':
        a.once(c);
        s.extra = a.count(c, 1, 1, 'EXTRA')[0]!;
        break;
      case 'skipverify':
        a.once(c);
        a.bare(c);
        if (s.endpoint.proto !== 'tls') throw a.error(c, 'skipverify needs a tls:// SOCKET');
        s.endpoint.skipVerify = true;
        break;
      default:
        throw a.error(c, `unknown property '${c.name}'`);
    }
  }
  return s;
}

/**
 * Each `dnstap` line is its own output, as in CoreDNS where the lines chain one after the other: every one
 * sees every query and response of the block.
 */
export const definition: PluginDefinition = {
  name: 'dnstap',
  setup(d, ctx) {
    const s = parseDnstap(d);
    const endpoint = endpointText(s.endpoint);
    const output = new TapOutput(s.endpoint, {
      capacity: s.queueUnits * QUEUE_UNIT,
      writeBuffer: s.writeBufferMiB * MIB,
      dropped: dnstapMetrics(ctx.shared.registry).dropped.labels(endpoint),
      log,
    });
    return new Dnstap(s, output);
  },
};
