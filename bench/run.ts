/**
 * `npm run bench [dns|metrics|cache|ndots|informers|nodecache|soak|vip ...] [--services N] [--endpoints N] [--seconds S] [--rounds R]
 *   [--changes N] [--informer-changes N] [--names N] [--misses N] [--no-workers] [--soak-seconds S] [--soak-heap MB] [--headless N] [--rate QPS]
 *   [--sizes 1000,5000,10000] [--vip-budget S] [--queries N] [--metric-queries N]
 *   [--node LABEL=NODE_BINARY,...]
 *   [--baseline OTHER/dist/src/cli.js]`  (dns: another build measured in the same alternation, for a change's before/after)
 * No suite named = all, about 23 minutes with the defaults, half of it the vip suite's iptables restores at
 * 10k services (`--seconds 10` is the reference protocol of perf-anchors.md; 6 keeps the DNS suites short). Every number is reported next to a reference
 * measured in the same run (this VM is noisy). Each suite stops what it started, also on error and on
 * SIGINT/SIGTERM.
 */
import { benchCache } from './cache.js';
import { benchDns } from './dns.js';
import { benchInformers } from './informers.js';
import { benchMetrics } from './metrics.js';
import { Scope } from './lib.js';
import { benchNdots } from './ndots.js';
import { benchNodecache } from './nodecache.js';
import { benchSoak } from './soak.js';
import { benchVip } from './vip.js';

function opt(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v) || v < 0) throw new Error(`--${name}: '${process.argv[i + 1]}' is not a number`);
  return v;
}

function list(name: string, dflt: number[]): number[] {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? dflt : (process.argv[i + 1] ?? '').split(',').map(Number);
}

/** `--node 20=/usr/bin/node,26=/opt/node-26/bin/node`: label=binary pairs, in table order. */
function nodes(): { label: string; path: string }[] {
  const i = process.argv.indexOf('--node');
  if (i < 0) return [];
  return (process.argv[i + 1] ?? '').split(',').map((pair) => {
    const [label, path] = pair.split('=');
    if (!label || !path) throw new Error(`--node: '${pair}' is not label=path`);
    return { label, path };
  });
}

function text(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? undefined : process.argv[i + 1];
}

const seconds = () => opt('seconds', 6);
const rounds = () => opt('rounds', 3);

/** Suites in run order; a new one is one line here. */
const suites: Record<string, () => Promise<string>> = {
  dns: () => benchDns({
    services: opt('services', 1000), endpoints: opt('endpoints', 10), seconds: seconds(), rounds: rounds(),
    workers: !process.argv.includes('--no-workers'), changes: opt('changes', 5), nodes: nodes(), baseline: text('baseline'),
  }),
  metrics: () => benchMetrics({ queries: opt('metric-queries', 1_000_000), rounds: rounds() }),
  cache: () => benchCache({ names: opt('names', 1000), seconds: seconds(), rounds: rounds(), misses: opt('misses', 300) }),
  ndots: () => benchNdots({ services: opt('services', 1000), names: opt('names', 1000), seconds: seconds(), rounds: rounds() }),
  // The watcher's targets are defined for 10k Services / 100k endpoints and 1000 changes, whatever the dns suite uses.
  informers: () => benchInformers({ services: 10_000, endpoints: 10, changes: opt('informer-changes', 1000) }),
  nodecache: () => benchNodecache({ names: opt('names', 1000), seconds: seconds(), rounds: rounds(), queries: opt('queries', 2000) }),
  soak: () => benchSoak({
    seconds: opt('soak-seconds', 20), services: opt('services', 1000), endpoints: opt('endpoints', 10),
    headless: opt('headless', 3000), rate: opt('rate', 2000), heapMb: opt('soak-heap', 128),
  }),
  vip: () => benchVip({ sizes: list('sizes', [1000, 5000, 10_000]), endpoints: opt('endpoints', 10), budget: opt('vip-budget', 720) }),
};

const named = process.argv.slice(2).filter((a, i, all) => !a.startsWith('--') && !(all[i - 1]?.startsWith('--') && all[i - 1] !== '--no-workers'));
for (const s of named) if (!(s in suites)) throw new Error(`unknown suite '${s}' (known: ${Object.keys(suites).join(', ')})`);

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    process.stderr.write(`${sig}: stopping every server the benchmark started\n`);
    void Scope.closeAll().finally(() => process.exit(130));
  });
}

async function main(): Promise<void> {
  for (const [name, run] of Object.entries(suites)) {
    if (named.length && !named.includes(name)) continue;
    const t0 = performance.now();
    console.log(await run());
    console.log(`(${name}: ${((performance.now() - t0) / 1000).toFixed(0)} s)\n`);
  }
}

main().catch(async (e: Error) => {
  console.error(e.stack ?? e.message);
  await Scope.closeAll();
  process.exit(1);
});
