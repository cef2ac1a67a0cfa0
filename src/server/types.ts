import type { Directive, ServerAddress } from '../corefile/types.js';
import type { Registry } from '../pkg/metrics.js';
import type { Peer } from './listeners.js';
import type { Message } from './wire/message.js';
import type { ParsedQuery } from './wire/query.js';

/** A query as a plugin sees it: the parsed question plus where it came from and which block took it. */
export interface Query extends ParsedQuery {
  proto: 'udp' | 'tcp';
  remoteAddress: string;
  remotePort: number;
  /** 1 = IPv4, 2 = IPv6 (CoreDNS's `family` label). */
  family: 1 | 2;
  /** `dns://:53` style listener name (CoreDNS's `server` label). */
  server: string;
  /** The server-block zone that matched (lower-case FQDN). */
  zone: string;
  /** performance.now() at arrival. */
  start: number;
  /** Set on the queries the server asks itself (`SharedServices.resolve`); undefined for a client's query. */
  reentry?: Reentry;
}

/**
 * Where a query the server asks itself stands: how many re-entries deep it is (1 = asked while answering a
 * client's query) and the failure shared by every query of that client's tree once one went too deep.
 */
export interface Reentry {
  depth: number;
  root: { error?: ReentryError };
}

/**
 * What a plugin chain produced. A reply with neither `msg` nor `wire` means "nobody wrote an answer":
 * the server writes an empty response with `rcode` (CoreDNS does the same for SERVFAIL/REFUSED/...).
 *
 * `msg` is treated as immutable once returned: the server memoises its encoding on it, so a plugin may
 * return the same Message object for every identical question. `wire` is a complete encoded response;
 * the server patches ID, RD/CD/RA and the question bytes (to echo the asker's letter case), and adds,
 * strips or truncates OPT/records to fit the asker.
 */
export interface Reply {
  rcode: number;
  msg?: Message;
  wire?: Buffer;
  /** Name of the plugin that wrote it (the `plugin` label of coredns_dns_responses_total). */
  plugin?: string;
  /** An RFC 8914 Extended DNS Error info code for the OPT of the response, if the query had EDNS (acl, template). */
  ede?: number;
  /** The EXTRA-TEXT of `ede`. */
  edeText?: string;
  /** With neither `msg` nor `wire`: send nothing at all (acl's drop); observers do not see the query. */
  drop?: boolean;
  /**
   * A zone transfer's further messages (RFC 5936), each a complete encoded response like `wire`, made one at a
   * time as the TCP connection drains. Only `transfer` sets it, and only for TCP queries.
   */
  more?: Iterator<Buffer>;
}

export type Next = (q: Query) => Reply | Promise<Reply>;

/**
 * One plugin instance inside one server block. The server runs the block's chain (CoreDNS's
 * ServeDNS/NextOrFailure): `serve` answers or passes on; `answered` and `sent` are how a plugin sees
 * answers without wrapping the chain itself (CoreDNS plugins wrap the ResponseWriter for the same).
 */
export interface Plugin {
  readonly name: string;
  /** Either answer (return a Reply) or pass on with `return next(q)`; absent: always passes on. */
  serve?(q: Query, next: Next): Reply | Promise<Reply>;
  /**
   * The reply the rest of the chain (the plugins after this one) gave for `q`, to keep or replace: the
   * server calls it once that reply exists, whether the chain answered at once or later (cache stores
   * it, loadbalance shuffles it). Not called for replies this plugin's own `serve` returns.
   */
  answered?(q: Query, reply: Reply): Reply;
  /**
   * The bytes the server sent for a query this block answered, and the reply they were rendered from
   * (a chain that threw shows as a bare SERVFAIL): what log and prometheus record. Must not throw.
   */
  sent?(q: Query, wire: Buffer, reply: Reply): void;
  /**
   * True for a plugin that answers AXFR/IXFR (`transfer`): a block without one refuses them before its chain
   * runs, like CoreDNS's zone plugins do without transfer.
   */
  readonly transfers?: boolean;
  /**
   * A server-block filter (CoreDNS's dnsserver.Viewer, the `view` plugin): the block takes a query only when
   * this is true, else routing tries the next block of the zone. Runs before the chain, on every query of
   * the zone, so it must be cheap and must not throw.
   */
  filter?(q: Query, peer: Peer): boolean;
  /** For the `ready` plugin: true once the plugin can answer correctly (e.g. informers synced). */
  ready?(): boolean;
  /** Called once the instance is no longer used (reload, shutdown). */
  close?(): void | Promise<void>;
  /** Called after every block of the config is set up and listeners are open. */
  start?(): void | Promise<void>;
}

