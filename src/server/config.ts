import { createHash } from 'node:crypto';
import { parseCorefile, parseServerKey, readConfigFile, validateCorefile } from '../corefile/index.js';
import { CorefileError, SetupError, type Corefile, type ServerAddress, type ServerBlock } from '../corefile/types.js';
import { logger } from '../pkg/log.js';
import { DEFAULT_TCP_LIMITS, type Peer, type TcpLimits, type TlsListen } from './listeners.js';
import { RCODE } from './wire/constants.js';
import type { Next, Plugin, PluginDefinitions, Query, Reply, SetupContext, SharedServices } from './types.js';

const log = logger();

export const DEFAULT_COREFILE = '.:53 {\n    whoami\n    log\n}\n';

/** One server block, set up: its plugins in execution order and the composed chain. */
export interface Block {
  file: string;
  line: number;
  addresses: ServerAddress[];
  zones: string[];
  plugins: Plugin[];
  handler: Next;
  /** The plugins that see every answer sent (`sent`), in execution order. */
  observers: Plugin[];
  /** RA is set when this block can recurse (it has `forward`). */
  ra: boolean;
  /** Header flags every response of the block gets set and cleared last (the `header` plugin's response rules). */
  responseFlags?: FlagRules;
  /** AXFR/IXFR reach the chain (a plugin answers them); else the server refuses them. */
  transfers: boolean;
  /** The block's `view`: it takes a query of its zones only when `filter` passes (CoreDNS's FilterFuncs). */
  filter?: (q: Query, peer: Peer) => boolean;
  /** The view's name ('' without one): the `view` label of metrics. */
  view: string;
}

/** Header bits to set and to clear, as masks of the 16-bit flags word. */
export interface FlagRules { set: number; clear: number }

/**
 * The response rules of every `header` of a block as one: a response passes the later plugin's rules first
 * and the earlier's last (CoreDNS nests their response writers), so the earlier one wins a flag both name.
 */
function blockResponseFlags(plugins: Plugin[]): FlagRules | undefined {
  let out: FlagRules | undefined;
  for (const p of plugins) {
    const inner = (p as { responseFlags?: FlagRules }).responseFlags;
    if (!inner) continue;
    out = out ? { set: out.set | (inner.set & ~out.clear), clear: out.clear | inner.clear } : inner;
  }
  return out;
}

/** Applies `rules` to the flags word of a message in place. */
export function applyFlagRules(msg: Buffer, rules: FlagRules): void {
  msg.writeUInt16BE((msg.readUInt16BE(2) & ~rules.clear) | rules.set, 2);
}

/** Everything listening on one port: which addresses to bind and which block answers which zone. */
export interface PortRoutes {
  port: number;
  /** Addresses to bind; empty = all interfaces. */
  bind: string[];
  /** Listener name for metrics, CoreDNS style `dns://:53` (`tls://:853`). */
  server: string;
  /** `tls`: DNS over TLS on TCP only (a `tls://` block), with the certificate of its `tls` plugin if any. */
  scheme: 'dns' | 'tls';
  tls?: TlsListen;
  zones: Map<string, Block>;
  /**
   * Only on a port where some block has a `view`: every block of each zone in Corefile order, tried in turn
   * (the first whose filter passes, or that has none, takes the query); `zones` then holds no routes.
   */
  views?: Map<string, Block[]>;
  /** TCP deadlines of the port: the `timeouts` plugin of its first block that has one. */
  timeouts: Pick<TcpLimits, 'readMs' | 'writeMs' | 'idleMs'>;
  /** Queries of every class are routed, not only IN: a block on the port has `chaos` or `forward`. */
  anyClass: boolean;
}

export interface Config {
  file: string;
  /** SHA512 of the Corefile text (what the reload plugin compares). */
  sha512: string;
  blocks: Block[];
  ports: PortRoutes[];
}

/** `name` without its first label, honouring escaped dots (`a\.b.example.`); the root's parent is undefined. */
function parentName(name: string): string | undefined {
  if (name === '.') return undefined;
  let i = 0;
  while (i < name.length && name[i] !== '.') i += name[i] === '\\' ? 2 : 1;
  return i + 1 >= name.length ? '.' : name.slice(i + 1);
}

/** Longest-match zone lookup: walks the name's suffixes from the full name to the root. */
export function routeZone(routes: PortRoutes, lname: string): [string, Block] | undefined {
  for (let name: string | undefined = lname; name !== undefined; name = parentName(name)) {
    const b = routes.zones.get(name);
    if (b) return [name, b];
  }
  return undefined;
}

