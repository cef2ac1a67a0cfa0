/*
 * VIP programmer benchmark, iptables and nftables modes side by side, at 1k/5k/10k services x 10 endpoints:
 * - nftables: first sync, one-service update, and at the largest size the first-packet latency through a
 *   VIP (a new TCP connection to the ClusterIP, next to one straight to the endpoint in the same run);
 * - iptables: full sync and one-endpoint partial sync, each next to its floor measured in the same run: a
 *   plain `iptables-restore --noflush` of the very bytes the syncer restored, in an equally fresh namespace.
 * Runs only in scratch network namespaces it creates.
 *
 *   node dist/bench/vip.js [--sizes 1000,5000,10000] [--endpoints 10] [--budget 720] [--render-only]
 *
 * iptables sizes whose predicted run time would exceed the remaining budget (seconds) are skipped.
 */
import { readFileSync } from 'node:fs';
import { ClusterStore } from '../src/cluster/store.js';
import type { EndpointSlice, Service } from '../src/cluster/types.js';
import { runCommand, type Run } from '../src/pkg/command.js';
import { buildModel } from '../src/vip/model.js';
import { renderIptables } from '../src/vip/render-iptables.js';
import { familyRenderBase, VipSyncer, type BackendMode } from '../src/vip/syncer.js';

export interface VipBenchOptions {
  sizes: number[];
  endpoints: number;
  /** Seconds for the whole run; iptables sizes predicted to overrun it are skipped. */
  budget: number;
  /** Only build the model and render the iptables input (no namespace, no root): seconds per size. */
  renderOnly?: boolean;
}

let perService = 10;

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
      ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080 }], externalIPs: [], loadBalancerIPs: [], loadBalancerIngress: [],
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

function programmer(mode: BackendMode, services: Service[], slices: EndpointSlice[], run: Run): { store: ClusterStore; syncer: VipSyncer } {
  const store = new ClusterStore();
  store.replace({ services, slices });
  store.synced = true;
  const syncer = new VipSyncer(store, {
    families: [4], mode, nodeName: 'n', clusterCIDRs: ['10.0.0.0/8'], masqueradeAll: false, nodeIPs: [],
    syncPeriodMs: 3_600_000, minSyncPeriodMs: 0, log: quiet, run,
  });
  return { store, syncer };
}

/** Applies one slice change and hands its service to the syncer as changed. */
function change(store: ClusterStore, syncer: VipSyncer, moved: EndpointSlice): Set<string> {
  const changes = new Set<string>();
  const off = store.onChange((cs) => cs.forEach((c) => c.service && changes.add(c.service)));
  store.upsertSlice(moved);
  off();
  // The syncer learns of changes through its subscription, which only runs after start(); feed it directly.
  (syncer as unknown as { states: Map<number, { changed: Set<string> }> }).states.get(4)!.changed = new Set(changes);
  return changes;
}

/** Jiffies the machine spent busy so far (all CPUs), from /proc/stat. */
function busyJiffies(): number {
  const [, user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).map(Number);
  return user + nice + system + irq + softirq;
}

/**
 * Waits until the machine is idle (under a tenth of a core busy over half a second, at most two minutes).
 * The kernel tears a deleted namespace's ruleset down in the background, and a 10k-service ruleset left
 * in place slowed the next restore of the same input by 1.4× (240 s, then 333 s): every measurement gets
 * a fresh namespace with nothing of an earlier one around.
 */
async function settle(): Promise<void> {
  const hz = 100;
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    const before = busyJiffies();
    await new Promise((r) => setTimeout(r, 500));
    if (busyJiffies() - before < 0.1 * hz * 0.5) return;
  }
}

