import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { canonicalIP } from '../pkg/ip.js';
import { parseDuration } from '../pkg/duration.js';
import { runCommand } from '../pkg/command.js';
import { bool, commandLine, describeFlags, list, parseFlags, text, UsageError, value } from '../pkg/flags.js';
import { loadPlugins } from '../plugins/registry.js';
import { DnsServer } from '../server/dns-server.js';
import { logger } from '../pkg/log.js';
import { createRegistry } from '../pkg/metrics.js';
import { NodecacheAgent } from './agent.js';
import { IptablesRules, NftablesRules, type Mode } from './apply.js';
import { LocalInterface } from './link.js';
import { NodecacheMetrics } from './metrics.js';
import { fillPlaceholders, serviceHostVar } from './placeholders.js';
import { buildRules } from './rules.js';

/*
 * The entry point of `clusterdns nodecache`: the one file here that starts the DNS server; the rest of
 * this folder imports only pkg.
 */

const log = logger('nodecache');

const USAGE = `Usage: clusterdns nodecache -localip IP[,IP...] [-conf FILE] [flags]

A node-local DNS cache (Kubernetes' NodeLocal DNSCache): serves the Corefile on the local IPs, which it
adds to a dummy interface, and keeps NOTRACK/ACCEPT rules for them in iptables or nftables.
`;

export interface NodecacheOptions {
  localIPs: string[];
  conf: string;
  dnsPort: number;
  upstreamSvc: string;
  resolvConf: string;
  setupInterface: boolean;
  interfaceName: string;
  setupIptables: boolean;
  mode: Mode;
  healthPort: number;
  syncIntervalMs: number;
  skipTeardown: boolean;
  pidfile?: string;
  help: boolean;
}

function port(v: string, flag: string): number {
  const n = /^\d+$/.test(v) ? Number(v) : NaN;
  if (!(n >= 1 && n <= 65535)) throw new UsageError(`${flag}: '${v}' is not a port`);
  return n;
}

function localIP(v: string): string {
  const ip = canonicalIP(v);
  if (!ip) throw new UsageError(`invalid localip specified - '${v}'`);
  return ip;
}

function syncInterval(v: string, flag: string): number {
  let ms: number;
  try {
    // node-cache's flag is a Go duration; a bare number is taken as seconds, as its help text says.
    ms = /^\d+$/.test(v) ? Number(v) * 1000 : parseDuration(v);
  } catch (e) {
    throw new UsageError(`invalid value '${v}' for flag ${flag}: ${(e as Error).message}`);
  }
  if (ms < 100) throw new UsageError(`${flag}: must be at least 100ms, got '${v}'`);
  return ms;
}

function mode(v: string, flag: string): Mode {
  if (v !== 'iptables' && v !== 'nftables') throw new UsageError(`${flag}: '${v}' is not supported (iptables, nftables)`);
  return v;
}

/** node-cache's flag names, so its DaemonSet args carry over. */
const NODECACHE_FLAGS = {
  localip: list('Addresses to serve on (169.254.20.10, plus the kube-dns ClusterIP in the transparent setup)', localIP, { arg: 'IP[,IP]' }),
  conf: text('Corefile, node-cache placeholders filled in', { arg: 'FILE', default: '/etc/Corefile' }),
  'dns.port': value('DNS port of the rules and of keys naming none', port, { arg: 'N', default: 53, shown: '53' }),
  upstreamsvc: text('Service whose ClusterIP fills __PILLAR__CLUSTER__DNS__', { arg: 'NAME', default: 'kube-dns' }),
  resolvconf: text('What fills __PILLAR__UPSTREAM__SERVERS__', { arg: 'FILE', default: '/etc/resolv.conf' }),
  setupinterface: bool('Add the local IPs to -interfacename', { default: true }),
  interfacename: text('Dummy interface to create (lo where the kernel has no dummy type)', { arg: 'NAME', default: 'nodelocaldns' }),
  setupiptables: bool('Program the rules', { default: true }),
  mode: value('Rule backend: iptables or nftables', mode, { arg: 'MODE', default: 'iptables' as Mode, shown: '"iptables"' }),
  'health-port': value("Port of 'health' on the local IP, NOTRACKed for the liveness probe", port, { arg: 'N', default: 8080, shown: '8080' }),
  syncinterval: value('How often the interface and rules are checked and repaired', syncInterval, { arg: 'D', default: 60_000, shown: '1m0s' }),
  skipteardown: bool('Leave rules and addresses in place on exit (upgrades without a DNS gap)'),
  pidfile: text('Write the PID once the server answers', { arg: 'FILE' }),
  help: bool('Show this help', { aliases: ['h'] }),
};

