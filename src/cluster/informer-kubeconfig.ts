import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { isIPv6 } from 'node:net';
import { dirname, isAbsolute, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Authenticator } from '@kubernetes/client-node/dist/auth.js';
import { newClusters, newContexts, newUsers, type Cluster, type User } from '@kubernetes/client-node/dist/config_types.js';
import { ExecAuth } from '@kubernetes/client-node/dist/exec_auth.js';
import { FileAuth } from '@kubernetes/client-node/dist/file_auth.js';
import type { ApiSourceConfig } from './informers.js';

/**
 * Where the API server is and how to authenticate to it, from `kubeconfig`, `endpoint` + `tls`, or the
 * pod's service account.
 *
 * Why not the library's KubeConfig for everything: its module (config.js) statically imports the whole
 * generated API client, which costs ~65 MB of RSS and 0.6–2.7 s at start-up, more than the records of a
 * 10k-service cluster. The library's own light modules do the work here instead (no exports map, so its
 * dist files are imported directly): config_types parses and validates the kubeconfig entries exactly as
 * KubeConfig does, ExecAuth runs credential plugins, FileAuth re-reads token files (the service account
 * token rotates). What those do not cover (proxy-url, the azure/gcp/oidc auth-provider plugins) is
 * handed to the full KubeConfig, loaded only when such a kubeconfig is used.
 */
export interface ApiAccess {
  /** API server URL, as configured. */
  readonly server: string;
  /** Adds TLS material, an agent and credentials for one request (may run an exec plugin). */
  applyToHTTPSOptions(opts: https.RequestOptions): Promise<void>;
}

const SERVICEACCOUNT = '/var/run/secrets/kubernetes.io/serviceaccount';
/** Auth-provider plugins only the full library implements. */
const LIBRARY_AUTH_PROVIDERS = new Set(['azure', 'gcp', 'oidc']);

/** KubeConfig.applyToHTTPSOptions for the common cases, on the library's parsed Cluster and User. */
class KubeconfigAccess implements ApiAccess {
  /** Created once: ExecAuth caches credentials until they expire, FileAuth re-reads its file every minute. */
  private readonly authenticator?: Authenticator;

  constructor(private readonly cluster: Cluster, private readonly user: User | undefined) {
    if (!user) return;
    const provider = user.authProvider as { config?: { exec?: unknown; tokenFile?: unknown } } | undefined;
    // The library's precedence: exec plugins before token files.
    if (user.exec || (user.authProvider as { name?: unknown } | undefined)?.name === 'exec' || provider?.config?.exec) this.authenticator = new ExecAuth();
    else if (provider?.config?.tokenFile) this.authenticator = new FileAuth();
  }

  get server(): string {
    return this.cluster.server;
  }

  async applyToHTTPSOptions(opts: https.RequestOptions): Promise<void> {
    const { cluster, user } = this;
    if (cluster.skipTLSVerify) opts.rejectUnauthorized = false;
    if (cluster.tlsServerName) opts.servername = cluster.tlsServerName;
    const ca = fileOrData(cluster.caFile, cluster.caData);
    if (ca) opts.ca = ca;
    if (user) {
      const cert = fileOrData(user.certFile, user.certData);
      if (cert) opts.cert = cert;
      const key = fileOrData(user.keyFile, user.keyData);
      if (key) opts.key = key;
      const headers = (opts.headers ??= {}) as http.OutgoingHttpHeaders;
      if (user.impersonateUser) headers['Impersonate-User'] = user.impersonateUser;
      await this.authenticator?.applyAuthentication(user, opts);
      if (user.token) headers.Authorization = `Bearer ${user.token}`;
      if (user.username) opts.auth = `${user.username}:${user.password}`;
    }
    // A fresh agent per request, as the library does: CA and client certificate files are re-read, so
    // rotated ones are picked up.
    opts.agent = cluster.server.startsWith('http:')
      ? new http.Agent()
      : new https.Agent({
        ca: opts.ca, cert: opts.cert, key: opts.key, servername: opts.servername,
        // Unset means Node's default (NODE_TLS_REJECT_UNAUTHORIZED), like the library.
        ...(opts.rejectUnauthorized !== undefined ? { rejectUnauthorized: opts.rejectUnauthorized } : {}),
      });
  }
}

/** The full library, imported on first use, for kubeconfigs needing what KubeconfigAccess leaves out. */
class LibraryAccess implements ApiAccess {
  private kc?: Promise<KubeConfig>;

  constructor(private readonly cluster: Cluster, private readonly user: User | undefined) {}

  get server(): string {
    return this.cluster.server;
  }

