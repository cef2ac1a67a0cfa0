import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { applyFlagRules, closePlugins, DEFAULT_COREFILE, loadConfig, routeView, routeZone, type Block, type Config, type PortRoutes } from './config.js';
import { SharedHttp } from './http.js';
import { DEFAULT_TCP_LIMITS, DnsListener, Frames, requestsCert, type Answer, type Peer, type TcpLimits } from './listeners.js';
import { logger } from '../pkg/log.js';
import { createRegistry, type Registry } from '../pkg/metrics.js';
import { dnsMetrics, type DnsMetrics } from './metrics.js';
import { errorResponse, headerOnlyResponse, renderReply, responseLimit } from './respond.js';
import { PluginError, ReentryError, type PluginDefinitions, type Query, type Reentry, type Reply, type SharedServices } from './types.js';
import { CLASS, RCODE, SERVER_UDP_SIZE, TYPE } from './wire/constants.js';
import { decodeMessage, encodeMessage, type Message } from './wire/message.js';
import { fqdn } from '../pkg/zone.js';
import { isParseFailure, parseQuery, type ParsedQuery } from './wire/query.js';

const log = logger();

/**
 * Listeners are kept across reloads by this key: plain DNS by address; a `tls://` port also by whether it
 * encrypts and whether it asks for client certificates (both fixed when it opens).
 */
function listenerKey(host: string, pr: PortRoutes): string {
  if (pr.scheme === 'dns') return `${host}|${pr.port}`;
  const kind = !pr.tls ? 'tcp' : requestsCert(pr.tls.clientAuth) ? 'tls+cert' : 'tls';
  return `${kind}|${host}|${pr.port}`;
}

/** One object literal with every field: a single hidden class keeps the plugin chain's property reads fast. */
function toQuery(pq: ParsedQuery, peer: Peer, routes: PortRoutes, zone: string, reentry: Reentry | undefined): Query {
  return {
    id: pq.id, opcode: pq.opcode, rd: pq.rd, cd: pq.cd, name: pq.name, lname: pq.lname, type: pq.type,
    class: pq.class, edns: pq.edns, raw: pq.raw, questionEnd: pq.questionEnd, proto: peer.proto,
    remoteAddress: peer.address, remotePort: peer.port, family: peer.family, server: routes.server, zone,
    start: performance.now(), reentry,
  };
}

/**
 * Deepest chain of queries the server asks itself while answering one query (CoreDNS's file plugin fails the
 * 9th: `loop > 8`). Legitimate CNAME chains through several zones stay far below it; a loop hits it at once.
 */
export const MAX_REENTRIES = 8;

export interface ServerOptions {
  /** Corefile path (default Corefile in the working directory). */
  conf: string;
  /** Corefile text instead of reading `conf` (tests; the built-in default when no Corefile exists). */
  text?: string;
  /** `-dns.port`: port for server keys that name none. */
  dnsPort?: number;
  /** Addresses to listen on for blocks without `bind` (default: all interfaces). */
  bind?: string[];
  /** Rewrites the Corefile text read from `conf` at every (re)load, before parsing (nodecache's placeholders). */
  preprocess?: (text: string) => string;
  /** The plugins a Corefile may use, in execution order (src/plugins/registry.ts for the real ones). */
  plugins: PluginDefinitions;
  /** Open TCP connections per listener (default DEFAULT_TCP_LIMITS.maxConns). */
  maxTcpConns?: number;
  /** Registry for every metric of this server and its plugins (default: a new one). */
  registry?: Registry;
}

/**
 * The running server: current config, its listeners and the process-wide services. Reload builds a
 * complete new config first and swaps it in only when every plugin set up; listeners that stay on the
 * same port are kept, so no query is refused during a reload.
 */
export class DnsServer {
  config: Config | null = null;
  readonly http = new SharedHttp();
  private listeners = new Map<string, DnsListener>();
  private stopping = false;
  private lameduckMs = 0;
  /** Lameduck asked for by the config being set up; becomes lameduckMs only if that config goes live. */
  private stagedLameduckMs = 0;
  private reloading: Promise<boolean> | null = null;
  private text: string | undefined;
  readonly shared: SharedServices;
  readonly registry: Registry;
  private readonly metrics: DnsMetrics;