/**
 * routeZone on a port with views (CoreDNS's ServeDNS): at each suffix the zone's blocks are tried in
 * Corefile order and the first that takes `q` wins; when none does, the parent zones are tried next.
 */
export function routeView(views: Map<string, Block[]>, q: Query, peer: Peer): [string, Block] | undefined {
  for (let name: string | undefined = q.lname; name !== undefined; name = parentName(name)) {
    const blocks = views.get(name);
    if (!blocks) continue;
    for (const b of blocks) if (!b.filter || b.filter(q, peer)) return [name, b];
  }
  return undefined;
}

/** RA is set on a block's answers when it can recurse, i.e. it has `forward` (log and prometheus need it too). */
export function blockRecurses(block: { name: string }[]): boolean {
  return block.some((d) => d.name === 'forward');
}

/**
 * CoreDNS refuses every class but IN on a listener unless one of its blocks has a plugin that can answer
 * them (dnsserver.EnableChaos): chaos answers CH itself, forward passes any class on.
 */
export function opensClasses(plugins: { name: string }[]): boolean {
  return plugins.some((p) => p.name === 'chaos' || p.name === 'forward');
}

/**
 * The block's chain as one function: each plugin's `serve` gets the rest of the chain as `next`, with its
 * `answered` applied to what that rest returns. The only place a reply's promise is looked through.
 */
export function composeChain(plugins: Plugin[]): Next {
  // End of the chain: nobody wrote an answer (CoreDNS: "no next plugin found") -> SERVFAIL.
  let next: Next = () => ({ rcode: RCODE.SERVFAIL });
  for (let i = plugins.length - 1; i >= 0; i--) {
    const p = plugins[i]!;
    const below = next;
    const answered = p.answered && ((q: Query, r: Reply) => p.answered!(q, r));
    const after: Next = answered
      ? (q) => {
        const r = below(q);
        return r instanceof Promise ? r.then((x) => answered(q, x)) : answered(q, r);
      }
      : below;
    next = p.serve ? (q) => p.serve!(q, after) : after;
  }
  return next;
}

export interface LoadOptions {
  /** Corefile path; also the base for relative paths in plugin args and imports. */
  file: string;
  /** Text to use instead of reading `file` (tests, the built-in default). */
  text?: string;
  /** Port for keys that name none (`-dns.port`), default 53. */
  dnsPort?: number;
  /** The plugins a Corefile may use, in execution order. */
  plugins: PluginDefinitions;
  shared: SharedServices;
}

export function readCorefile(opts: Pick<LoadOptions, 'file' | 'text'>): { cf: Corefile; text: string } {
  const text = opts.text ?? readConfigFile(opts.file);
  const cf = parseCorefile(text, opts.file);
  return { cf, text };
}

/**
 * Parses, validates and sets up every plugin of a Corefile. Throws CorefileError/SetupError (with
 * file:line) without side effects beyond closing what it had set up, so a failed reload changes nothing.
 */
