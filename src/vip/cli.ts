import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Server } from 'node:http';
import { ClusterStore } from '../cluster/store.js';
import type { ClusterSource } from '../cluster/source.js';
import { canonicalCidr, canonicalIP, cidrFamily } from '../pkg/ip.js';
import { tryParseDuration } from '../pkg/duration.js';
import { bool, commandLine, describeFlags, list, parseFlags, text, UsageError, value } from '../pkg/flags.js';
import { logger } from '../pkg/log.js';
import { runCommand } from '../pkg/command.js';
import { nftablesUsable } from './apply-nftables.js';
import { VipMetrics } from './metrics.js';
import { buildModel, type Family } from './model.js';
import { createBackend, VipSyncer, type BackendMode } from './syncer.js';

const log = logger('vip');

const USAGE = `Usage: clusterdns vip [--manifests PATH | --kubeconfig FILE [--context C]] [--node-ip IP]...
         [--cluster-cidr CIDR[,CIDR]] [--masquerade-all] [--sync-period 30s] [--min-sync-period 1s]
         [--once] [--dry-run] [--metrics ADDR] [--cleanup] [--mode iptables|nftables|auto]
         [--hostname-override NAME]

Programs Service virtual IPs like kube-proxy: iptables (and ip6tables) rules, or one nftables table per family.
Without --manifests or --kubeconfig, uses the in-cluster service account. See src/vip/README.md.
`;

const usage = () => `${USAGE}\nFlags:\n${describeFlags(VIP_FLAGS, '--')}`;

export const MODES = ['iptables', 'nftables', 'auto'] as const;
export type Mode = (typeof MODES)[number];

export interface VipOptions {
  manifests?: string;
  kubeconfig?: string;
  context?: string;
  nodeIPs: string[];
  clusterCIDRs: string[];
  masqueradeAll: boolean;
  syncPeriodMs: number;
  minSyncPeriodMs: number;
  once: boolean;
  dryRun: boolean;
  metrics?: string;
  cleanup: boolean;
  mode: Mode;
  nodeName: string;
  help: boolean;
}

/** Go durations as kube-proxy takes them: `30s`, `1m30s`, `500ms`, `1h`. */
export function durationFlag(v: string, flag: string): number {
  const ms = tryParseDuration(v);
  if (ms === undefined || ms < 0) throw new Error(`${flag}: '${v}' is not a duration (like 30s, 500ms, 1m)`);
  return ms;
}

function cidrFlag(v: string, flag: string): string {
  const cidr = canonicalCidr(v);
  if (!cidr) throw new Error(`${flag}: '${v}' is not a CIDR (like 10.244.0.0/16 or fd00:10::/56)`);
  return cidr;
}

function parseNodeIP(v: string, flag: string): string {
  const c = canonicalIP(v);
  if (!c) throw new Error(`${flag}: '${v}' is not an IP address`);
  return c;
}

function parseMode(v: string, flag: string): Mode {
  if (!(MODES as readonly string[]).includes(v)) throw new Error(`${flag}: '${v}' is not supported (supported: ${MODES.join(', ')})`);
  return v as Mode;
}

const VIP_FLAGS = {
  manifests: text('Read Services and EndpointSlices from this manifest file instead of the API', { arg: 'PATH' }),
  kubeconfig: text('kubeconfig to reach the API (default: the in-cluster service account)', { arg: 'FILE' }),
  context: text('Context of the kubeconfig to use', { arg: 'C' }),
  'node-ip': list('This node\'s addresses (NodePorts, local traffic); repeatable, comma-separated', parseNodeIP, { arg: 'IP' }),
  'cluster-cidr': list('Pod CIDRs, at most one per IP family: traffic from outside them to ClusterIPs is masqueraded', cidrFlag, { arg: 'CIDR' }),
  'masquerade-all': bool('Masquerade all traffic to Service VIPs'),
  'sync-period': value('Longest time between full syncs', durationFlag, { arg: 'DURATION', default: 30_000, shown: '30s' }),
  'min-sync-period': value('Shortest time between syncs', durationFlag, { arg: 'DURATION', default: 1000, shown: '1s' }),
  once: bool('Sync once and exit'),
  'dry-run': bool('Print what a full sync would apply and exit'),
  metrics: text('Serve /metrics on this address', { arg: 'ADDR' }),
  cleanup: bool('Remove every rule of the mode and exit'),
  mode: value(`Proxy mode: ${MODES.join(', ')}`, parseMode, { arg: 'MODE', default: 'iptables' as Mode, shown: '"iptables"' }),
  'hostname-override': text('Node name (default: the hostname)', { arg: 'NAME' }),
  help: bool('Show this help', { aliases: ['h'] }),
};

