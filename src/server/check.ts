/**
 * `clusterdns check`: sets up every plugin of a Corefile (or of the Corefile inside a CoreDNS ConfigMap)
 * without opening DNS ports, and lists every directive that would not load, not only the first.
 */
import { readFileSync } from 'node:fs';
import { corefileFromConfigMap } from '../corefile/configmap.js';
import { tokenize } from '../corefile/lexer.js';
import { CorefileError, SetupError } from '../corefile/types.js';
import { createRegistry } from '../pkg/metrics.js';
import { closePlugins, loadConfig } from './config.js';
import { SharedHttp } from './http.js';
import type { PluginDefinitions } from './types.js';

export interface CheckReport {
  /** What was checked: the file, or `FILE (ConfigMap ns/name, lines A-B)`. */
  source: string;
  /** One line per directive that would not load, `FILE:LINE - Error during ...: why`, in the order found. */
  problems: string[];
  /** Server blocks that set up once the failing directives were left out. */
  blocks: number;
}

/** CoreDNS's plugin.cfg: an unknown directive among these is a real plugin missing here, not a typo. */
const COREDNS_PLUGINS = new Set([
  'root', 'metadata', 'geoip', 'cancel', 'tls', 'quic', 'timeouts', 'multisocket', 'reload', 'nsid', 'bufsize', 'bind',
  'debug', 'trace', 'ready', 'health', 'pprof', 'prometheus', 'errors', 'log', 'dnstap', 'local', 'dns64', 'acl', 'any',
  'chaos', 'loadbalance', 'tsig', 'cache', 'rewrite', 'header', 'dnssec', 'autopath', 'minimal', 'template', 'transfer',
  'hosts', 'route53', 'azure', 'clouddns', 'k8s_external', 'kubernetes', 'file', 'auto', 'secondary', 'etcd', 'loop',
  'forward', 'grpc', 'erratic', 'whoami', 'on', 'sign', 'view', 'nomad',
]);

/** Each failing directive is taken out and the rest set up again, so one bad line does not hide the next. */
const MAX_ROUNDS = 200;

export async function checkCorefile(opts: { file: string; text?: string; dnsPort?: number; plugins: PluginDefinitions }): Promise<CheckReport> {
  const raw = opts.text ?? readFileSync(opts.file, 'utf8');
  const cm = corefileFromConfigMap(raw, opts.file);
  const file = cm?.file ?? opts.file;
  const source = cm ? `${opts.file} (ConfigMap ${cm.name}${cm.lines ? `, lines ${cm.lines[0]}-${cm.lines[1]}` : ''})` : opts.file;
  let text = cm?.text ?? raw;
  const problems: string[] = [];
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const http = new SharedHttp();
    try {
      const config = await loadConfig({
        file, text, dnsPort: opts.dnsPort, plugins: opts.plugins, shared: {
          http, registry: createRegistry(), readiness: () => [], shuttingDown: () => false, setLameduck: () => {}, requestReload: () => {},
          resolve: () => Promise.reject(new Error('no queries during check')), checkOnly: true,
        },
      });
      await closePlugins(config.blocks);
      return { source, problems, blocks: config.blocks.length };
    } catch (e) {
      const unknown = e instanceof CorefileError && e.file === file && /Unknown directive/.test(e.message) ? directiveAt(text, e.line) : undefined;
      problems.push(unknown && COREDNS_PLUGINS.has(unknown)
        ? `${(e as Error).message}: CoreDNS has this plugin, clusterdns does not (see "How it compares with CoreDNS" in the README)`
        : (e as Error).message);
      // Only a place in this very text can be left out; an error in an imported file ends the check here.
      const at = e instanceof CorefileError || e instanceof SetupError ? e : undefined;
      const next = at && at.file === file ? withoutDirectiveAt(text, at.line) : undefined;
      if (next === undefined) return { source, problems, blocks: 0 };
      text = next;
    } finally {
      http.discard();
    }
  }
  return { source, problems, blocks: 0 };
}

function directiveAt(text: string, line: number): string | undefined {
  return tokenize(text).find((t) => t.line === line)?.text;
}

/**
 * `text` with the directive that starts on `line` blanked out, its `{ ... }` block included; line numbers of
 * everything else stay put. `undefined` when nothing starts on that line.
 */
export function withoutDirectiveAt(text: string, line: number): string | undefined {
  const tokens = tokenize(text);
  const first = tokens.findIndex((t) => t.line === line);
  if (first < 0) return undefined;
  let last = line;
  let i = first;
  while (i + 1 < tokens.length && tokens[i + 1]!.line === line) i++;
  if (tokens[i]!.text === '{') {
    let depth = 1;
    while (depth > 0 && ++i < tokens.length) {
      if (tokens[i]!.text === '{') depth++;
      else if (tokens[i]!.text === '}') depth--;
    }
    if (depth > 0) return undefined;
    last = tokens[i]!.line;
  }
  const lines = text.split('\n');
  for (let n = line; n <= last; n++) lines[n - 1] = '';
  return lines.join('\n');
}