let nsSeq = 0;
/** A fresh namespace for one measurement, deleted (and its teardown waited for) afterwards. */
async function scratch<T>(fn: (run: Run, ns: string) => Promise<T>): Promise<T> {
  const ns = `vipbench${process.pid}-${nsSeq++}`;
  const add = await runCommand('ip', ['netns', 'add', ns]);
  if (add.code !== 0) throw new Error(`ip netns add ${ns}: ${add.stderr.trim()} (the benchmark needs root)`);
  try {
    return await fn((cmd, a, input) => runCommand('ip', ['netns', 'exec', ns, cmd, ...a], input), ns);
  } finally {
    await runCommand('ip', ['netns', 'del', ns]);
    await settle();
  }
}

async function timed(fn: () => Promise<unknown> | unknown): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

async function plainRestore(run: Run, input: string | Buffer | readonly Buffer[]): Promise<void> {
  const r = await run('iptables-restore', ['-w', '5', '-W', '100000', '--noflush'], input);
  if (r.code !== 0) throw new Error(`iptables-restore: ${r.stderr.trim()}`);
}

interface Row {
  n: number; rules: number; mb: number; modelMs: number; renderMs: number; fullS: number; floorS: number;
  partialMs: number; partialFloorMs: number; partialLines: number;
}

/** Min of five runs (this VM is noisy), each on a model built afresh from the objects (as at start, no earlier model to reuse). */
function renderTimes(services: Service[], slices: EndpointSlice[]): { modelMs: number; renderMs: number; input: Buffer[]; rules: number } {
  let modelMs = Infinity;
  let renderMs = Infinity;
  let last: ReturnType<typeof renderIptables> | undefined;
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    const model = buildModel({ services, slices }, { family: 4, nodeName: 'n' });
    const t1 = performance.now();
    last = renderIptables(model, { ...renderBase, changed: null, existingChains: [] });
    const t2 = performance.now();
    modelMs = Math.min(modelMs, t1 - t0);
    renderMs = Math.min(renderMs, t2 - t1);
  }
  return { modelMs, renderMs, input: last!.input, rules: last!.rules };
}

async function measure(n: number): Promise<Row> {
  const { services, slices } = cluster(n);
  const { modelMs, renderMs, input, rules } = renderTimes(services, slices);

  const synced = await scratch(async (run) => {
    // What the syncer hands to iptables-restore, so each floor restores exactly the same bytes.
    let restored: string | Buffer | readonly Buffer[] | undefined;
    const recording: Run = (cmd, a, stdin) => {
      if (cmd === 'iptables-restore') restored = stdin;
      return run(cmd, a, stdin);
    };
    const { store, syncer } = programmer('iptables', services, slices, recording);
    let ok = false;
    const fullS = (await timed(async () => (ok = await syncer.sync(true)))) / 1000;
    if (!ok || restored === undefined) throw new Error(`full sync of ${n} services failed`);
    const full = restored;

    // One endpoint of one service moves: what a rolling update does many times a minute.
    const target = slices[Math.floor(n / 2)]!;
    const moved = slice(target.service, target.endpoints.map((e, j) => (j === 0 ? '10.250.0.1' : e.addresses[0]!)));
    change(store, syncer, moved);
    restored = undefined;
    const partialMs = await timed(async () => (ok = await syncer.sync(false)));
    if (!ok || restored === undefined) throw new Error(`partial sync of ${n} services failed`);
    const partial = restored;

    // Floor: the same input restored plainly once more (it declares, rewrites and deletes the same chains).
    const partialFloorMs = await timed(() => plainRestore(run, partial));
    const partialLines = text(partial).split('\n').filter((l) => l.startsWith('-A ')).length;
    return { full, fullS, partialMs, partialFloorMs, partialLines };
  });
  // Floor of the full sync: the syncer's own input (canary and entry jumps included), in a fresh namespace.
  const floorS = (await scratch((run) => timed(() => plainRestore(run, synced.full)))) / 1000;
  const { fullS, partialMs, partialFloorMs, partialLines } = synced;
  return { n, rules, mb: input.reduce((a, b) => a + b.length, 0) / 1e6, modelMs, renderMs, fullS, floorS, partialMs, partialFloorMs, partialLines };
}