export function parseVipArgs(argv: string[]): VipOptions {
  const { values: f, args } = parseFlags(VIP_FLAGS, argv);
  if (args.length) throw new UsageError(`extra command line arguments: ${args.join(' ')}`);
  const o: VipOptions = {
    manifests: f.manifests, kubeconfig: f.kubeconfig, context: f.context, nodeIPs: [...new Set(f['node-ip'])],
    clusterCIDRs: f['cluster-cidr'], masqueradeAll: f['masquerade-all'], syncPeriodMs: f['sync-period'],
    minSyncPeriodMs: f['min-sync-period'], once: f.once, dryRun: f['dry-run'], metrics: f.metrics, cleanup: f.cleanup,
    mode: f.mode, nodeName: f['hostname-override'] ?? hostname(), help: f.help,
  };
  if (o.manifests && o.kubeconfig) throw new UsageError('--manifests and --kubeconfig exclude each other');
  if (o.context && !o.kubeconfig) throw new UsageError('--context needs --kubeconfig');
  if (o.syncPeriodMs < 1000) throw new UsageError('--sync-period must be at least 1s');
  if (new Set(o.clusterCIDRs.map(cidrFamily)).size !== o.clusterCIDRs.length) {
    throw new UsageError('--cluster-cidr: at most one CIDR per IP family');
  }
  return o;
}

const INSTALL = {
  iptables: 'install the iptables package (nf_tables or legacy backend)',
  nft: 'install the nftables package (nft 1.0.1 or newer)',
};

/** Null when `cmd --version` runs, else what to fix. */
async function missing(cmd: keyof typeof INSTALL): Promise<string | null> {
  try {
    const r = await runCommand(cmd, ['--version']);
    return r.code === 0 ? null : `'${cmd} --version' failed: ${r.stderr.trim()}`;
  } catch {
    return `${cmd} is not installed (or not in PATH): ${INSTALL[cmd]}`;
  }
}

/**
 * The mode to run, or why none can. `auto` prefers nftables when nft exists and the kernel accepts a
 * checked (never committed) scratch transaction using every feature the mode needs.
 */
async function resolveMode(mode: Mode, dryRun: boolean): Promise<BackendMode | string> {
  if (mode !== 'auto') return dryRun ? mode : (await missing(mode === 'nftables' ? 'nft' : 'iptables')) ?? mode;
  if ((await missing('nft')) === null && (await nftablesUsable()) === null) return 'nftables';
  if (dryRun || (await missing('iptables')) === null) return 'iptables';
  return `--mode auto: neither nftables (nft and a kernel accepting the mode) nor iptables is usable: ${INSTALL.nft}`;
}

const CAP_NET_ADMIN = 12n;

function capabilityProblem(): string | null {
  const capEff = /^CapEff:\s*([0-9a-f]+)/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
  if (!capEff || (BigInt(`0x${capEff}`) & (1n << CAP_NET_ADMIN)) === 0n) {
    return 'missing CAP_NET_ADMIN: run as root or grant the capability (containers: securityContext.capabilities.add [NET_ADMIN], hostNetwork)';
  }
  return null;
}

/** IPv6 is programmed when the node can (kube-proxy runs dual-stack whenever the node supports it). */
async function detectFamilies(mode: BackendMode): Promise<Family[]> {
  const v6 = mode === 'nftables'
    ? await runCommand('nft', ['--check', '-f', '-'], 'add table ip6 clusterdns-probe\n').then((r) => r.code === 0, () => false)
    : await runCommand('ip6tables', ['-w', '5', '-t', 'nat', '-S', 'POSTROUTING']).then((r) => r.code === 0, () => false);
  return v6 ? [4, 6] : [4];
}