/** What a plugin's setup gets besides its own directive. */
export interface SetupContext {
  /** Path of the Corefile (relative paths in plugin args resolve against its directory). */
  corefile: string;
  /** All addresses (zones + port) of the server block. */
  addresses: ServerAddress[];
  /** The block's `view` name ('' without one): the `view` label of the metrics its plugins record. */
  view: string;
  /** The block's zones, lower-case FQDN, in key order. */
  zones: string[];
  /** Listener names of the block, e.g. `dns://:53`. */
  servers: string[];
  /** Directives of the whole block (which plugins the block names). */
  block: Directive[];
  /** Plugin instances of the same block created so far, in execution order (filled as setup runs). */
  peers: Map<string, Plugin>;
  /** Every instance `peers` holds and the repeats it leaves out (a second `file` line), in execution order. */
  instances: readonly Plugin[];
  /**
   * Runs `check` once every plugin of the block is set up, so a plugin can take a peer that comes later
   * in the execution order (k8s_external and autopath use kubernetes); a throw rejects the Corefile.
   */
  afterBlock(check: () => void): void;
  /** Process-wide services shared by all blocks. */
  shared: SharedServices;
}

/** Long-lived process-wide facilities. Kept across reloads so listeners and metrics survive. */
export interface SharedServices {
  /**
   * The server's metrics registry, served by `prometheus`. Plugins define their metrics in it at setup
   * (pkg/metrics metricSet); it outlives reloads, so counters do not reset when the Corefile changes.
   */
  registry: Registry;
  /** Registers an HTTP route on a listen address (`:8080`, `127.0.0.1:18181`); listeners are shared by address. */
  http: HttpRoutes;
  /** Readiness of every plugin of the current config, by plugin name (for `ready`). */
  readiness(): { name: string; ready: boolean }[];
  /** True once SIGTERM arrived (lameduck): `/ready` must fail. */
  shuttingDown(): boolean;
  /** Sets the lameduck duration wanted by `health` (largest wins). */
  setLameduck(ms: number): void;
  /** Asks the process to reload the Corefile now (reload plugin). */
  requestReload(reason: string): void;
  /**
   * A dns query into the current config, used by loop detection and CNAME chasing. `from` is the query being
   * answered: a chain of such re-entries deeper than MAX_REENTRIES rejects with ReentryError at every level
   * (a plugin that catches resolve's errors must rethrow that one), so the client gets SERVFAIL.
   */
  resolve(q: { name: string; type: number; server?: string }, from?: Query): Promise<Message>;
  /** Set by `clusterdns check`: set up to find configuration errors only; this config will never serve. */
  checkOnly?: boolean;
}

export type HttpHandler = (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void | Promise<void>;

export interface HttpRoutes {
  route(address: string, path: string, handler: HttpHandler, owner: string): void;
}

/**
 * An expected failure (an upstream is down, a source is unsynced): the query gets SERVFAIL and the
 * `errors` plugin logs it. Anything else a plugin throws is a bug: counted in coredns_panics_total.
 */
export class PluginError extends Error {
  override name = 'PluginError';
  constructor(readonly plugin: string, message: string) {
    super(message);
  }
}

/**
 * A query went through the server more than MAX_REENTRIES times (CNAMEs or ExternalNames pointing at each
 * other across zones or through `rewrite`): the whole client query fails, like CoreDNS's file plugin does.
 */
export class ReentryError extends PluginError {
  override name = 'ReentryError';
}

/** A plugin as registered in the execution order list (plugin.cfg). */
export interface PluginDefinition {
  name: string;
  /** Once per server block (CoreDNS: "this plugin can only be used once per Server Block"). */
  once?: boolean;
  /** A server-block filter (`view`): its block may share zone and port with others (see Plugin.filter). */
  filter?: boolean;
  setup(d: Directive, ctx: SetupContext): Plugin | Promise<Plugin>;
}

/** Plugin definitions by name, iterated in execution order (plugin.cfg); the entry point hands them to the server. */
export type PluginDefinitions = ReadonlyMap<string, PluginDefinition>;
