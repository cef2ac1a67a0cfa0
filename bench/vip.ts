/*
 * VIP programmer benchmark: full sync and one-endpoint partial sync at 1k/5k/10k services x 10 endpoints,
 * each next to its floor measured in the same run: a plain `iptables-restore --noflush` of the same
 * pre-rendered text in an equally fresh namespace. Runs only in scratch network namespaces it creates.
 *
 *   node dist/bench/vip.js [--sizes 1000,5000,10000] [--endpoints 10] [--budget 280]
 *
 * Sizes whose predicted run time would exceed the remaining budget (seconds) are skipped.
 */
import { ClusterStore } from '../src/cluster/store.js';
import type { EndpointSlice, Service } from '../src/cluster/types.js';
import { runCommand, type Run } from '../src/vip/apply.js';
import { buildModel } from '../src/vip/model.js';
import { renderIptables } from '../src/vip/render-iptables.js';
import { familyRenderBase, VipSyncer } from '../src/vip/syncer.js';

const args = process.argv.slice(2);
const flag = (name: string, def: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : def;
};
const sizes = flag('sizes', '1000,5000,10000').split(',').map(Number);
const perService = Number(flag('endpoints', '10'));
const budgetMs = Number(flag('budget', '280')) * 1000;
const started = Date.now();

const quiet = { info: () => {}, warn: (m: string) => console.error(`warn: ${m}`), error: (m: string) => console.error(`error: ${m}`) };
const renderBase = familyRenderBase({ clusterCIDRs: ['10.0.0.0/8'], masqueradeAll: false, nodeIPs: [] }, 4);

function ip(base: number, k: number): string {
  return `${base + (k >> 16)}.${(k >> 8) & 255}.${k & 255}`;
}

function cluster(n: number): { services: Service[]; slices: EndpointSlice[] } {
  const services: Service[] = [];
  const slices: EndpointSlice[] = [];
  for (let i = 0; i < n; i++) {
    const name = `svc-${i}`;
    services.push({
      namespace: 'bench', name, type: 'ClusterIP', clusterIPs: [`10.${ip(96, i)}`], headless: false,
      ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080 }], externalIPs: [], loadBalancerIPs: [],
      loadBalancerSourceRanges: [], sessionAffinity: 'None', sessionAffinityTimeout: 10800,
      externalTrafficPolicy: 'Cluster', internalTrafficPolicy: 'Cluster', labels: {},
    });
    slices.push(slice(name, Array.from({ length: perService }, (_, j) => `10.${ip(128, i * perService + j)}`)));
  }
  return { services, slices };
}

function slice(service: string, ips: string[]): EndpointSlice {
  return {
    namespace: 'bench', name: `${service}-1`, service, addressType: 'IPv4', labels: {},
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    endpoints: ips.map((a) => ({ addresses: [a], rawAddresses: [a], ready: true, serving: true, terminating: false, nodeName: 'n' })),
  };
}

let nsSeq = 0;
const created: string[] = [];
/**
 * A fresh namespace. Deleted only at the end: the kernel tears a namespace's ruleset down in the
 * background after `ip netns del`, which would slow down whatever is measured next.
 */
async function scratch<T>(fn: (run: Run) => Promise<T>): Promise<T> {
  const ns = `vipbench${process.pid}-${nsSeq++}`;
  const add = await runCommand('ip', ['netns', 'add', ns]);
  if (add.code !== 0) throw new Error(`ip netns add ${ns}: ${add.stderr.trim()} (the benchmark needs root)`);
  created.push(ns);
  return fn((cmd, a, input) => runCommand('ip', ['netns', 'exec', ns, cmd, ...a], input));
}

async function timed(fn: () => Promise<unknown> | unknown): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

async function plainRestore(run: Run, text: string): Promise<void> {
  const r = await run('iptables-restore', ['-w', '5', '-W', '100000', '--noflush'], text);
  if (r.code !== 0) throw new Error(`iptables-restore: ${r.stderr.trim()}`);
}

interface Row { n: number; rules: number; mb: number; renderMs: number; fullS: number; floorS: number; partialMs: number; partialFloorMs: number; partialRules: number }

