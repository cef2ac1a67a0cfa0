import { readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { cidrToReverseZones } from '../../pkg/reverse.js';
import { isCidr, parseHostPort, type HostAndPort } from '../../pkg/ip.js';
import { SetupError, type Directive } from '../../corefile/types.js';
import { logger } from '../../pkg/log.js';
import type { PluginDefinition, SetupContext } from '../../server/types.js';
import { isTapper } from '../interfaces.js';
import { RCODE, rcodeNumber } from '../../server/wire/constants.js';
import { nameToWire } from '../../server/wire/name.js';
import { fqdn } from '../../pkg/zone.js';
import { SetupArgs } from '../../pkg/args.js';
import { DEFAULT_MAX_CONCURRENT, Forward, type ForwardConfig, type Policy } from './forward.js';
import { forwardMetrics } from './metrics.js';
import { tlsFromArgs, type TlsMaterial } from '../../pkg/tls.js';
import { Upstream, type UpstreamOptions } from './upstream.js';

const log = logger('plugin/forward');
const MAX_UPSTREAMS = 15;

interface HostPort extends HostAndPort {
  /** A `tls://` upstream (DNS over TLS, RFC 7858). */
  tls?: boolean;
  /** Its own server name, `tls://IP%NAME[:PORT]`. */
  serverName?: string;
}

/** `nameserver` lines of a resolv.conf (what `forward . /etc/resolv.conf` uses); zone ids (`fe80::1%eth0`) are dropped. */
export function resolvConfNameservers(text: string): HostPort[] {
  const out: HostPort[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (!m) continue;
    const hp = parseHostPort(m[1]!.replace(/%.*$/, ''));
    if (hp) out.push(hp);
  }
  return out;
}

function parseTo(arg: string, line: number, d: Directive, corefile: string): HostPort[] {
  const err = (msg: string) => new SetupError(d.file, line, 'forward', msg);
  const scheme = /^([a-z0-9]+):\/\//i.exec(arg);
  let rest = arg;
  let tls = false;
  let serverName: string | undefined;
  if (scheme) {
    const s = scheme[1]!.toLowerCase();
    if (s === 'https') throw err(`'${arg}': https:// upstreams (DNS over HTTPS) are not supported, use dns:// or tls://`);
    if (s !== 'dns' && s !== 'tls') throw err(`'${s}' is not supported as a destination protocol in forward: ${arg}`);
    rest = arg.slice(scheme[0].length);
    tls = s === 'tls';
    // CoreDNS splitZone: `tls://9.9.9.9%dns.quad9.net:853` names the upstream's TLS server; the port stays after it.
    const sni = tls ? /^(\[?[^%\]]+)%([^:\]]+)\]?(:\d+)?$/.exec(rest) : null;
    if (sni) {
      serverName = sni[2]!;
      rest = (sni[1]!.startsWith('[') ? `${sni[1]}]` : sni[1]!) + (sni[3] ?? '');
    }
  }
  const hp = parseHostPort(rest, tls ? 853 : 53);
  if (hp) {
    if (!Number.isInteger(hp.port) || hp.port < 1 || hp.port > 65535) throw err(`invalid port in upstream '${arg}'`);
    return [tls ? { ...hp, tls, serverName } : hp];
  }
  if (scheme) throw err(`not an IP address: '${arg}'`);
  const path = isAbsolute(arg) ? arg : resolve(dirname(corefile), arg);
  let text: string;
  try {
    if (!statSync(path).isFile()) throw new Error('not a regular file');
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw err(`'${arg}' is not an IP address nor a readable resolv.conf file (${(e as Error).message}); host names are not supported`);
  }
  const found = resolvConfNameservers(text);
  if (!found.length) throw err(`no nameservers found in ${path}`);
  return found;
}

function parseRcodes(args: string[], opt: string, line: number, d: Directive): number[] {
  if (!args.length) throw new SetupError(d.file, line, 'forward', `${opt} needs at least one RCODE`);
  return args.map((a) => {
    const rc = rcodeNumber(a.toUpperCase());
    if (rc === undefined) throw new SetupError(d.file, line, 'forward', `${opt}: '${a}' is not a valid rcode`);
    if (opt === 'failover' && rc === RCODE.NOERROR) throw new SetupError(d.file, line, 'forward', 'failover: NOERROR cannot be used');
    return rc;
  });
}