function text(input: string | Buffer | readonly Buffer[]): string {
  return typeof input === 'string' ? input : Buffer.concat(Buffer.isBuffer(input) ? [input] : [...input]).toString();
}

/**
 * Median microseconds of a new TCP connection (SYN to established: the first packet meets the NAT rules)
 * through `vip`:80 and straight to the endpoint 10.250.0.1:8080, which listens on lo inside the namespace.
 */
const LATENCY = `
import net from 'node:net';
// With -e there is no script path: the arguments start at argv[1].
const [vip, rounds] = [process.argv[1], Number(process.argv[2])];
const server = net.createServer((s) => s.destroy()).listen(8080, '10.250.0.1', async () => {
  const once = (host, port) => new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const c = net.connect({ host, port }, () => { resolve(Number(process.hrtime.bigint() - t0) / 1000); c.destroy(); });
    c.on('error', reject);
    c.setTimeout(2000, () => reject(new Error('timeout to ' + host)));
  });
  const median = (xs) => xs.sort((a, b) => a - b)[xs.length >> 1];
  const via = [], direct = [];
  for (let i = 0; i < rounds; i++) { via.push(await once(vip, 80)); direct.push(await once('10.250.0.1', 8080)); }
  console.log(JSON.stringify({ via: median(via), direct: median(direct) }));
  server.close();
});
`;

interface NftRow { n: number; firstS: number; updateMs: number; latency?: { via: number; direct: number } }

