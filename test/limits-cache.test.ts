import t from 'tap';
import dgram from 'node:dgram';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { CLASS, FLAG, TYPE } from '../src/server/wire/constants.js';
import { encodeMessage } from '../src/server/wire/message.js';
import type { Registry } from '../src/pkg/metrics.js';
import { dig } from './helpers/dig.js';
import { startServer } from './helpers/server.js';
import { exampleZone, startKnot } from './helpers/upstream.js';
import { sleep } from './helpers/wait.js';

/**
 * Random names with large answers through cache + forward: every UDP query's TC answer is fetched again
 * over TCP and cached whole (~60 KB here). Entry counts alone let 9984 of them take half a gigabyte; the
 * byte budget keeps the cache at max_bytes.
 */

setFlagsFromString('--expose-gc');
const fullGc = runInNewContext('gc') as () => void;
/** Buffers' memory is released by a sweeper after the collection: collect twice with a pause between. */
async function gc(): Promise<void> {
  fullGc();
  await sleep(200);
  fullGc();
}

/** 220 distinct 250-byte strings: one TXT RRset of about 60 KB, at every name under big.example.com (wildcard). */
const TXT = Array.from({ length: 220 }, (_, i) => `"${String(i).padStart(3, '0')}${'x'.repeat(247)}"`);
const ZONE = exampleZone(`${TXT.map((s) => `*.big TXT ${s}`).join('\n')}\nwww A 192.0.2.1\n`);

async function gauge(registry: Registry, name: string, type: string): Promise<number> {
  const { values } = await registry.getSingleMetric(name)!.get();
  return values.filter((v) => v.labels.type === type).reduce((n, v) => n + v.value, 0);
}

function txtQuery(name: string, id: number): Buffer {
  return encodeMessage({
    id, qr: false, rd: true, rcode: 0, question: { name, type: TYPE.TXT, class: CLASS.IN },
    answer: [], authority: [], additional: [], edns: { udpSize: 1232, version: 0, do: false },
  });
}

/** `n` TXT queries for random names over UDP, 20 at a time; resolves with the replies' flags. */
async function randomNames(port: number, n: number): Promise<number[]> {
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  const flags: number[] = [];
  sock.on('message', (m) => flags.push(m.readUInt16BE(2)));
  for (let i = 0; i < n; i += 20) {
    for (let j = i; j < Math.min(n, i + 20); j++) sock.send(txtQuery(`r${j}-${Math.random().toString(36).slice(2)}.big.example.com.`, j), port, '127.0.0.1');
    for (let waited = 0; flags.length < Math.min(n, i + 20) && waited < 5000; waited += 10) await sleep(10);
  }
  sock.close();
  return flags;
}

t.test('large answers for random names: the cache stays within max_bytes, answers stay whole', async (t) => {
  const up = await startKnot({ zones: { 'example.com.': ZONE } });
  t.teardown(() => up.stop());
  const budget = 4 << 20;
  const s = await startServer(`. {\n  cache 300 {\n    max_bytes 4M\n  }\n  forward . ${up.addr}\n}\n`);
  t.teardown(() => s.stop());
  const reg = s.server.registry;

  const full = await dig(s.port, ['first.big.example.com', 'TXT', '+tcp']);
  t.equal(full.answer.length, 220, 'over TCP the whole 60 KB RRset');
  t.same(full.answer.map((rr) => rr.data.slice(1, 4)).sort(), TXT.map((x) => x.slice(1, 4)), 'every record, intact');
  const udp = await dig(s.port, ['first.big.example.com', 'TXT', '+ignore', '+bufsize=1232']);
  t.ok(udp.flags.includes('tc'), 'over UDP (from the cache) truncated to what the asker takes, TC set');
  t.ok(udp.answer.length > 0 && udp.answer.length < 220, `${udp.answer.length} records fit in 1232 bytes`);

  await gc();
  const before = process.memoryUsage().arrayBuffers;
  const flags = await randomNames(s.port, 300);
  t.equal(flags.length, 300, 'every random name answered');
  t.ok(flags.every((f) => f & FLAG.TC), 'truncated for the UDP asker');
  await gc();
  const grown = process.memoryUsage().arrayBuffers - before;
  const bytes = await gauge(reg, 'coredns_cache_size_bytes', 'success');
  const entries = await gauge(reg, 'coredns_cache_entries', 'success');
  t.ok(bytes <= budget && bytes > budget / 2, `coredns_cache_size_bytes ${bytes} within max_bytes 4M`);
  t.ok(entries < 100, `${entries} entries kept of 301 answers (~60 KB each)`);
  t.ok(await gauge(reg, 'coredns_cache_evictions_total', 'success') >= 200, 'the oldest evicted for room');
  // Unbounded, the 301 answers would keep 18 MB of buffers alive.
  t.ok(grown < 2 * budget, `buffers grew by ${(grown / 1048576).toFixed(1)} MB`);

  // Small answers still cache (and count their overhead), and the large ones still answer right.
  await dig(s.port, ['www.example.com']);
  const hitsBefore = await gauge(reg, 'coredns_cache_hits_total', 'success');
  const www = await dig(s.port, ['www.example.com']);
  t.same(www.answer.map((rr) => rr.data), ['192.0.2.1']);
  t.equal(await gauge(reg, 'coredns_cache_hits_total', 'success') - hitsBefore, 1, 'a hit');
  const again = await dig(s.port, ['again.big.example.com', 'TXT', '+tcp']);
  t.equal(again.answer.length, 220, 'a new large name: whole over TCP');
});