/** Parses one `forward FROM TO... { ... }` directive. */
export function parseForward(d: Directive, ctx: Pick<SetupContext, 'corefile' | 'block'>): ForwardConfig {
  const err = (line: number, msg: string) => new SetupError(d.file, line, 'forward', msg);
  const [fromArg, ...toArgs] = d.args;
  if (fromArg === undefined || !toArgs.length) throw err(d.line, 'usage: forward FROM TO... (at least one upstream)');
  let from: string;
  if (isCidr(fromArg)) {
    const zones = cidrToReverseZones(fromArg);
    from = zones[0]!;
    if (zones.length > 1) log.warn(`Unsupported CIDR notation: '${fromArg}' expands to multiple zones. Using only '${from}'.`);
  } else {
    from = fqdn(fromArg);
    try { nameToWire(from); } catch (e) { throw err(d.line, `FROM '${fromArg}' is not a valid domain name: ${(e as Error).message}`); }
  }
  const hostPorts: HostPort[] = [];
  const seen = new Set<string>();
  for (const a of toArgs) {
    for (const hp of parseTo(a, d.line, d, ctx.corefile)) {
      const k = `${hp.tls ? 'tls' : 'dns'}|${hp.host}|${hp.port}`;
      if (!seen.has(k)) { seen.add(k); hostPorts.push(hp); }
    }
  }
  if (hostPorts.length > MAX_UPSTREAMS) throw err(d.line, `more than ${MAX_UPSTREAMS} TOs configured: ${hostPorts.length}`);

  const up: UpstreamOptions = {
    readTimeoutMs: 2000, expireMs: 10_000, hcIntervalMs: 500, hcRecursionDesired: true, hcDomain: '.', hcTransport: 'udp',
  };
  const cfg: Omit<ForwardConfig, 'upstreams'> = {
    from, except: [], policy: 'random', maxFails: 2, forceTcp: false, preferUdp: false, maxConcurrent: DEFAULT_MAX_CONCURRENT,
    next: [], failover: [], hasNextForward: false,
  };
  let tlsMaterial: TlsMaterial | undefined;
  let tlsServerName: string | undefined;
  const a = new SetupArgs('forward');
  for (const c of d.children) {
    const e = (msg: string) => a.error(c, msg);
    a.noBlock(c);
    if (c.name !== 'except') a.once(c);
    switch (c.name) {
      case 'except':
        cfg.except.push(...a.zones(c, a.count(c, 1, Infinity, 'one or more domain names')));
        break;
      case 'force_tcp': a.count(c, 0); cfg.forceTcp = true; break;
      case 'prefer_udp': a.count(c, 0); cfg.preferUdp = true; break;
      case 'max_fails':
        cfg.maxFails = a.uint(c, a.count(c, 1, 1, 'INTEGER')[0]);
        break;
      case 'max_concurrent':
        cfg.maxConcurrent = a.uint(c, a.count(c, 1, 1, 'INTEGER')[0]);
        if (cfg.maxConcurrent === 0) throw e('max_concurrent can\'t be zero');
        break;
      case 'expire':
        up.expireMs = a.duration(c, a.count(c, 1, 1, 'DURATION')[0]!);
        break;
      case 'read_timeout':
        up.readTimeoutMs = a.duration(c, a.count(c, 1, 1, 'DURATION')[0]!, 1);
        break;
      case 'policy':
        if (c.args.length !== 1 || !['random', 'round_robin', 'sequential'].includes(c.args[0]!)) {
          throw e(`unknown policy '${c.args.join(' ')}' (want random, round_robin or sequential)`);
        }
        cfg.policy = c.args[0] as Policy;
        break;
      case 'health_check': {
        const [dur, ...rest] = a.count(c, 1, Infinity, 'DURATION [no_rec] [domain NAME]');
        const ms = a.duration(c, dur!);
        // A zero interval would probe a dead upstream in a tight loop; CoreDNS's 0 has the same effect.
        up.hcIntervalMs = Math.max(ms, 100);
        for (let i = 0; i < rest.length; i++) {
          if (rest[i] === 'no_rec') up.hcRecursionDesired = false;
          else if (rest[i] === 'domain') {
            const name = rest[++i];
            if (name === undefined) throw e('health_check: domain needs a name');
            try { nameToWire(fqdn(name)); } catch { throw e(`health_check: invalid domain name ${name}`); }
            up.hcDomain = fqdn(name);
          } else throw e(`health_check: unknown option ${rest[i]}`);
        }
        break;
      }
      case 'next': cfg.next = parseRcodes(c.args, 'next', c.line, d); break;
      case 'failover': cfg.failover = parseRcodes(c.args, 'failover', c.line, d); break;
      case 'tls':
        try {
          tlsMaterial = tlsFromArgs(a.count(c, 0, 3, '[CERT KEY] [CA]'), dirname(ctx.corefile));
        } catch (err) {
          throw e((err as Error).message);
        }
        break;
      case 'tls_servername':
        tlsServerName = a.count(c, 1, 1, 'NAME')[0]!;
        break;
      default:
        throw e(`unknown property '${c.name}'`);
    }
  }
  if (cfg.forceTcp) up.hcTransport = 'tcp';
  const forwards = ctx.block.filter((b) => b.name === 'forward');
  cfg.hasNextForward = forwards.indexOf(d) < forwards.length - 1;
  const tlsCtx = tlsMaterial?.context ?? (hostPorts.some((hp) => hp.tls) ? tlsFromArgs([], '').context : undefined);
  const upstreams = hostPorts.map((hp) => {
    if (!hp.tls) return new Upstream(hp.host, hp.port, up);
    if (hp.serverName && tlsServerName) {
      throw err(d.line, `both forward ('${tlsServerName}') and proxy level ('${hp.serverName}') TLS servernames are set for upstream proxy '${hp.host}'`);
    }
    return new Upstream(hp.host, hp.port, { ...up, tls: { secureContext: tlsCtx!, servername: hp.serverName ?? tlsServerName } });
  });
  return { ...cfg, upstreams };
}

export const definition: PluginDefinition = {
  name: 'forward',
  setup(d, ctx) {
    // dnstap runs before forward (plugin.cfg), so the block's dnstap lines are set up by now.
    return new Forward(parseForward(d, ctx), forwardMetrics(ctx.shared.registry), ctx.instances.filter(isTapper));
  },
};