async function measureNft(n: number, latency: boolean): Promise<NftRow> {
  const { services, slices } = cluster(n);
  return scratch(async (run, ns) => {
    const { store, syncer } = programmer('nftables', services, slices, run);
    let ok = false;
    const firstS = (await timed(async () => (ok = await syncer.sync(true)))) / 1000;
    if (!ok) throw new Error(`nftables first sync of ${n} services failed`);
    // The middle service's endpoints are replaced by one on this namespace's lo (the latency probe's target).
    const target = slices[Math.floor(n / 2)]!;
    change(store, syncer, slice(target.service, ['10.250.0.1']));
    const updateMs = await timed(async () => (ok = await syncer.sync(false)));
    if (!ok) throw new Error(`nftables one-service update at ${n} services failed`);
    if (!latency) return { n, firstS, updateMs };
    await runCommand('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    await runCommand('ip', ['-n', ns, 'addr', 'add', '10.250.0.1/32', 'dev', 'lo']);
    // The ClusterIP needs a route for the connect to leave the socket layer; DNAT in nat-output does the rest.
    await runCommand('ip', ['-n', ns, 'route', 'add', '10.96.0.0/12', 'dev', 'lo']);
    const vip = services[Math.floor(n / 2)]!.clusterIPs[0]!;
    const r = await run(process.execPath, ['--input-type=module', '-e', LATENCY, vip, '200']);
    if (r.code !== 0) throw new Error(`latency probe: ${r.stderr.trim()}`);
    return { n, firstS, updateMs, latency: JSON.parse(r.stdout) as { via: number; direct: number } };
  });
}

export async function benchVip(o: VipBenchOptions): Promise<string> {
  perService = o.endpoints;
  if (o.renderOnly) {
    const out = [`iptables render only, ${perService} endpoints per service (min of five, model built afresh each time)`,
      '| services | rules | input MB | model ms | render ms |', '|---|---|---|---|---|'];
    for (const n of o.sizes) {
      const { services, slices } = cluster(n);
      const { modelMs, renderMs, input, rules } = renderTimes(services, slices);
      out.push(`| ${n} | ${rules} | ${(input.reduce((a, b) => a + b.length, 0) / 1e6).toFixed(1)} | ${modelMs.toFixed(0)} | ${renderMs.toFixed(0)} |`);
    }
    return out.join('\n');
  }
  const started = Date.now();
  const budgetMs = o.budget * 1000;
  const nftRows: NftRow[] = [];
  const rows: Row[] = [];
  const skipped: string[] = [];
  for (const n of o.sizes) {
    const t0 = Date.now();
    nftRows.push(await measureNft(n, n === Math.max(...o.sizes)));
    console.error(`nftables ${n} services done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
  let lastRate = 0;
  for (const n of o.sizes) {
    // iptables-nft restore time grows faster than linearly: predict from the previous size, squared.
    const predicted = lastRate ? lastRate * (n / rows.at(-1)!.n) ** 2 : 0;
    if (Date.now() - started + predicted > budgetMs) {
      skipped.push(`${n} (predicted ${(predicted / 1000).toFixed(0)} s)`);
      continue;
    }
    const t0 = Date.now();
    rows.push(await measure(n));
    lastRate = Date.now() - t0;
    console.error(`iptables ${n} services done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }

  const fmt = (v: number, d: number) => v.toFixed(d);
  const out: string[] = [];
  out.push(`clusterdns vip, ${perService} endpoints per service: iptables vs nftables (targets: nftables one-service update at 10k < 200 ms, first sync at 10k < 5 s)`);
  out.push('| services | iptables full sync s | nftables first sync s | iptables 1-service partial ms | nftables 1-service update ms |');
  out.push('|---|---|---|---|---|');
  for (const nr of nftRows) {
    const ir = rows.find((r) => r.n === nr.n);
    out.push(`| ${nr.n} | ${ir ? fmt(ir.fullS, 2) : 'skipped'} | ${fmt(nr.firstS, 2)} | ${ir ? fmt(ir.partialMs, 0) : 'skipped'} | ${fmt(nr.updateMs, 0)} |`);
  }
  if (skipped.length) out.push(`iptables skipped (time budget ${o.budget} s): ${skipped.join(', ')}`);
  const lat = nftRows.find((r) => r.latency);
  if (lat?.latency) {
    out.push('');
    out.push(`nftables first-packet latency at ${lat.n} services (median of 200 new TCP connections): via VIP ${fmt(lat.latency.via, 0)} µs, `
      + `straight to the endpoint ${fmt(lat.latency.direct, 0)} µs, ratio ${fmt(lat.latency.via / lat.latency.direct, 2)}`);
  }
  if (rows.length) {
    out.push('');
    out.push('iptables mode (targets: full sync < 1.2x floor, render of 10k < 200 ms, partial at 1k < 100 ms, at 10k < 1.2x floor);');
    out.push('floor = plain iptables-restore of the same bytes; model = building the desired state from the objects afresh');
    out.push('| services | rules | input MB | model ms | render ms | full sync s | floor s | ratio | partial sync ms | partial floor ms | ratio | partial rules |');
    out.push('|---|---|---|---|---|---|---|---|---|---|---|---|');
    for (const r of rows) {
      out.push(`| ${r.n} | ${r.rules} | ${fmt(r.mb, 1)} | ${fmt(r.modelMs, 0)} | ${fmt(r.renderMs, 0)} | ${fmt(r.fullS, 2)} | ${fmt(r.floorS, 2)} | ${fmt(r.fullS / r.floorS, 2)} | ${fmt(r.partialMs, 0)} | ${fmt(r.partialFloorMs, 0)} | ${fmt(r.partialMs / r.partialFloorMs, 2)} | ${r.partialLines} |`);
    }
  }
  return out.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const flag = (name: string, def: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 && args[i + 1] ? args[i + 1]! : def;
  };
  benchVip({
    sizes: flag('sizes', '1000,5000,10000').split(',').map(Number), endpoints: Number(flag('endpoints', '10')),
    budget: Number(flag('budget', '720')), renderOnly: args.includes('--render-only'),
  })
    .then((table) => console.log(table), (e: Error) => {
      console.error(e.stack ?? e.message);
      process.exit(1);
    });
}