  constructor(readonly opts: ServerOptions) {
    this.text = opts.text;
    this.registry = opts.registry ?? createRegistry();
    this.metrics = dnsMetrics(this.registry);
    this.shared = {
      registry: this.registry,
      http: this.http,
      readiness: () => (this.config?.blocks ?? []).flatMap((b) => b.plugins)
        .filter((p) => p.ready).map((p) => ({ name: p.name, ready: p.ready!() })),
      shuttingDown: () => this.stopping,
      setLameduck: (ms) => { this.stagedLameduckMs = Math.max(this.stagedLameduckMs, ms); },
      requestReload: (reason) => { log.info(`reload requested: ${reason}`); void this.reload(); },
      resolve: (q, from) => this.resolveInternal(q.name, q.type, q.server, from),
    };
  }

  static withDefaultCorefile(opts: Omit<ServerOptions, 'text'>): DnsServer {
    return new DnsServer({ ...opts, text: DEFAULT_COREFILE });
  }

  /** Loads the config and opens every listener; throws (with file:line) when the Corefile is bad. */
  async start(): Promise<void> {
    const config = await this.load();
    try {
      await this.activate(config);
    } catch (e) {
      await closePlugins(config.blocks);
      this.http.discard();
      throw e;
    }
    for (const b of config.blocks) for (const p of b.plugins) await p.start?.();
  }

  private async load(): Promise<Config> {
    this.stagedLameduckMs = 0;
    try {
      const text = this.text ?? (this.opts.preprocess && this.opts.preprocess(readFileSync(this.opts.conf, 'utf8')));
      return await loadConfig({ file: this.opts.conf, text, dnsPort: this.opts.dnsPort, plugins: this.opts.plugins, shared: this.shared });
    } catch (e) {
      this.http.discard();
      throw e;
    }
  }

  private async activate(config: Config): Promise<void> {
    const wanted = new Map<string, { host: string; pr: PortRoutes }>();
    for (const pr of config.ports) {
      for (const host of pr.bind.length ? pr.bind : this.opts.bind ?? ['0.0.0.0', '::']) wanted.set(listenerKey(host, pr), { host, pr });
    }
    // A port that changes kind (dns:// to tls://, client certificates asked for or not) cannot be opened
    // twice: its old listener goes first.
    const addresses = new Set([...wanted.values()].map((w) => `${w.host}|${w.pr.port}`));
    for (const [key, l] of this.listeners) {
      if (!wanted.has(key) && addresses.has(`${l.host}|${l.port}`)) {
        this.listeners.delete(key);
        await l.close();
      }
    }
    const opened: DnsListener[] = [];
    try {
      for (const [key, { host, pr }] of wanted) {
        if (this.listeners.has(key)) continue;
        // A `tls://` block without the `tls` plugin: CoreDNS then serves DNS over plain TCP (server_tls.go).
        if (pr.scheme === 'tls' && !pr.tls) log.warn(`${pr.server}: no tls plugin in the server block: serving unencrypted DNS over TCP on ${host}:${pr.port}, as CoreDNS does`);
        const l = new DnsListener(host, pr.port, () => null, this.limitsOf(pr), pr.scheme === 'tls' ? { tls: pr.tls } : undefined);
        try {
          await l.open();
        } catch (e) {
          const err = e as NodeJS.ErrnoException;
          // A host without IPv6 still serves IPv4 when the wildcard v6 bind fails.
          if (host === '::' && !pr.bind.length && (err.code === 'EAFNOSUPPORT' || err.code === 'EADDRNOTAVAIL')) continue;
          throw new Error(`listen ${host}:${pr.port}: ${err.message}`);
        }
        opened.push(l);
        this.listeners.set(key, l);
      }
      await this.http.commit();
    } catch (e) {
      for (const l of opened) {
        await l.close();
        for (const [k, v] of this.listeners) if (v === l) this.listeners.delete(k);
      }
      throw e;
    }
    for (const [key, l] of this.listeners) {
      const pr = wanted.get(key)?.pr;
      if (!pr) {
        this.listeners.delete(key);
        await l.close();
        continue;
      }
      l.handler = (buf, peer) => this.handle(buf, peer, pr);
      // New connections get the new deadlines; open ones keep theirs until they close.
      l.limits = this.limitsOf(pr);
      if (pr.tls) l.setTls(pr.tls);
    }
    const old = this.config;
    this.config = config;
    this.lameduckMs = this.stagedLameduckMs;
    for (const b of config.blocks) {
      for (const a of b.addresses) for (const z of a.zones) for (const p of b.plugins) {
        this.metrics.pluginEnabled.set({ server: `${a.scheme}://:${a.port}`, zone: z, view: b.view, name: p.name }, 1);
      }
    }
    if (old) await closePlugins(old.blocks);
  }