const usage = () => `${USAGE}\nFlags:\n${describeFlags(NODECACHE_FLAGS)}`;

export function parseNodecacheArgs(argv: readonly string[]): NodecacheOptions {
  const { values: f, args } = parseFlags(NODECACHE_FLAGS, argv);
  if (args.length) throw new UsageError(`unexpected argument '${args[0]}'`);
  const o: NodecacheOptions = {
    localIPs: [...new Set(f.localip)], conf: f.conf, dnsPort: f['dns.port'], upstreamSvc: f.upstreamsvc, resolvConf: f.resolvconf,
    setupInterface: f.setupinterface, interfaceName: f.interfacename, setupIptables: f.setupiptables, mode: f.mode,
    healthPort: f['health-port'], syncIntervalMs: f.syncinterval, skipTeardown: f.skipteardown, pidfile: f.pidfile, help: f.help,
  };
  if (!o.help && !o.localIPs.length) throw new UsageError('-localip is required');
  if (o.interfaceName.length > 15 || !/^[\w.-]+$/.test(o.interfaceName)) throw new UsageError(`-interfacename: '${o.interfaceName}' is not an interface name (at most 15 characters)`);
  return o;
}

export async function runNodecache(argv: string[]): Promise<number> {
  const o = commandLine('clusterdns nodecache', usage, () => parseNodecacheArgs(argv));
  if (typeof o === 'number') return o;
  // One registry for the agent and the DNS server it runs: one scrape shows both.
  const registry = createRegistry();
  const metrics = new NodecacheMetrics(registry);
  const rules = buildRules({ localIPs: o.localIPs, dnsPort: o.dnsPort, healthPort: o.healthPort });
  const agent = new NodecacheAgent({
    link: o.setupInterface ? new LocalInterface(o.interfaceName, o.localIPs, runCommand, log) : null,
    backend: o.setupIptables ? (o.mode === 'nftables' ? new NftablesRules(runCommand) : new IptablesRules(runCommand)) : null,
    rules, syncIntervalMs: o.syncIntervalMs, log, metrics,
  });
  const clusterDNSVar = serviceHostVar(o.upstreamSvc);
  const server = new DnsServer({
    conf: o.conf, dnsPort: o.dnsPort, plugins: await loadPlugins(), registry,
    preprocess: (text) => {
      try {
        return fillPlaceholders(text, { localIPs: o.localIPs, clusterDNS: process.env[clusterDNSVar], clusterDNSVar, upstreamServers: o.resolvConf });
      } catch (e) {
        throw new Error(`${o.conf}: ${(e as Error).message}`);
      }
    },
  });

  // The addresses first: the server binds them.
  await agent.setupInterface();
  try {
    await server.start();
  } catch (e) {
    log.error(`cannot start the DNS server: ${(e as Error).message}`);
    if (!o.skipTeardown) await agent.removeInterface();
    return 1;
  }
  log.info(`serving ${o.localIPs.join(', ')} port ${o.dnsPort}; ${o.setupIptables ? `${o.mode} rules` : 'no rules'}, checked every ${o.syncIntervalMs / 1000}s`);
  if (o.pidfile) writeFileSync(o.pidfile, `${process.pid}\n`);
  await agent.setupRules();
  agent.start();
  process.on('SIGHUP', () => void server.reload());
  process.on('SIGUSR1', () => void server.reload());

  const sig = await new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  log.info(`${sig} received, shutting down${o.skipTeardown ? ' (-skipteardown: rules and addresses stay)' : ''}`);
  await agent.stop();
  // Rules go first: in the transparent setup that hands the kube-dns IP back to kube-proxy while we still answer.
  if (!o.skipTeardown) await agent.removeRules();
  let status = 0;
  await server.stop({ lameduck: true }).catch((e: Error) => { log.error(e.message); status = 1; });
  if (!o.skipTeardown) await agent.removeInterface();
  if (o.pidfile && readPid(o.pidfile) === process.pid) rmSync(o.pidfile, { force: true });
  return status;
}

function readPid(file: string): number | undefined {
  try {
    return Number(readFileSync(file, 'utf8').trim());
  } catch {
    return undefined;
  }
}
