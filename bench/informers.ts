/**
 * The live-cluster source end to end: a real `clusterdns serve` process reading the fake API server over
 * HTTP. Reports time to first sync, resident memory with the cluster loaded (next to the same binary on an
 * empty cluster, measured in the same run) and event-to-answer latency: the fake API writes a change to
 * the open watch, a UDP query loop times how long until the server answers with the new data.
 */
import { spawn } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { FakeApiServer, endpointSlice, namespace, seedSynthetic, service, writeKubeconfig } from '../test/helpers/fake-apiserver.js';
import { freePort, NODE_FLAGS, scratch, sleep, table } from './lib.js';

const exec = promisify(execFile);
const CLI = new URL('../src/cli.js', import.meta.url).pathname;

export interface InformerBenchOptions {
  /** Services in the loaded cluster, each with one EndpointSlice of `endpoints` endpoints. */
  services: number;
  endpoints: number;
  /** Changes timed for event-to-answer latency (half Service ClusterIP moves, half endpoint replacements). */
  changes: number;
}

/** Whole-suite bound; every wait below has its own smaller one. */
const SUITE_BUDGET_MS = 170_000;
/** A change not visible after this long counts as missed. */
const CHANGE_TIMEOUT_MS = 2000;
/** Headless services whose endpoints the latency loop replaces. */
const HEADLESS = 20;
/**
 * How long to watch an idle server for V8's memory reducer: the LIST burst grows the young generation to
 * its maximum (2 × 16 MB semi-spaces), which V8 gives back only after some idle seconds (~25 s here).
 */
const IDLE_WATCH_MS = 40_000;

const statusKB = (pid: number, field: string): number =>
  Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);

interface Serve {
  pid: number;
  dnsPort: number;
  /** ms from spawn to /ready (NaN: not ready within the bound). */
  readyMs: number;
  /** ms from spawn to the first LIST request the API server saw: process start plus module loading. */
  firstListMs: number;
  /** V8 heap figures in MB from the server's own metrics: used and allocated per space. */
  heap(): Promise<{ used: number; young: number; total: number }>;
  stderr(): string;
  stop(): Promise<void>;
}

/** Spawns `clusterdns serve` against `api` in a clean environment and waits for /ready (bounded). */
async function serve(api: FakeApiServer, dir: string, boundMs: number): Promise<Serve> {
  const [dnsPort, readyPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
  const conf = join(dir, `Corefile.${dnsPort}`);
  writeFileSync(conf, `cluster.local:${dnsPort} {\n  bind 127.0.0.1\n  ready 127.0.0.1:${readyPort}\n  prometheus 127.0.0.1:${metricsPort}\n` +
    `  kubernetes cluster.local {\n    kubeconfig ${writeKubeconfig(dir, api.url, `kubeconfig.${dnsPort}`)}\n    startup_timeout 120s\n  }\n}\n`);
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/' };
  const before = api.requests.length;
  const started = performance.now();
  const child = spawn(process.execPath, [...NODE_FLAGS, CLI, 'serve', '-conf', conf], { stdio: ['ignore', 'ignore', 'pipe'], env });
  let stderr = '';
  child.stderr!.on('data', (d) => { stderr = (stderr + d).slice(-4000); });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await Promise.race([exited, sleep(5000)]);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  let readyMs = NaN;
  for (const deadline = started + boundMs; performance.now() < deadline && child.exitCode === null;) {
    if (await fetch(`http://127.0.0.1:${readyPort}/ready`).then((r) => r.ok, () => false)) {
      readyMs = performance.now() - started;
      break;
    }
    await sleep(50);
  }
  const firstList = api.requests.slice(before).find((r) => !r.watch);
  const heap = async () => {
    const text = await fetch(`http://127.0.0.1:${metricsPort}/metrics`).then((r) => r.text(), () => '');
    const sum = (metric: string, space?: string) => [...text.matchAll(new RegExp(`^${metric}\\{space="([a-z_]+)"\\} ([\\d.e+]+)$`, 'gm'))]
      .filter((m) => !space || m[1] === space).reduce((a, m) => a + Number(m[2]), 0) / 2 ** 20;
    return { used: sum('nodejs_heap_space_size_used_bytes'), young: sum('nodejs_heap_space_size_total_bytes', 'new'), total: sum('nodejs_heap_space_size_total_bytes') };
  };
  return { pid: child.pid!, dnsPort, readyMs, firstListMs: firstList ? firstList.at - started : NaN, heap, stderr: () => stderr, stop };
}

/* ------------------------------------------------------------------ minimal DNS client (A queries) */

function encodeQuery(id: number, name: string): Buffer {
  const labels = name.split('.').filter(Boolean).map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'ascii')]));
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(0x0100, 2); // RD
  header.writeUInt16BE(1, 4);
  return Buffer.concat([header, ...labels, Buffer.from([0, 0, 1, 0, 1])]);
}

