#!/usr/bin/env node
// First: sets the V8 heap flags (src/runtime.ts) before the other modules run.
import { unsupportedRuntime } from './runtime.js';
import cluster from 'node:cluster';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { bool, commandLine, describeFlags, parseFlags, port, text, UsageError, value, type Flag, type FlagSet, type Values } from './pkg/flags.js';
import { VERSION } from './pkg/version.js';
import { loadPlugins } from './plugins/registry.js';
import { checkCorefile } from './server/check.js';
import { DnsServer } from './server/dns-server.js';
import { logger } from './pkg/log.js';
import type { PluginDefinitions } from './server/types.js';

const log = logger();

const SYNOPSIS = `clusterdns ${VERSION}: cluster DNS for Kubernetes (CoreDNS drop-in) and VIP programmer

Usage:
  clusterdns [serve] [-conf FILE] [-dns.port N] [-pidfile FILE] [-quiet] [-workers N|auto]
                     [-dns.tcp-max-conns N]   run the DNS server
  clusterdns check [-conf FILE] [-dns.port N]          parse and set up a Corefile, report errors
  clusterdns resolve NAME [-type T] [-resolv-conf F] [-server IP[:PORT]] [-stub glibc|musl]
  clusterdns vip [options]                             program Service VIPs (see 'clusterdns vip -help')
  clusterdns nodecache -localip IP[,IP] [options]      node-local DNS cache (see 'clusterdns nodecache -help')
  clusterdns -version | -plugins | -help

Flags take one or two dashes (-conf and --conf). Without a Corefile, serves '.:53 { whoami log }'.
`;

function workerCount(raw: string, flag: string): number {
  const n = raw === 'auto' ? availableParallelism() : /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= 1)) throw new UsageError(`${flag}: '${raw}' is not a positive number or 'auto'`);
  return n;
}

function positiveInt(raw: string, flag: string): number {
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= 1)) throw new UsageError(`${flag}: '${raw}' is not a positive integer`);
  return n;
}

/** The flags `check` shares with `serve` (CoreDNS's, `-p` being its alias of `-dns.port`). */
const CONFIG_FLAGS = {
  conf: text('Corefile to load, or "stdin" (default "Corefile")', { arg: 'FILE' }),
  'dns.port': value('Default port', port, { arg: 'PORT', aliases: ['p'], shown: '"53"' }),
  help: bool('Show this help', { aliases: ['h'] }),
};

const SERVE_FLAGS = {
  ...CONFIG_FLAGS,
  pidfile: text('Path to write pid file', { arg: 'FILE' }),
  quiet: bool('Quiet mode (no initialization output)'),
  version: bool('Show version'),
  plugins: bool('List installed plugins'),
  workers: value('Processes answering queries (shared sockets)', workerCount, { arg: 'N|auto', default: 1, shown: '1' }),
  'dns.tcp-max-conns': value('Open TCP connections per listen address; at the cap the oldest idle one is closed', positiveInt, { arg: 'N', shown: '1000' }),
};

type ConfigFlags = Values<typeof CONFIG_FLAGS>;

const usage = (flags: FlagSet) => `${SYNOPSIS}\nFlags:\n${describeFlags(flags)}`;

/** The Corefile to load: `-conf stdin` reads it once from standard input, as CoreDNS does. */
function corefileSource(f: ConfigFlags): { conf: string; text?: string } {
  if (f.conf === 'stdin') return { conf: 'stdin', text: readFileSync(0, 'utf8') };
  return { conf: f.conf ?? 'Corefile' };
}

/** Written once the server listens, removed on exit (caddy.PidFile). */
function writePidfile(file: string): void {
  writeFileSync(file, `${process.pid}\n`);
  process.once('exit', () => rmSync(file, { force: true }));
}

/** CoreDNS's `-plugins`: caddy.DescribePlugins, with our one server type and its plugins. */
function describePlugins(names: Iterable<string>): string {
  const others = [...names].map((n) => `dns.${n}`).sort();
  return `Server types:\n  dns\n\nCaddyfile loaders:\n  flag\n  default\n\nOther plugins:\n${others.map((n) => `  ${n}\n`).join('')}\n`;
}