  async applyToHTTPSOptions(opts: https.RequestOptions): Promise<void> {
    this.kc ??= import('@kubernetes/client-node').then(({ KubeConfig }) => {
      const kc = new KubeConfig();
      kc.loadFromClusterAndUser(this.cluster, this.user ?? { name: 'none' });
      return kc;
    });
    await (await this.kc).applyToHTTPSOptions(opts);
  }
}

function fileOrData(file: string | undefined, data: string | undefined): Buffer | undefined {
  if (file) return readFileSync(file);
  return data ? Buffer.from(data, 'base64') : undefined;
}

function access(cluster: Cluster, user: User | undefined): ApiAccess {
  // The library refuses plain http unless TLS verification is off; refusing here names the config at start-up.
  if (cluster.server.startsWith('http:') && !cluster.skipTLSVerify) {
    throw new Error(`cluster "${cluster.name}": ${cluster.server} is plain http, which needs insecure-skip-tls-verify: true`);
  }
  const provider = (user?.authProvider as { name?: unknown } | undefined)?.name;
  if (cluster.proxyUrl || (typeof provider === 'string' && LIBRARY_AUTH_PROVIDERS.has(provider))) return new LibraryAccess(cluster, user);
  return new KubeconfigAccess(cluster, user);
}

/** KubeConfig.loadFromFile + setCurrentContext, with the library's validation and relative-path rules. */
function fromKubeconfig(file: string, context: string | undefined): ApiAccess {
  const doc = (parseYaml(readFileSync(file, 'utf8')) ?? {}) as Record<string, unknown>;
  const clusters = newClusters(doc.clusters);
  const contexts = newContexts(doc.contexts);
  const users = newUsers(doc.users);
  const root = dirname(file);
  const absolute = (p: string) => (isAbsolute(p) ? p : join(root, p));
  for (const c of clusters) if (c.caFile) c.caFile = absolute(c.caFile);
  for (const u of users) {
    if (u.certFile) u.certFile = absolute(u.certFile);
    if (u.keyFile) u.keyFile = absolute(u.keyFile);
  }
  const name = context ?? doc['current-context'];
  const ctx = contexts.find((c) => c.name === name);
  if (context && !ctx) throw new Error(`no context named "${context}" (have: ${contexts.map((c) => c.name).join(', ') || 'none'})`);
  const cluster = ctx && clusters.find((c) => c.name === ctx.cluster);
  if (!cluster) throw new Error('the current context names no cluster');
  return access(cluster, ctx.user ? users.find((u) => u.name === ctx.user) : undefined);
}

/** KubeConfig.loadFromCluster: the API service from the environment, the pod's service account. */
function inCluster(): ApiAccess {
  const host = process.env.KUBERNETES_SERVICE_HOST;
  const port = process.env.KUBERNETES_SERVICE_PORT;
  if (!host || !existsSync(`${SERVICEACCOUNT}/token`)) {
    throw new Error('not running in a Kubernetes pod (no KUBERNETES_SERVICE_HOST or service account token): set kubeconfig or endpoint');
  }
  const scheme = port === '80' || port === '8080' || port === '8001' ? 'http' : 'https';
  return access(
    { name: 'inCluster', server: `${scheme}://${isIPv6(host) ? `[${host}]` : host}:${port}`, caFile: `${SERVICEACCOUNT}/ca.crt`, skipTLSVerify: scheme === 'http' },
    { name: 'inClusterUser', authProvider: { name: 'tokenFile', config: { tokenFile: `${SERVICEACCOUNT}/token` } } },
  );
}

/** `kubeconfig FILE [CONTEXT]`, else `endpoint URL` (+ `tls`), else the pod's service account. */
export function loadApiAccess(cfg: Pick<ApiSourceConfig, 'kubeconfig' | 'context' | 'endpoint' | 'tls'>): ApiAccess {
  if (cfg.kubeconfig) {
    try {
      return fromKubeconfig(cfg.kubeconfig, cfg.context);
    } catch (err) {
      throw new Error(`kubeconfig ${cfg.kubeconfig}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  if (cfg.endpoint) {
    let url: URL;
    try {
      url = new URL(cfg.endpoint);
    } catch {
      throw new Error(`endpoint ${cfg.endpoint}: not a URL`);
    }
    return access(
      // Plain http (kubectl proxy) has no TLS to verify.
      { name: 'endpoint', server: cfg.endpoint, skipTLSVerify: url.protocol === 'http:', ...(cfg.tls ? { caFile: cfg.tls.ca } : {}) },
      { name: 'endpoint', ...(cfg.tls ? { certFile: cfg.tls.cert, keyFile: cfg.tls.key } : {}) },
    );
  }
  return inCluster();
}