/** The A records of an answer (compression pointers skipped, not followed: only RDATA is read). */
function parseA(msg: Buffer): string[] {
  const skipName = (o: number): number => {
    while (o < msg.length) {
      const len = msg[o]!;
      if (len === 0) return o + 1;
      if ((len & 0xc0) === 0xc0) return o + 2;
      o += len + 1;
    }
    return o;
  };
  let o = skipName(12) + 4;
  const out: string[] = [];
  for (let n = msg.readUInt16BE(6); n > 0 && o + 10 <= msg.length; n--) {
    o = skipName(o);
    const type = msg.readUInt16BE(o);
    const rdlen = msg.readUInt16BE(o + 8);
    if (type === 1 && rdlen === 4) out.push([...msg.subarray(o + 10, o + 14)].join('.'));
    o += 10 + rdlen;
  }
  return out;
}

class UdpClient {
  private readonly sock: Socket = createSocket('udp4');
  private id = 0;
  private waiting?: { id: number; resolve: (m: Buffer | null) => void };

  constructor(private readonly port: number) {
    this.sock.on('message', (m) => {
      if (this.waiting && m.length >= 12 && m.readUInt16BE(0) === this.waiting.id) this.waiting.resolve(m);
    });
  }

  /** One query, one answer or null after `timeoutMs`. */
  query(name: string, timeoutMs = 200): Promise<string[] | null> {
    const id = (this.id = (this.id + 1) & 0xffff);
    return new Promise((resolve) => {
      const t = setTimeout(() => done(null), timeoutMs);
      const done = (m: Buffer | null) => {
        clearTimeout(t);
        this.waiting = undefined;
        resolve(m ? parseA(m) : null);
      };
      this.waiting = { id, resolve: done };
      this.sock.send(encodeQuery(id, name), this.port, '127.0.0.1');
    });
  }

  close(): void {
    this.sock.close();
  }
}

/* ------------------------------------------------------------------ the suite */

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/**
 * Makes change `i` in the fake API server and returns the name to query and the address that proves the
 * server saw it: even i moves a Service's ClusterIP, odd i replaces a headless Service's endpoint.
 */
function change(api: FakeApiServer, i: number, services: number): { name: string; want: string } {
  const want = `10.${i % 2 ? 250 : 97}.${(i >> 8) & 255}.${i & 255}`;
  if (i % 2 === 0) {
    const name = `svc${(i * 7919) % services}`;
    const cur = api.get('services', 'default', name)!;
    api.apply('services', { ...cur, spec: { ...(cur.spec as object), clusterIP: want, clusterIPs: [want] } });
    return { name: `${name}.default.svc.cluster.local`, want };
  }
  const h = `hl${i % HEADLESS}`;
  api.apply('endpointslices', endpointSlice('bench', h, `${h}-x`, [{ ip: want }]));
  return { name: `${h}.bench.svc.cluster.local`, want };
}