async function serve(f: Values<typeof SERVE_FLAGS>, plugins: PluginDefinitions): Promise<number> {
  const dnsPort = f['dns.port'];
  const runtime = cluster.isPrimary ? unsupportedRuntime() : undefined;
  if (runtime) log.warn(runtime);
  if (f.workers > 1 && cluster.isPrimary) {
    if (f.pidfile) writePidfile(f.pidfile);
    return superviseWorkers(f.workers);
  }
  const { conf, text } = corefileSource(f);
  const server = text === undefined && f.conf === undefined && !existsSync(conf)
    ? DnsServer.withDefaultCorefile({ conf, dnsPort, plugins, maxTcpConns: f['dns.tcp-max-conns'] })
    : new DnsServer({ conf, text, dnsPort, plugins, maxTcpConns: f['dns.tcp-max-conns'] });
  try {
    await server.start();
  } catch (e) {
    log.error((e as Error).message);
    return 1;
  }
  if (f.pidfile && cluster.isPrimary) writePidfile(f.pidfile);
  if (!f.quiet) {
    const ports = server.config!.ports.map((p) => `${p.server} (${p.bind.length ? p.bind.join(',') : 'all addresses'})`);
    log.info(`clusterdns-${VERSION} serving ${ports.join(' ')}${cluster.isWorker ? ` worker ${cluster.worker!.id}` : ''}`);
  }
  process.on('SIGHUP', () => void server.reload());
  process.on('SIGUSR1', () => void server.reload());
  return new Promise((resolve) => {
    let stopping = false;
    const stop = (sig: string) => {
      if (stopping) return;
      stopping = true;
      log.info(`${sig} received, shutting down`);
      server.stop({ lameduck: true }).then(() => resolve(0), (e: Error) => { log.error(e.message); resolve(1); });
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
}

/** node:cluster: workers share the UDP/TCP handles, or bind their own (reusePortWorkers in server/listeners.ts). */
function superviseWorkers(n: number): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    let alive = 0;
    const fork = () => { alive++; cluster.fork(); };
    for (let i = 0; i < n; i++) fork();
    cluster.on('exit', (w, code) => {
      alive--;
      if (stopping) {
        if (alive === 0) resolve(0);
        return;
      }
      if (code === 1 && !w.exitedAfterDisconnect) {
        log.error(`worker ${w.id} exited with status ${code}; stopping`);
        stopping = true;
        for (const other of Object.values(cluster.workers ?? {})) other?.process.kill('SIGTERM');
        if (alive === 0) resolve(1);
        return;
      }
      log.warn(`worker ${w.id} exited (${code}); starting a new one`);
      fork();
    });
    const forward = (sig: NodeJS.Signals) => () => {
      if (sig === 'SIGTERM' || sig === 'SIGINT') stopping = true;
      for (const w of Object.values(cluster.workers ?? {})) w?.process.kill(sig);
    };
    for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGUSR1'] as const) process.on(sig, forward(sig));
  });
}

/** Sets up every plugin of a Corefile, or of a CoreDNS ConfigMap's, without opening DNS listeners. */
async function check(f: ConfigFlags, plugins: PluginDefinitions): Promise<number> {
  try {
    const { conf, text } = corefileSource(f);
    const report = await checkCorefile({ file: conf, text, dnsPort: f['dns.port'], plugins });
    for (const p of report.problems) process.stderr.write(`${p}\n`);
    if (report.problems.length) return 1;
    process.stdout.write(`${report.source}: OK (${report.blocks} server block${report.blocks === 1 ? '' : 's'})\n`);
    return 0;
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    return 1;
  }
}

/** The command's flags, or the exit status after a usage error or `-help`. */
function parseOrExplain<S extends FlagSet & { help: Flag<boolean> }>(set: S, argv: string[], command: string): Values<S> | number {
  return commandLine(command, () => usage(set), (): Values<S> & { help: boolean } => {
    const { values, args } = parseFlags(set, argv);
    if (args.length) throw new UsageError(`extra command line arguments: ${args.join(' ')}`);
    return values as Values<S> & { help: boolean };
  });
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === 'nodecache') return (await import('./nodecache/cli.js')).runNodecache(rest);
  if (cmd === 'vip') return (await import('./vip/cli.js')).runVip(rest);
  if (cmd === 'resolve') return (await import('./resolve/cli.js')).runResolve(rest);
  if (cmd === 'check') {
    const f = parseOrExplain(CONFIG_FLAGS, rest, 'clusterdns check');
    if (typeof f === 'number') return f;
    return check(f, await loadPlugins());
  }
  const f = parseOrExplain(SERVE_FLAGS, cmd === 'serve' ? rest : argv, 'clusterdns');
  if (typeof f === 'number') return f;
  if (f.version) { process.stdout.write(`clusterdns-${VERSION}\n${process.platform}/${process.arch}, node-${process.version}\n`); return 0; }
  const plugins = await loadPlugins();
  if (f.plugins) { process.stdout.write(describePlugins(plugins.keys())); return 0; }
  return serve(f, plugins);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: Error) => { process.stderr.write(`clusterdns: ${e.message}\n`); process.exit(2); },
);