  private limitsOf(pr: PortRoutes): TcpLimits {
    return { ...pr.timeouts, maxConns: this.opts.maxTcpConns ?? DEFAULT_TCP_LIMITS.maxConns };
  }

  /** Re-reads the Corefile; on any error logs it, counts it and keeps the running config. */
  reload(): Promise<boolean> {
    if (this.reloading) return this.reloading;
    this.reloading = (async () => {
      try {
        const config = await this.load();
        try {
          await this.activate(config);
        } catch (e) {
          await closePlugins(config.blocks);
          throw e;
        }
        for (const b of config.blocks) for (const p of b.plugins) await p.start?.();
        log.info(`plugin/reload: Running configuration SHA512 = ${config.sha512}`);
        return true;
      } catch (e) {
        this.metrics.reloadFailed.inc();
        log.error(`plugin/reload: Corefile changed but reload failed: ${(e as Error).message}`);
        return false;
      } finally {
        this.reloading = null;
      }
    })();
    return this.reloading;
  }

  /** Port actually bound for a configured port (tests configure port 0). */
  boundPort(configured: number): number | undefined {
    for (const [key, l] of this.listeners) if (key.endsWith(`|${configured}`)) return l.boundPort;
    return undefined;
  }

  /**
   * SIGTERM: fail /ready at once, keep answering for the lameduck duration (so Service endpoints drain),
   * then close everything.
   */
  async stop(opts: { lameduck?: boolean } = {}): Promise<void> {
    this.stopping = true;
    if (opts.lameduck && this.lameduckMs > 0) {
      log.info(`plugin/health: Going into lameduck mode for ${this.lameduckMs / 1000}s`);
      await new Promise((r) => setTimeout(r, this.lameduckMs));
    }
    for (const l of this.listeners.values()) await l.close();
    this.listeners.clear();
    if (this.config) await closePlugins(this.config.blocks);
    this.config = null;
    await this.http.close();
  }

  /** The whole query path for one packet: parse, route, run the chain, render for this asker. */
  handle(buf: Buffer, peer: Peer, routes: PortRoutes, reentry?: Reentry): Answer | Promise<Answer> {
    const pq = parseQuery(buf);
    if (isParseFailure(pq)) {
      if (pq.drop) return null;
      return headerOnlyResponse(pq.id, pq.opcode, pq.rd, pq.rcode);
    }
    if (pq.edns && pq.edns.version > 0) {
      return encodeMessage({
        id: pq.id, rd: pq.rd, rcode: RCODE.BADVERS, question: { name: pq.name, type: pq.type, class: pq.class },
        answer: [], authority: [], additional: [], edns: { udpSize: SERVER_UDP_SIZE, version: 0, do: pq.edns.do },
      });
    }
    const open = pq.class === CLASS.IN || routes.anyClass;
    // A port with views builds the query first: the blocks' filters look at it to pick the route.
    const early = open && routes.views ? toQuery(pq, peer, routes, '', reentry) : undefined;
    const route = !open ? undefined : early ? routeView(routes.views!, early, peer) : routeZone(routes, pq.lname);
    // No zone, a class no block on the port takes, or a zone transfer in a block without `transfer`: REFUSED like CoreDNS.
    if (!route || ((pq.type === TYPE.AXFR || pq.type === TYPE.IXFR) && !route[1].transfers)) return errorResponse(pq, RCODE.REFUSED, false);
    const [zone, block] = route;
    let q: Query;
    if (early) (q = early).zone = zone;
    else q = toQuery(pq, peer, routes, zone, reentry);
    let r: Reply | Promise<Reply>;
    try {
      r = block.handler(q);
    } catch (e) {
      return this.panic(q, e as Error, block);
    }
    if (r instanceof Promise) {
      return r.then((reply) => this.send(q, reply, block), (e: Error) => this.panic(q, e, block));
    }
    return this.send(q, r, block);
  }