export async function benchInformers(o: InformerBenchOptions): Promise<string> {
  const suiteDeadline = performance.now() + SUITE_BUDGET_MS;
  const dir = scratch('informers');
  const api = await new FakeApiServer().start();
  const running: Serve[] = [];
  let udp: UdpClient | undefined;
  try {
    api.apply('namespaces', namespace('default'));
    api.apply('namespaces', namespace('bench'));

    // Reference in the same run: the same binary, same informers, an empty cluster.
    const empty = await serve(api, dir, 30_000);
    running.push(empty);
    if (!Number.isFinite(empty.readyMs)) throw new Error(`empty cluster: not ready within 30 s: ${empty.stderr()}`);
    await sleep(500);
    const emptyRss = statusKB(empty.pid, 'VmRSS') / 1024;
    await empty.stop();
    running.pop();

    seedSynthetic(api, o.services, o.endpoints);
    for (let h = 0; h < HEADLESS; h++) {
      api.apply('services', service('bench', `hl${h}`, '', { headless: true }));
      api.apply('endpointslices', endpointSlice('bench', `hl${h}`, `hl${h}-x`, [{ ip: `10.249.0.${h}` }]));
    }
    const full = await serve(api, dir, Math.min(120_000, suiteDeadline - performance.now()));
    running.push(full);
    if (!Number.isFinite(full.readyMs)) throw new Error(`${o.services} services: not ready within the bound: ${full.stderr()}`);
    // A moment for the LIST pages' garbage to go; VmHWM keeps the peak.
    await sleep(2000);
    const rss = statusKB(full.pid, 'VmRSS') / 1024;
    const peak = statusKB(full.pid, 'VmHWM') / 1024;
    const heap = await full.heap();

    udp = new UdpClient(full.dnsPort);
    const lat: number[] = [];
    let missed = 0;
    const latencyDeadline = Math.min(suiteDeadline, performance.now() + 90_000);
    let last = { name: '', want: '' };
    for (let i = 0; i < o.changes && performance.now() < latencyDeadline; i++) {
      const t0 = performance.now();
      last = change(api, i, o.services);
      let seen = false;
      while (performance.now() - t0 < CHANGE_TIMEOUT_MS) {
        const a = await udp.query(last.name);
        if (a?.includes(last.want)) {
          seen = true;
          break;
        }
      }
      if (seen) lat.push(performance.now() - t0);
      else missed++;
    }
    // The same answer through the real resolver tool, as a cross-check of the hand-rolled client.
    const { stdout } = await exec('dig', ['@127.0.0.1', '-p', String(full.dnsPort), '+time=2', '+tries=1', '+short', last.name, 'A']);
    const digOk = stdout.split('\n').includes(last.want);
    const rssAfter = statusKB(full.pid, 'VmRSS') / 1024;

    // Idle: no queries, no changes; stop once the young generation was given back (RSS fell by a fifth).
    const idleStart = performance.now();
    let idle = rssAfter;
    while (performance.now() - idleStart < Math.min(IDLE_WATCH_MS, suiteDeadline - performance.now())) {
      await sleep(1000);
      idle = statusKB(full.pid, 'VmRSS') / 1024;
      if (idle < 0.8 * rssAfter) break;
    }
    const idleS = (performance.now() - idleStart) / 1000;

    lat.sort((a, b) => a - b);
    const endpoints = o.services * o.endpoints;
    // CoreDNS's published sizing guide, counting one pod per endpoint.
    const guide = (endpoints + o.services) / 1000 + 54;
    const rows: (string | number)[][] = [
      ['measure', 'value', 'target / reference'],
      ['spawn to first LIST (start-up)', `${full.firstListMs.toFixed(0)} ms`, `empty cluster ${empty.firstListMs.toFixed(0)} ms`],
      ['spawn to /ready (first sync)', `${full.readyMs.toFixed(0)} ms`, `empty cluster ${empty.readyMs.toFixed(0)} ms`],
      ['RSS after sync', `${rss.toFixed(0)} MB`, `< 150 MB; CoreDNS guide ${guide.toFixed(0)} MB; empty cluster ${emptyRss.toFixed(0)} MB`],
      ['RSS peak (VmHWM)', `${peak.toFixed(0)} MB`, `V8 heap after sync: ${heap.total.toFixed(0)} MB allocated (young generation ${heap.young.toFixed(0)} MB), ${heap.used.toFixed(0)} MB used incl. garbage`],
      ['RSS after the changes', `${rssAfter.toFixed(0)} MB`, ''],
      ['RSS idle', `${idle.toFixed(0)} MB`, `after ${idleS.toFixed(0)} s idle${idle < 0.8 * rssAfter ? ' (young generation given back)' : ''}`],
      ['event-to-answer p50', `${percentile(lat, 50).toFixed(1)} ms`, ''],
      ['event-to-answer p99', `${percentile(lat, 99).toFixed(1)} ms`, '< 100 ms'],
      ['event-to-answer max', `${(lat.at(-1) ?? NaN).toFixed(1)} ms`, ''],
      ['changes seen / missed', `${lat.length} / ${missed}`, `of ${o.changes}, ${CHANGE_TIMEOUT_MS} ms bound each; dig cross-check ${digOk ? 'ok' : 'FAILED'}`],
    ];
    return [`## Informers: ${o.services} services / ${endpoints} endpoints through a fake API server (real clusterdns serve process)`, table(rows)].join('\n');
  } finally {
    udp?.close();
    for (const s of running) await s.stop();
    await api.stop();
  }
}