export async function loadConfig(opts: LoadOptions): Promise<Config> {
  const { cf, text } = readCorefile(opts);
  const defs = opts.plugins;
  validateCorefile(cf, { known: (n) => defs.has(n), once: (n) => !!defs.get(n)?.once, filters: (n) => !!defs.get(n)?.filter }, opts.dnsPort);
  const rank = new Map([...defs.keys()].map((name, i) => [name, i]));
  const blocks: Block[] = [];
  try {
    for (const sb of cf.blocks) blocks.push(await setupBlock(sb, opts, rank));
  } catch (e) {
    await closePlugins(blocks);
    throw e;
  }
  const ports = new Map<number, PortRoutes>();
  const routesOf = new Map<PortRoutes, Map<string, Block[]>>();
  for (const b of blocks) {
    // Several bind lines in a block add up, like CoreDNS.
    const bind = b.plugins.flatMap((p) => (p.name === 'bind' ? (p as { addresses?: string[] }).addresses ?? [] : []));
    const timeouts = (b.plugins.find((p) => p.name === 'timeouts') as { limits?: PortRoutes['timeouts'] } | undefined)?.limits;
    const tls = (b.plugins.find((p) => p.name === 'tls') as { listen?: TlsListen } | undefined)?.listen;
    for (const a of b.addresses) {
      const port = a.port!;
      const scheme = a.scheme as PortRoutes['scheme'];
      let pr = ports.get(port);
      if (pr && pr.scheme !== scheme) {
        throw new CorefileError(b.file, b.line, `cannot serve ${scheme}://${a.zones[0]}:${port} - port ${port} is already served as ${pr.server}`);
      }
      if (scheme === 'tls' && tls && pr && !pr.tls) pr.tls = tls;
      if (!pr) {
        ports.set(port, (pr = {
          port, bind: [...bind], server: `${scheme}://:${port}`, scheme, zones: new Map(), timeouts: timeouts ?? DEFAULT_TCP_LIMITS,
          anyClass: false, ...(scheme === 'tls' && tls ? { tls } : {}),
        }));
      } else if (timeouts && pr.timeouts === DEFAULT_TCP_LIMITS) pr.timeouts = timeouts;
      else if (pr.bind.length && bind.length) pr.bind = [...new Set([...pr.bind, ...bind])];
      else pr.bind = [];
      if (opensClasses(b.plugins)) pr.anyClass = true;
      for (const z of a.zones) {
        // Like CoreDNS, only blocks without a view claim a zone: filtered ones may share it with anything.
        if (!b.filter) {
          if (pr.zones.has(z)) throw new CorefileError(b.file, b.line, `cannot serve ${scheme}://${z}:${port} - it is already defined`);
          pr.zones.set(z, b);
        }
        const all = routesOf.get(pr) ?? new Map<string, Block[]>();
        routesOf.set(pr, all);
        const list = all.get(z);
        if (list?.includes(b)) continue;
        if (b.filter && list?.some((x) => !x.filter)) {
          log.warn(`${b.file}:${b.line}: view ${b.view} never serves ${scheme}://${z}:${port}: a block without view comes first and takes every query (put the catch-all block last)`);
        }
        if (list) list.push(b);
        else all.set(z, [b]);
      }
    }
  }
  // The blocks-in-turn routing only where a view needs it: a port without one keeps the single map lookup.
  for (const [pr, all] of routesOf) {
    if (![...all.values()].some((l) => l.some((b) => b.filter))) continue;
    pr.views = all;
    pr.zones = new Map();
  }
  return { file: opts.file, sha512: createHash('sha512').update(text).digest('hex'), blocks, ports: [...ports.values()] };
}

async function setupBlock(sb: ServerBlock, opts: LoadOptions, rank: Map<string, number>): Promise<Block> {
  const addresses = sb.keys.map((k) => {
    const a = parseServerKey(k, opts.dnsPort ?? 53);
    if (a.scheme !== 'dns' && a.scheme !== 'tls') throw new CorefileError(sb.file, sb.line, `${a.scheme}:// servers are not supported, only dns:// and tls://`);
    return { ...a, port: a.port ?? opts.dnsPort ?? 53 };
  });
  const zones = [...new Set(addresses.flatMap((a) => a.zones))];
  const ordered = [...sb.directives].sort((a, b) => rank.get(a.name)! - rank.get(b.name)!);
  const checks: (() => void)[] = [];
  const plugins: Plugin[] = [];
  const ctx: SetupContext = {
    corefile: opts.file, addresses, zones, servers: [...new Set(addresses.map((a) => `${a.scheme}://:${a.port}`))],
    // The filter's first argument names it (`view NAME`), known before any plugin of the block sets up.
    view: sb.directives.find((d) => opts.plugins.get(d.name)?.filter)?.args[0] ?? '',
    block: sb.directives, peers: new Map(), instances: plugins, shared: opts.shared, afterBlock: (check) => void checks.push(check),
  };
  try {
    for (const d of ordered) {
      const def = opts.plugins.get(d.name)!;
      let p: Plugin;
      try {
        p = await def.setup(d, ctx);
      } catch (e) {
        if (e instanceof SetupError || e instanceof CorefileError) throw e;
        throw new SetupError(d.file, d.line, d.name, (e as Error).message);
      }
      plugins.push(p);
      if (!ctx.peers.has(p.name)) ctx.peers.set(p.name, p);
    }
    for (const check of checks) check();
  } catch (e) {
    await closePlugins([{ plugins } as Block]);
    throw e;
  }
  return {
    file: sb.file, line: sb.line, addresses, zones, plugins, handler: composeChain(plugins), observers: plugins.filter((p) => p.sent),
    ra: blockRecurses(plugins), responseFlags: blockResponseFlags(plugins),
    transfers: plugins.some((p) => p.transfers), filter: blockFilter(plugins), view: ctx.view,
  };
}

/** The block's filter from its `view` plugin (one per block: the plugin is `once`). */
function blockFilter(plugins: Plugin[]): Block['filter'] {
  const v = plugins.find((p) => p.filter);
  return v?.filter!.bind(v);
}

export async function closePlugins(blocks: Pick<Block, 'plugins'>[]): Promise<void> {
  for (const b of blocks) {
    for (const p of b.plugins) {
      try {
        await p.close?.();
      } catch { /* closing is best effort: a plugin that fails to close must not block the others */ }
    }
  }
}

