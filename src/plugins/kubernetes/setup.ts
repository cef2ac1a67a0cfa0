import { existsSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { dirname, resolve } from 'node:path';
import type { ApiSourceConfig } from '../../cluster/api-source.js';
import { canonicalIP } from '../../pkg/ip.js';
import { ManifestSource } from '../../cluster/manifests.js';
import { parseSelector, SelectorError, type LabelSelector } from '../../cluster/selector.js';
import type { ClusterSource } from '../../cluster/source.js';
import { ClusterStore } from '../../cluster/store.js';
import { SetupError, type Directive } from '../../corefile/types.js';
import { SetupArgs } from '../../pkg/args.js';
import { Fall } from '../../pkg/fall.js';
import { logger } from '../../pkg/log.js';
import { searchDomains } from '../../pkg/resolv-conf.js';
import type { PluginDefinition, SetupContext } from '../../server/types.js';
import type { ReflectorOptions } from '../../cluster/reflector.js';
import type { Registry } from '../../pkg/metrics.js';
import { KubernetesPlugin, type KubernetesOptions, type PodMode } from './handler.js';
import { kubernetesMetrics } from './metrics.js';
import { isReverse } from './names.js';

const log = logger('plugin/kubernetes');

/** Where the cluster data comes from: local manifests (embedded default) or the API server. */
export type SourceConfig =
  | { kind: 'manifests'; path: string; intervalMs: number }
  | { kind: 'api'; api: ApiSourceConfig };

export interface KubernetesConfig extends Omit<KubernetesOptions, 'localIPs' | 'hostSearch'> {
  source: SourceConfig;
  startupTimeoutMs: number;
}

/** Parses `kubernetes [ZONES...] { ... }`; every option error names the option and its line. */
export function parseKubernetes(d: Directive, ctx: Pick<SetupContext, 'zones' | 'corefile'>): KubernetesConfig {
  const a = new SetupArgs('kubernetes');
  const failAt = (line: number) => (msg: string): never => {
    throw new SetupError(d.file, line, 'kubernetes', msg);
  };
  const zones = d.args.length > 0 ? a.zones(d) : [...ctx.zones];
  const primaryZone = zones.find((z) => !isReverse(z));
  if (!primaryZone) failAt(d.line)('non-reverse zone name must be used');

  const cfg: KubernetesConfig = {
    zones, primaryZone: primaryZone!, ttl: 5, namespaces: new Set(), namespaceLabels: null, labels: null,
    pods: 'disabled', endpointPodNames: false, noEndpoints: false, fallthrough: Fall.never, ignoreEmptyService: false,
    startupTimeoutMs: 5000, source: { kind: 'api', api: { pods: 'disabled' } },
  };
  const api: ApiSourceConfig = { pods: 'disabled' };
  let manifests: { path: string; intervalMs: number } | null = null;
  const base = dirname(ctx.corefile);
  let labelsText: string | undefined, nsLabelsText: string | undefined;

  for (const c of d.children) {
    const fail = failAt(c.line);
    const args = c.args;
    const count = (min: number, max = min) => a.count(c, min, max);
    const selector = (): [string, LabelSelector] => {
      count(1, Infinity);
      const text = args.join(' ');
      try {
        return [text, parseSelector(text)];
      } catch (e) {
        if (e instanceof SelectorError) fail(`unable to parse ${c.name} selector value: '${text}': ${e.message}`);
        throw e;
      }
    };
    const nonNegative = (parse: (s: string) => number): number => {
      count(1);
      const v = parse(args[0]!);
      if (!Number.isFinite(v) || v < 0) fail(`invalid ${c.name} '${args[0]}': want a number >= 0`);
      return v;
    };
    switch (c.name) {
      case 'endpoint':
        count(1, Infinity);
        if (args.length > 1) log.warn(`multiple endpoints have been deprecated, only the first specified endpoint '${args[0]}' is used`);
        api.endpoint = args[0]!;
        break;
      case 'tls':
        count(3);
        api.tls = { cert: resolve(base, args[0]!), key: resolve(base, args[1]!), ca: resolve(base, args[2]!) };
        break;
      case 'kubeconfig':
        count(1, 2);
        api.kubeconfig = resolve(base, args[0]!);
        if (args[1] !== undefined) api.context = args[1];
        break;
      case 'manifests': {
        count(1, 2);
        const path = resolve(base, args[0]!);
        if (!existsSync(path)) fail(`manifests: ${path} does not exist`);
        manifests = { path, intervalMs: args[1] === undefined ? 1000 : a.duration(c, args[1], 10) };
        break;
      }
      case 'namespaces':
        count(1, Infinity);
        for (const a of args) cfg.namespaces.add(a.toLowerCase());
        break;
      case 'namespace_labels':
        [nsLabelsText, cfg.namespaceLabels] = selector();
        break;
      case 'labels':
        [labelsText, cfg.labels] = selector();
        break;
      case 'pods':
        count(1);
        if (!['disabled', 'insecure', 'verified'].includes(args[0]!)) {
          fail(`wrong value for pods: ${args[0]}, must be one of: disabled, verified, insecure`);
        }
        cfg.pods = args[0] as PodMode;
        break;
      case 'endpoint_pod_names':
        count(0);
        cfg.endpointPodNames = true;
        break;
      case 'ttl':
        cfg.ttl = a.ttl(c, 0, 3600);
        break;
      case 'noendpoints':
        count(0);
        cfg.noEndpoints = true;
        break;
      case 'fallthrough':
        cfg.fallthrough = a.fall(c);
        break;
      case 'ignore':
        count(1);
        if (args[0] !== 'empty_service') fail(`unable to parse ignore value: '${args[0]}'`);
        cfg.ignoreEmptyService = true;
        break;
      case 'startup_timeout':
        cfg.startupTimeoutMs = a.duration(c, count(1)[0]!);
        break;
      case 'apiserver_qps':
        api.qps = nonNegative(Number);
        break;
      case 'apiserver_burst':
        api.burst = nonNegative((s) => (/^\d+$/.test(s) ? Number(s) : NaN));
        break;
      case 'apiserver_max_inflight':
        api.maxInflight = nonNegative((s) => (/^\d+$/.test(s) ? Number(s) : NaN));
        break;
      case 'multicluster':
      case 'zonal':
        fail(`'${c.name}' is not supported by clusterdns (see plugins/kubernetes/README.md)`);
        break;
      default:
        fail(`unknown property '${c.name}'`);
    }
  }
  if (cfg.namespaces.size > 0 && cfg.namespaceLabels) failAt(d.line)('namespaces and namespace_labels cannot both be set');

  if (manifests) {
    cfg.source = { kind: 'manifests', ...(manifests as { path: string; intervalMs: number }) };
  } else {
    api.pods = cfg.pods;
    api.noEndpoints = cfg.noEndpoints;
    api.startupTimeoutMs = cfg.startupTimeoutMs;
    if (cfg.namespaces.size > 0) api.namespaces = [...cfg.namespaces];
    if (labelsText !== undefined) api.labels = labelsText;
    if (nsLabelsText !== undefined) api.namespaceLabels = nsLabelsText;
    cfg.source = { kind: 'api', api };
  }
  return cfg;
}

const isLoopback = (ip: string) => ip === '::1' || ip.startsWith('127.');

/**
 * The server's own addresses, for NS answers: the block's `bind` addresses, else every interface's;
 * loopback never (CoreDNS boundIPs).
 */
export function localAddresses(ctx: Pick<SetupContext, 'peers'>): string[] {
  const bind = (ctx.peers.get('bind') as { addresses?: string[] } | undefined)?.addresses;
  const all = bind ?? Object.values(networkInterfaces()).flatMap((l) => (l ?? []).map((i) => i.address));
  return [...new Set(all.map((a) => canonicalIP(a)).filter((a): a is string => !!a && !isLoopback(a)))];
}

async function startSource(cfg: KubernetesConfig, store: ClusterStore, registry: Registry, tuning: Partial<ReflectorOptions>,
  fail: (msg: string) => never): Promise<ClusterSource> {
  let source: ClusterSource;
  if (cfg.source.kind === 'manifests') {
    source = new ManifestSource(cfg.source.path, { intervalMs: cfg.source.intervalMs, warn: (m) => log.warn(m) });
  } else {
    // Loaded only here: the API source and its HTTP client are not needed by manifests users.
    const { createApiSource } = await import('../../cluster/api-source.js');
    const { programming } = kubernetesMetrics(registry);
    try {
      source = createApiSource({ ...tuning, ...cfg.source.api }, {
        log, registry,
        endpointsProgrammed: (svc, triggerMs) => programming.observe(
          { service_kind: svc.headless ? 'headless_with_selector' : 'cluster_ip' }, Math.max(0, Date.now() - triggerMs) / 1000),
      });
    } catch (e) {
      fail(`cannot use the Kubernetes API: ${(e as Error).message}`);
    }
    log.info(`waiting for ${source!.description} before starting server`);
  }
  // CoreDNS blocks server start until the first sync or startup_timeout (the API source's own bound),
  // then serves what it has.
  await source!.start(store);
  if (!store.synced) log.warn(`starting server with unsynced ${source!.description}`);
  return source!;
}

const usesPodAccount = (cfg: KubernetesConfig) => cfg.source.kind === 'api' && !cfg.source.api.kubeconfig && !cfg.source.api.endpoint;

/**
 * `clusterdns check` runs where the Corefile is written, not in the pod: the pod's service account exists
 * only there, and its absence is no error of the Corefile.
 */
const podAccountUnchecked: ClusterSource = {
  description: "the pod's service account (not checked outside the pod)",
  start: async () => {},
  stop: async () => {},
};

/**
 * The plugin, with reflector timings the Corefile cannot set: a test hands the server a definition
 * with short ones so outage scenarios take seconds.
 */
export function kubernetesDefinition(tuning: Partial<ReflectorOptions> = {}): PluginDefinition {
  return {
    name: 'kubernetes',
    once: true,
    async setup(d, ctx) {
      const cfg = parseKubernetes(d, ctx);
      const store = new ClusterStore();
      const source = ctx.shared.checkOnly && usesPodAccount(cfg)
        ? podAccountUnchecked
        : await startSource(cfg, store, ctx.shared.registry, tuning, (msg) => { throw new SetupError(d.file, d.line, 'kubernetes', msg); });
      const { source: _s, startupTimeoutMs: _t, ...answering } = cfg;
      return new KubernetesPlugin({ ...answering, localIPs: localAddresses(ctx), hostSearch: searchDomains() }, store, source, ctx.shared);
    },
  };
}

export const definition = kubernetesDefinition();
