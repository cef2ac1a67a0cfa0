import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadPlugins } from '../../src/plugins/registry.js';
import { DnsServer } from '../../src/server/dns-server.js';
import type { PluginDefinitions } from '../../src/server/types.js';
import { tempDir } from './temp-dir.js';

export interface RunningServer {
  server: DnsServer;
  /** The DNS port (UDP and TCP) on 127.0.0.1. */
  port: number;
  /** Directory holding the Corefile (relative paths in it resolve here). */
  dir: string;
  corefile: string;
  stop(): Promise<void>;
}

/**
 * Starts an in-process server for `corefile` on 127.0.0.1 with a random port. Keys without a port get it;
 * write `{PORT}` nowhere: the port is chosen by the kernel (`-dns.port 0`).
 */
export async function startServer(corefile: string,
  opts: { dir?: string; files?: Record<string, string>; plugins?: PluginDefinitions } = {}): Promise<RunningServer> {
  const dir = opts.dir ?? tempDir('test');
  for (const [name, text] of Object.entries(opts.files ?? {})) writeFileSync(join(dir, name), text);
  const file = join(dir, 'Corefile');
  writeFileSync(file, corefile);
  const server = new DnsServer({ conf: file, dnsPort: 0, bind: ['127.0.0.1'], plugins: opts.plugins ?? await loadPlugins() });
  await server.start();
  const port = server.boundPort(0);
  if (!port) throw new Error('server did not bind port 0 (do all keys omit the port?)');
  return { server, port, dir, corefile: file, stop: () => server.stop() };
}
