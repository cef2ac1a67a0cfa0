import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { ManifestSource } from '../src/cluster/manifests.js';
import { ClusterStore } from '../src/cluster/store.js';
import { tempDir } from './helpers/temp-dir.js';

/** Manifest files a careless or hostile hand may write: aliases, alias bombs, very many documents. */

const tmp = () => tempDir('manifests');

function service(i: number, extra = ''): string {
  return `apiVersion: v1\nkind: Service\nmetadata:\n  name: s${i}\n  namespace: ns${i % 10}\n${extra}spec:\n  clusterIP: 10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}\n  ports:\n  - port: 80\n`;
}

t.test('anchors and aliases load (120 Services sharing labels and ports); an alias bomb is one bad document', async (t) => {
  const dir = tmp();
  const file = join(dir, 'cluster.yaml');
  const items = Array.from({ length: 120 }, (_, i) =>
    `- apiVersion: v1\n  kind: Service\n  metadata:\n    name: s${i}\n    namespace: default\n    labels: *labels\n  spec:\n    clusterIP: 10.0.${i >> 8}.${i & 255}\n    ports: *ports\n`).join('');
  const shared = `apiVersion: v1\nkind: List\nmetadata:\n  labels: &labels {app: web, tier: front}\n  ports: &ports [{port: 80, name: http}, {port: 443, name: https}]\nitems:\n${items}`;
  const levels = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]'];
  for (let l = 1; l < 9; l++) levels.push(`${String.fromCharCode(97 + l)}: &${String.fromCharCode(97 + l)} [${Array(10).fill('*' + String.fromCharCode(96 + l)).join(',')}]`);
  const bomb = `apiVersion: v1\nkind: Service\nmetadata: {name: bomb, namespace: default}\n${levels.join('\n')}\nspec:\n  clusterIP: 10.9.9.9\n  ports: *i\n`;
  writeFileSync(file, `${shared}---\n${bomb}---\n${service(1000)}`);
  const warnings: string[] = [];
  const store = new ClusterStore();
  const src = new ManifestSource(file, { intervalMs: 60_000, warn: (m) => warnings.push(m) });
  const t0 = Date.now();
  await src.start(store);
  t.teardown(() => src.stop());
  t.ok(Date.now() - t0 < 5000, `loaded in ${Date.now() - t0} ms`);
  t.ok(store.synced);
  t.equal([...store.services()].length, 121, '120 aliased Services and the plain one');
  t.same(store.service('default', 's119')?.ports.map((p) => p.port), [80, 443], 'aliased ports resolved');
  t.notOk(store.service('default', 'bomb'), 'the alias bomb is not loaded');
  t.match(warnings.join('\n'), /cluster\.yaml: document 2 \(line \d+\): Excessive alias count/, 'reported with file, document and line');
});

t.test('an error thrown while loading is reported; the last good objects keep serving; nothing is unhandled', async (t) => {
  const dir = tmp();
  const file = join(dir, 'cluster.yaml');
  writeFileSync(file, service(1));
  const warnings: string[] = [];
  const store = new ClusterStore();
  const src = new ManifestSource(file, { intervalMs: 60_000, warn: (m) => warnings.push(m) });
  await src.start(store);
  t.teardown(() => src.stop());
  t.ok(store.service('ns1', 's1'));
  // A file whose alias comes before its anchor, and one holding a bomb: per-document errors, never a throw.
  writeFileSync(file, `${service(2, '  labels: *nope\n')}---\n${service(3)}`);
  t.equal(await src.poll(), true);
  t.ok(store.service('ns3', 's3'), 'the good document of the new file is served');
  t.match(warnings.join('\n'), /document 1 \(line 1\)/);
});

t.test('many documents load in linear time; the event loop is never held long', async (t) => {
  const load = async (n: number) => {
    const file = join(tmp(), 'cluster.yaml');
    writeFileSync(file, Array.from({ length: n }, (_, i) => service(i)).join('---\n'));
    const store = new ClusterStore();
    const src = new ManifestSource(file, { intervalMs: 60_000 });
    const h = monitorEventLoopDelay({ resolution: 10 });
    h.enable();
    const t0 = performance.now();
    await src.start(store);
    const ms = performance.now() - t0;
    h.disable();
    await src.stop();
    t.equal([...store.services()].length, n, `${n} Services loaded`);
    return { ms, stall: h.max / 1e6 };
  };
  const small = await load(1000);
  const big = await load(4000);
  // 4x the documents: ~4x the time when linear, ~16x when every document's line is counted from the start.
  t.ok(big.ms / small.ms < 8, `1000 documents: ${small.ms.toFixed(0)} ms, 4000: ${big.ms.toFixed(0)} ms`);
  // Parsing yields every 20 ms; what remains in one turn is the store's replace() (~10 µs an object) and GC.
  // As a share of the load, which a loaded test machine stretches alike; the old code held the loop for the
  // whole parse (a share of 1). Unloaded, the longest stall is ~100 ms at 4000 documents.
  t.ok(big.stall < big.ms / 4, `longest event-loop stall ${big.stall.toFixed(0)} ms of a ${big.ms.toFixed(0)} ms load`);
});
