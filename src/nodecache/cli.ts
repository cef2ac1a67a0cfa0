import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { canonicalIP } from '../cluster/ip.js';
import { parseDuration } from '../corefile/duration.js';
import { runCommand } from '../pkg/command.js';
import { DnsServer } from '../server/dns-server.js';
import { logger } from '../server/log.js';
import { registry } from '../server/metrics.js';
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

  -localip IP[,IP]        addresses to serve on (169.254.20.10, plus the kube-dns ClusterIP in the transparent setup)
  -conf FILE              Corefile, node-cache placeholders filled in (default /etc/Corefile)
  -dns.port N             DNS port of the rules and of keys naming none (default 53)
  -upstreamsvc NAME       Service whose ClusterIP fills __PILLAR__CLUSTER__DNS__ (default kube-dns)
  -resolvconf FILE        what fills __PILLAR__UPSTREAM__SERVERS__ (default /etc/resolv.conf)
  -setupinterface=BOOL    add the local IPs to -interfacename (default true)
  -interfacename NAME     dummy interface to create (default nodelocaldns; lo where the kernel has no dummy type)
  -setupiptables=BOOL     program the rules (default true)
  -mode iptables|nftables rule backend (default iptables)
  -health-port N          port of 'health' on the local IP, NOTRACKed for the liveness probe (default 8080)
  -syncinterval D         how often the interface and rules are checked and repaired (default 1m0s)
  -skipteardown           leave rules and addresses in place on exit (upgrades without a DNS gap)
  -pidfile FILE           write the PID once the server answers
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

export class UsageError extends Error {}

function port(flag: string, v: string): number {
  const n = /^\d+$/.test(v) ? Number(v) : NaN;
  if (!(n >= 1 && n <= 65535)) throw new UsageError(`${flag}: '${v}' is not a port`);
  return n;
}

function boolValue(flag: string, v: string): boolean {
  if (/^(1|t|true)$/i.test(v)) return true;
  if (/^(0|f|false)$/i.test(v)) return false;
  throw new UsageError(`invalid boolean value '${v}' for ${flag}`);
}

const BOOLS = new Set(['setupinterface', 'setupiptables', 'skipteardown', 'help', 'h']);

/** Go `flag` semantics (`-x v`, `-x=v`, booleans only as `-x` or `-x=false`); kept here until pkg has the shared parser. */
export function parseNodecacheArgs(argv: readonly string[]): NodecacheOptions {
  const o: NodecacheOptions = {
    localIPs: [], conf: '/etc/Corefile', dnsPort: 53, upstreamSvc: 'kube-dns', resolvConf: '/etc/resolv.conf',
    setupInterface: true, interfaceName: 'nodelocaldns', setupIptables: true, mode: 'iptables', healthPort: 8080,
    syncIntervalMs: 60_000, skipTeardown: false, help: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const m = /^--?([^-=][^=]*)(?:=(.*))?$/s.exec(argv[i]!);
    if (!m) throw new UsageError(`unexpected argument '${argv[i]}'`);
    const name = m[1]!;
    const flag = `-${name}`;
    let v = m[2];
    if (v === undefined) {
      if (BOOLS.has(name)) v = 'true';
      else if (i + 1 < argv.length) v = argv[++i]!;
      else throw new UsageError(`flag needs an argument: ${flag}`);
    }
    switch (name) {
      case 'localip':
        for (const raw of v.split(',')) {
          const ip = canonicalIP(raw.trim());
          if (!ip) throw new UsageError(`invalid localip specified - '${raw}'`);
          if (!o.localIPs.includes(ip)) o.localIPs.push(ip);
        }
        break;
      case 'conf': o.conf = v; break;
      case 'dns.port': o.dnsPort = port(flag, v); break;
      case 'upstreamsvc': o.upstreamSvc = v; break;
      case 'resolvconf': o.resolvConf = v; break;
      case 'setupinterface': o.setupInterface = boolValue(flag, v); break;
      case 'interfacename': o.interfaceName = v; break;
      case 'setupiptables': o.setupIptables = boolValue(flag, v); break;
      case 'skipteardown': o.skipTeardown = boolValue(flag, v); break;
      case 'health-port': o.healthPort = port(flag, v); break;
      case 'pidfile': o.pidfile = v; break;
      case 'help': case 'h': o.help = boolValue(flag, v); break;
      case 'mode':
        if (v !== 'iptables' && v !== 'nftables') throw new UsageError(`${flag}: '${v}' is not supported (iptables, nftables)`);
        o.mode = v;
        break;
      case 'syncinterval':
        try {
          // node-cache's flag is a Go duration; a bare number is taken as seconds, as its help text says.
          o.syncIntervalMs = /^\d+$/.test(v) ? Number(v) * 1000 : parseDuration(v);
        } catch (e) {
          throw new UsageError(`invalid value '${v}' for flag ${flag}: ${(e as Error).message}`);
        }
        if (o.syncIntervalMs < 100) throw new UsageError(`${flag}: must be at least 100ms, got '${v}'`);
        break;
      default: throw new UsageError(`flag provided but not defined: ${flag}`);
    }
  }
  if (!o.help && !o.localIPs.length) throw new UsageError('-localip is required');
  if (o.interfaceName.length > 15 || !/^[\w.-]+$/.test(o.interfaceName)) throw new UsageError(`-interfacename: '${o.interfaceName}' is not an interface name (at most 15 characters)`);
  return o;
}

export async function runNodecache(argv: string[]): Promise<number> {
  let o: NodecacheOptions;
  try {
    o = parseNodecacheArgs(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`clusterdns nodecache: ${e.message}\n${USAGE}`);
    return 2;
  }
  if (o.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const metrics = new NodecacheMetrics(registry);
  const rules = buildRules({ localIPs: o.localIPs, dnsPort: o.dnsPort, healthPort: o.healthPort });
  const agent = new NodecacheAgent({
    link: o.setupInterface ? new LocalInterface(o.interfaceName, o.localIPs, runCommand, log) : null,
    backend: o.setupIptables ? (o.mode === 'nftables' ? new NftablesRules(runCommand) : new IptablesRules(runCommand)) : null,
    rules, syncIntervalMs: o.syncIntervalMs, log, metrics,
  });
  const clusterDNSVar = serviceHostVar(o.upstreamSvc);
  const server = new DnsServer({
    conf: o.conf, dnsPort: o.dnsPort,
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
