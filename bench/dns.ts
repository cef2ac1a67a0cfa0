/** In-memory cluster answers: clusterdns (production plugin set) vs knotd serving the same names. */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { mixQueries, plainQueries, synthesize } from './cluster-data.js';
import { dnsperf, freePort, median, SERVER_CORE, startKnot, startPinned, repin, scratch, table, waitForDns, type PerfResult } from './lib.js';

const CLI = new URL('../src/cli.js', import.meta.url).pathname;

export interface DnsBenchOptions { services: number; endpoints: number; seconds: number; rounds: number; workers: boolean }

async function startClusterdns(dir: string, manifest: string, opts: { workers?: string; pin?: boolean } = {}) {
  const port = await freePort();
  const conf = join(dir, `Corefile.${port}`);
  writeFileSync(conf, `cluster.local:${port} 96.10.in-addr.arpa:${port} {\n  bind 127.0.0.1\n  errors\n  prometheus 127.0.0.1:${await freePort()}\n` +
    `  kubernetes cluster.local 96.10.in-addr.arpa {\n    manifests ${manifest}\n    ttl 30\n  }\n}\n`);
  const args = [CLI, 'serve', '-conf', conf, ...(opts.workers ? ['-workers', opts.workers] : [])];
  const proc = opts.pin === false
    ? await startPinned('clusterdns', 'taskset', ['-c', '0,1', process.execPath, ...args], SERVER_CORE)
    : await startPinned('clusterdns', process.execPath, args, SERVER_CORE);
  return { port, proc };
}

function rssOf(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
  } catch {
    return NaN;
  }
}

export async function benchDns(o: DnsBenchOptions): Promise<string> {
  const dir = scratch('dns');
  const data = synthesize(dir, o.services, o.endpoints);
  const plainFile = join(dir, 'plain.txt');
  const mixFile = join(dir, 'mix.txt');
  plainQueries(plainFile, data.names);
  mixQueries(mixFile, data.names);
  const knot = await startKnot(data.knotZones);
  await new Promise((r) => setTimeout(r, 500));
  await repin(knot.proc.child.pid!, SERVER_CORE);
  const ours = await startClusterdns(dir, data.manifestFile);
  const out: string[] = [];
  try {
    await waitForDns(knot.port, data.names[0]!);
    await waitForDns(ours.port, data.names[0]!, 120_000);
    const results: Record<string, PerfResult[]> = { 'knot plain': [], 'clusterdns plain': [], 'knot mix': [], 'clusterdns mix': [] };
    for (let r = 0; r < o.rounds; r++) {
      results['knot plain']!.push(await dnsperf(knot.port, plainFile, o.seconds));
      results['clusterdns plain']!.push(await dnsperf(ours.port, plainFile, o.seconds));
      results['knot mix']!.push(await dnsperf(knot.port, mixFile, o.seconds));
      results['clusterdns mix']!.push(await dnsperf(ours.port, mixFile, o.seconds));
    }
    const rss = rssOf(ours.proc.child.pid!);
    const med = (k: string) => median(results[k]!.map((x) => x.qps));
    const rows: (string | number)[][] = [['server', 'workload', 'median QPS', 'avg latency ms', 'rcodes (last run)', 'ratio to knot']];
    for (const wl of ['plain', 'mix']) {
      for (const srv of ['knot', 'clusterdns']) {
        const k = `${srv} ${wl}`;
        const last = results[k]!.at(-1)!;
        rows.push([srv, wl, Math.round(med(k)), last.avgLatencyMs.toFixed(2), Object.entries(last.rcodes).map(([a, b]) => `${a}=${b}`).join(' '),
          (med(k) / med(`knot ${wl}`)).toFixed(3)]);
      }
    }
    out.push(`## In-memory cluster answers: ${o.services} services × ${o.endpoints} endpoints, ${o.rounds}×${o.seconds}s alternating, servers on core ${SERVER_CORE}`);
    out.push(table(rows));
    out.push(`mix vs plain (clusterdns): ${(med('clusterdns mix') / med('clusterdns plain')).toFixed(3)}; RSS after load: ${rss.toFixed(0)} MB`);
  } finally {
    await ours.proc.stop();
    await knot.proc.stop();
  }
  if (o.workers) {
    const multi = await startClusterdns(dir, data.manifestFile, { workers: '2', pin: false });
    const single = await startClusterdns(dir, data.manifestFile, { pin: false });
    try {
      await waitForDns(multi.port, data.names[0]!, 120_000);
      await waitForDns(single.port, data.names[0]!, 120_000);
      const one: number[] = [];
      const two: number[] = [];
      for (let r = 0; r < o.rounds; r++) {
        one.push((await dnsperf(single.port, plainFile, o.seconds)).qps);
        two.push((await dnsperf(multi.port, plainFile, o.seconds)).qps);
      }
      out.push(`-workers 2 (unpinned, shares core ${0} with dnsperf): ${Math.round(median(two))} QPS vs 1 worker unpinned ${Math.round(median(one))} QPS = ${(median(two) / median(one)).toFixed(2)}×`);
    } finally {
      await multi.proc.stop();
      await single.proc.stop();
    }
  }
  return out.join('\n');
}
