import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { isIPv6 } from 'node:net';
import { dirname, isAbsolute, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { Cluster, KubeConfig, User } from '@kubernetes/client-node';

/**
 * Where the API server is and how to authenticate to it, from `kubeconfig`, `endpoint` + `tls`, or the
 * pod's service account.
 *
 * Why not the library's KubeConfig for everything: the package's only public entry statically imports
 * the whole generated API client, which costs ~75 MB of RSS and ~2 s at start-up (measured: 41 -> 113-121
 * MB, 1.7-2.1 s), more than the records of a 10k-service cluster. Its light modules (kubeconfig entry
 * parsing, ExecAuth, FileAuth) are not exported, and importing them by path breaks the day the package
 * adds an exports map. So the common cases are done here on the library's public Cluster and User types:
 * kubeconfig entries parsed as its config_types does, tokens, token files (re-read every minute, as the
 * service account token rotates), client certificates. What needs more (exec credential plugins,
 * proxy-url, the azure/gcp/oidc auth-provider plugins) is handed to the full KubeConfig, imported only
 * when such a kubeconfig is used.
 */
export interface ApiAccess {
  /** API server URL, as configured. */
  readonly server: string;
  /** Adds TLS material, an agent and credentials for one request (may run an exec plugin). */
  applyToHTTPSOptions(opts: https.RequestOptions): Promise<void>;
}

/** The `kubernetes` block's options that say where the API server is. */
export interface ApiAccessConfig {
  /** `kubeconfig FILE [CONTEXT]`; wins over `endpoint`. Neither set: in-cluster service account. */
  kubeconfig?: string;
  context?: string;
  /** `endpoint URL` (only the first one, like CoreDNS). */
  endpoint?: string;
  /** `tls CERT KEY CACERT` for `endpoint`: file paths. */
  tls?: { cert: string; key: string; ca: string };
}

const SERVICEACCOUNT = '/var/run/secrets/kubernetes.io/serviceaccount';
/** Auth-provider plugins only the full library implements. */
const LIBRARY_AUTH_PROVIDERS = new Set(['azure', 'gcp', 'oidc']);
/** client-go and the library re-read a token file this often. */
const TOKEN_FILE_REREAD_MS = 60_000;

/** The library's FileAuth: a token file read at most once a minute. */
class TokenFile {
  private token = '';
  private readAt = -Infinity;

  constructor(private readonly path: string) {}

  get(): string {
    if (Date.now() - this.readAt > TOKEN_FILE_REREAD_MS) {
      this.token = readFileSync(this.path, 'utf8');
      this.readAt = Date.now();
    }
    return this.token;
  }
}

/** KubeConfig.applyToHTTPSOptions for the common cases, on the library's Cluster and User shapes. */
class KubeconfigAccess implements ApiAccess {
  private readonly tokenFile?: TokenFile;

  constructor(private readonly cluster: Cluster, private readonly user: User | undefined) {
    const file = (user?.authProvider as { config?: { tokenFile?: unknown } } | undefined)?.config?.tokenFile;
    if (typeof file === 'string' && file) this.tokenFile = new TokenFile(file);
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
      if (this.tokenFile) headers.Authorization = `Bearer ${this.tokenFile.get()}`;
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

/** The full library (public entry), imported on first use, for kubeconfigs needing what KubeconfigAccess leaves out. */
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
  const provider = user?.authProvider as { name?: unknown; config?: { exec?: unknown } } | undefined;
  const execPlugin = !!user?.exec || provider?.name === 'exec' || !!provider?.config?.exec;
  const libraryProvider = typeof provider?.name === 'string' && LIBRARY_AUTH_PROVIDERS.has(provider.name);
  if (cluster.proxyUrl || execPlugin || libraryProvider) return new LibraryAccess(cluster, user);
  return new KubeconfigAccess(cluster, user);
}

type Fields = Record<string, unknown>;

/**
 * One kubeconfig list (`clusters`, `users`, `contexts`): each entry's name and body (`cluster:`, ...),
 * with the library's checks and messages (`clusters[0].cluster.server is missing`).
 */
function entries(doc: Fields, list: string, body: string, required?: string): { name: string; f: Fields }[] {
  const a = doc[list];
  if (!Array.isArray(a)) return [];
  return a.map((e: Fields | null, i) => {
    if (!e?.name) throw new Error(`${list}[${i}].name is missing`);
    const f = e[body] as Fields | undefined;
    if (required && !f) throw new Error(`${list}[${i}].${body} is missing`);
    if (required && !f![required]) throw new Error(`${list}[${i}].${body}.${required} is missing`);
    return { name: String(e.name), f: f ?? {} };
  });
}

const text = (v: unknown): string | undefined => (v === undefined || v === null ? undefined : String(v));

/** The library's newClusters / newUsers / newContexts: kubeconfig keys onto its public Cluster and User fields. */
function parseKubeconfig(doc: Fields): { clusters: Cluster[]; users: User[]; contexts: { name: string; cluster: string; user?: string }[] } {
  const clusters = entries(doc, 'clusters', 'cluster', 'server').map(({ name, f }): Cluster => ({
    name, server: String(f.server).replace(/\/$/, ''), caData: text(f['certificate-authority-data']),
    caFile: text(f['certificate-authority']), skipTLSVerify: f['insecure-skip-tls-verify'] === true,
    tlsServerName: text(f['tls-server-name']), proxyUrl: text(f['proxy-url']),
  }));
  const users = entries(doc, 'users', 'user').map(({ name, f }): User => ({
    name, authProvider: f['auth-provider'], exec: f.exec, certData: text(f['client-certificate-data']),
    certFile: text(f['client-certificate']), keyData: text(f['client-key-data']), keyFile: text(f['client-key']),
    username: text(f.username), password: text(f.password), impersonateUser: text(f.as),
    token: text(f.token) || (f['token-file'] ? readFileSync(String(f['token-file']), 'utf8') : undefined),
  }));
  const contexts = entries(doc, 'contexts', 'context', 'cluster').map(({ name, f }) => ({ name, cluster: String(f.cluster), user: text(f.user) || undefined }));
  return { clusters, users, contexts };
}

/** KubeConfig.loadFromFile + setCurrentContext, with the library's validation and relative-path rules. */
function fromKubeconfig(file: string, context: string | undefined): ApiAccess {
  const doc = (parseYaml(readFileSync(file, 'utf8')) ?? {}) as Fields;
  const { clusters, users, contexts } = parseKubeconfig(doc);
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
export function loadApiAccess(cfg: ApiAccessConfig): ApiAccess {
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