async function measure(n: number): Promise<Row> {
  const { services, slices } = cluster(n);
  let renderMs = Infinity;
  let text = '';
  let rules = 0;
  for (let i = 0; i < 3; i++) {
    renderMs = Math.min(renderMs, await timed(() => {
      const r = renderIptables(buildModel({ services, slices }, { family: 4, nodeName: 'n' }), { ...renderBase, changed: null, existingChains: [] });
      text = r.text;
      rules = r.rules;
    }));
  }
  const floorS = (await scratch((run) => timed(() => plainRestore(run, text)))) / 1000;

  return scratch(async (run) => {
    const store = new ClusterStore();
    store.replace({ services, slices });
    store.synced = true;
    const syncer = new VipSyncer(store, {
      families: [4], nodeName: 'n', clusterCIDRs: ['10.0.0.0/8'], masqueradeAll: false, nodeIPs: [],
      syncPeriodMs: 3_600_000, minSyncPeriodMs: 0, log: quiet, run,
    });
    let ok = false;
    const fullS = (await timed(async () => (ok = await syncer.sync(true)))) / 1000;
    if (!ok) throw new Error(`full sync of ${n} services failed`);

    // One endpoint of one service moves: what a rolling update does many times a minute.
    const target = slices[Math.floor(n / 2)]!;
    const moved = slice(target.service, target.endpoints.map((e, j) => (j === 0 ? '10.250.0.1' : e.addresses[0]!)));
    const changes = new Set<string>();
    const off = store.onChange((cs) => cs.forEach((c) => c.service && changes.add(c.service)));
    store.upsertSlice(moved);
    off();
    // The syncer learns of changes through its subscription, which only runs after start(); feed it directly.
    (syncer as unknown as { states: Map<number, { changed: Set<string> }> }).states.get(4)!.changed = new Set(changes);
    const partialMs = await timed(async () => (ok = await syncer.sync(false)));
    if (!ok) throw new Error(`partial sync of ${n} services failed`);

    // Floor: the same partial text (rendered against the state the syncer left) restored plainly.
    const model = buildModel(store.snapshot(), { family: 4, nodeName: 'n' });
    const partial = renderIptables(model, { ...renderBase, changed: changes, existingChains: new Set() });
    const partialFloorMs = await timed(() => plainRestore(run, partial.text));
    return { n, rules, mb: text.length / 1e6, renderMs, fullS, floorS, partialMs, partialFloorMs, partialRules: partial.writtenRules };
  });
}

const rows: Row[] = [];
let lastRate = 0;
try {
for (const n of sizes) {
  // iptables-nft restore time grows faster than linearly: predict from the previous size, squared.
  const predicted = lastRate ? lastRate * (n / rows.at(-1)!.n) ** 2 : 0;
  if (Date.now() - started + predicted > budgetMs) {
    console.error(`skipping ${n} services: predicted ${(predicted / 1000).toFixed(0)} s exceeds the remaining budget`);
    continue;
  }
  const t0 = Date.now();
  rows.push(await measure(n));
  lastRate = Date.now() - t0;
  console.error(`${n} services done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}
} finally {
  for (const ns of created) await runCommand('ip', ['netns', 'del', ns]);
}

const fmt = (v: number, d: number) => v.toFixed(d);
console.log(`clusterdns vip (iptables mode), ${perService} endpoints per service; floor = plain iptables-restore of the same text`);
console.log('| services | rules | input MB | render ms | full sync s | floor s | ratio | partial sync ms | partial floor ms | ratio | partial rules |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  console.log(`| ${r.n} | ${r.rules} | ${fmt(r.mb, 1)} | ${fmt(r.renderMs, 0)} | ${fmt(r.fullS, 2)} | ${fmt(r.floorS, 2)} | ${fmt(r.fullS / r.floorS, 2)} | ${fmt(r.partialMs, 0)} | ${fmt(r.partialFloorMs, 0)} | ${fmt(r.partialMs / r.partialFloorMs, 2)} | ${r.partialRules} |`);
}