async function makeSource(o: VipOptions, metrics: VipMetrics): Promise<ClusterSource> {
  if (o.manifests) {
    const { ManifestSource } = await import('../cluster/manifests.js');
    return new ManifestSource(o.manifests, { warn: (m) => log.warn(m) });
  }
  const { createApiSource } = await import('../cluster/api-source.js');
  return createApiSource({ kubeconfig: o.kubeconfig, context: o.context, pods: 'disabled' }, { log, registry: metrics.registry });
}

export async function runVip(argv: string[]): Promise<number> {
  const o = commandLine('clusterdns vip', usage, () => parseVipArgs(argv));
  if (typeof o === 'number') return o;
  // Capabilities first: without CAP_NET_ADMIN even the nftables probe of `auto` fails, for the wrong reason.
  const capability = o.dryRun ? null : capabilityProblem();
  const mode = capability ?? await resolveMode(o.mode, o.dryRun);
  if (mode !== 'iptables' && mode !== 'nftables') {
    log.error(`cannot start: ${mode}`);
    return 1;
  }
  if (o.cleanup) return cleanup(o, mode);

  const metrics = new VipMetrics();
  let server: Server | undefined;
  try {
    // Served before the first listing, so a source that cannot sync shows in its sync-state metric.
    if (o.metrics && !o.dryRun) server = await metrics.listen(o.metrics);
  } catch (e) {
    log.error((e as Error).message);
    return 1;
  }
  try {
    return await withSource(o, metrics, (store) => (o.dryRun ? dryRun(o, store, mode) : program(o, store, mode, metrics)));
  } finally {
    server?.close();
  }
}

/** Starts the cluster source, runs `use` once it has a complete listing, stops it. */
async function withSource(o: VipOptions, metrics: VipMetrics, use: (store: ClusterStore) => number | Promise<number>): Promise<number> {
  const store = new ClusterStore();
  let source: ClusterSource;
  try {
    source = await makeSource(o, metrics);
    await source.start(store);
  } catch (e) {
    log.error(`cannot start the cluster source: ${(e as Error).message}`);
    return 1;
  }
  try {
    if (!store.synced) {
      log.error(`${source.description}: no complete listing yet; refusing to program rules from partial data`);
      return 1;
    }
    return await use(store);
  } finally {
    await source.stop();
  }
}

/** Prints what a first (full) sync would apply, one section per family. */
function dryRun(o: VipOptions, store: ClusterStore, mode: BackendMode): number {
  const snap = store.snapshot();
  for (const family of [4, 6] as const) {
    const model = buildModel(snap, { family, nodeName: o.nodeName });
    if (family === 6 && model.ports.length === 0) continue;
    process.stdout.write(createBackend(mode, family, o).dryRun(model));
  }
  return 0;
}

async function cleanup(o: VipOptions, mode: BackendMode): Promise<number> {
  let status = 0;
  for (const family of await detectFamilies(mode)) {
    try {
      await createBackend(mode, family, o).cleanup();
      log.info(`IPv${family}: removed everything of ${mode} mode`);
    } catch (e) {
      log.error(`IPv${family} cleanup: ${(e as Error).message}`);
      status = 1;
    }
  }
  return status;
}

async function program(o: VipOptions, store: ClusterStore, mode: BackendMode, metrics: VipMetrics): Promise<number> {
  const syncer = new VipSyncer(store, {
    families: await detectFamilies(mode), mode, nodeName: o.nodeName, clusterCIDRs: o.clusterCIDRs, masqueradeAll: o.masqueradeAll,
    nodeIPs: o.nodeIPs, syncPeriodMs: o.syncPeriodMs, minSyncPeriodMs: o.minSyncPeriodMs, log, metrics,
  });
  if (!o.clusterCIDRs.length && !o.masqueradeAll) {
    log.warn('no --cluster-cidr: traffic from outside the cluster to ClusterIPs is not masqueraded');
  }
  if (o.once) return (await syncer.sync(true)) ? 0 : 1;
  syncer.start();
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', () => resolve());
    process.once('SIGINT', () => resolve());
  });
  await syncer.stop();
  return 0;
}