  /**
   * The bytes for this asker, rendered once and shown to the block's observers (log, prometheus); a transfer's
   * further messages are rendered the same way as they are written, unseen by the observers (one query, one entry).
   */
  private send(q: Query, reply: Reply, block: Block): Buffer | Frames | null {
    if (!reply.msg && !reply.wire && reply.drop) return null;
    const out = renderReply(q, reply, responseLimit(q, q.proto), block.ra);
    if (block.responseFlags) applyFlagRules(out, block.responseFlags);
    const observers = block.observers;
    for (let i = 0; i < observers.length; i++) observers[i]!.sent!(q, out, reply);
    const more = reply.more;
    if (!more || q.proto !== 'tcp') return out;
    return new Frames(out, {
      next: () => {
        const r = more.next();
        if (r.done) return r;
        const next = renderReply(q, { rcode: reply.rcode, wire: r.value }, responseLimit(q, 'tcp'), block.ra);
        if (block.responseFlags) applyFlagRules(next, block.responseFlags);
        return { value: next };
      },
    });
  }

  private panic(q: Query, e: Error, block: Block): Buffer {
    // Expected failures reach the log through the `errors` plugin, like CoreDNS; only bugs are panics.
    if (!(e instanceof PluginError)) {
      this.metrics.panics.inc();
      log.error(`Recovered from panic in server: "${q.server}" ${q.name} ${e.stack ?? e.message}`);
    }
    const reply: Reply = { rcode: RCODE.SERVFAIL };
    const out = errorResponse(q, reply.rcode, block.ra);
    if (block.responseFlags) applyFlagRules(out, block.responseFlags);
    for (const o of block.observers) o.sent!(q, out, reply);
    return out;
  }

  /**
   * A query from inside the server (CNAME chasing, loop detection), run through the current config. `from`
   * is the query being answered: re-entries are counted along the chain and bounded (see MAX_REENTRIES).
   */
  async resolveInternal(name: string, type: number, server?: string, from?: Query): Promise<Message> {
    const config = this.config;
    if (!config) throw new Error('server is not running');
    const reentry: Reentry = { depth: (from?.reentry?.depth ?? 0) + 1, root: from?.reentry?.root ?? {} };
    if (reentry.depth > MAX_REENTRIES) {
      reentry.root.error ??= new ReentryError('server', `more than ${MAX_REENTRIES} re-entries into the server (a CNAME loop?) at ${fqdn(name)}`);
      throw reentry.root.error;
    }
    const routes = config.ports.find((p) => !server || p.server === server) ?? config.ports[0]!;
    const raw = encodeMessage({
      id: Math.floor(Math.random() * 0xffff), qr: false, rd: true, rcode: 0, question: { name: fqdn(name), type, class: CLASS.IN },
      answer: [], authority: [], additional: [], edns: { udpSize: SERVER_UDP_SIZE, version: 0, do: false },
    });
    // Asked on behalf of `from`'s client, as CoreDNS's upstream.Lookup does: views route it by that client.
    const peer: Peer = from
      ? { proto: 'tcp', address: from.remoteAddress, port: from.remotePort, family: from.family }
      : { proto: 'tcp', address: '127.0.0.1', port: 0, family: 1 };
    const out = await this.handle(raw, peer, routes, reentry);
    // Deeper down the chain went too far: every level fails, whatever its plugins made of it.
    if (reentry.root.error) throw reentry.root.error;
    if (!out) throw new Error(`no answer for internal query ${name}`);
    return decodeMessage(out instanceof Frames ? out.first : out);
  }
}
