/**
 * In-memory cluster answers: clusterdns (production plugin set) vs knotd serving the same names, the
 * cluster-name mix, resident memory after load, manifest-change-to-answer latency, and `-workers 2`.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { mixQueries, plainQueries, synthesize } from './cluster-data.js';
import {
  alternate, cpuSeconds, dnsperf, freePort, median, medianQps, percentile, rcodeShares, rssMB, Scope, SERVER_CORE, sleep, startClusterdns, startKnot,
  table, udpQuery, type PerfResult, type Server,
} from './lib.js';
import { reusePortWorkers } from '../src/server/listeners.js';

const exec = promisify(execFile);

export interface DnsBenchOptions {
  services: number;
  endpoints: number;
  seconds: number;
  rounds: number;
  workers: boolean;
  /** Manifest edits timed for change-to-answer latency. */
  changes: number;
  /** Node binaries to compare (`--node 20=/usr/bin/node,26=/opt/...`); the last one also runs the `-workers` comparison. */
  nodes: { label: string; path: string }[];
  /** Another build's dist/src/cli.js, measured in the same alternation (a change's before/after). */
  baseline?: string;
}

/** The manifests source polls once a second, then re-parses the whole file (seconds at 10k services); later counts as missed. */
const CHANGE_TIMEOUT_MS = 15_000;

const productionCorefile = (manifest: string, metricsPort: number) => (port: number) =>
  `cluster.local:${port} 96.10.in-addr.arpa:${port} {\n  bind 127.0.0.1\n  errors\n  prometheus 127.0.0.1:${metricsPort}\n` +
  `  kubernetes cluster.local 96.10.in-addr.arpa {\n    manifests ${manifest}\n    ttl 30\n  }\n}\n`;

/** Moves services in place and times (from the rename of the new manifest) until the server answers the new ClusterIP. */
async function changeLatency(data: ReturnType<typeof synthesize>, port: number, changes: number): Promise<{ ms: number[]; missed: number; digOk?: boolean }> {
  const ms: number[] = [];
  let missed = 0;
  let last = { name: '', ip: '' };
  for (let c = 0; c < changes; c++) {
    const i = (c * 7919 + 17) % data.names.length;
    last = { name: data.names[i]!, ip: `10.97.${c & 255}.${(c * 13 + 1) & 255}` };
    data.moveService(i, last.ip);
    const t0 = performance.now();
    let seen = false;
    while (performance.now() - t0 < CHANGE_TIMEOUT_MS) {
      const a = await udpQuery(port, last.name);
      if (a?.msg.answer.some((rr) => rr.data === last.ip)) {
        seen = true;
        break;
      }
      await sleep(5);
    }
    if (seen) ms.push(performance.now() - t0);
    else missed++;
    // Spread the edits over the poll phase so the figure is not one lucky offset repeated.
    await sleep(137);
  }
  if (!changes) return { ms, missed };
  const { stdout } = await exec('dig', ['@127.0.0.1', '-p', String(port), '+time=2', '+tries=1', '+short', last.name, 'A']);
  return { ms: ms.sort((a, b) => a - b), missed, digOk: stdout.split('\n').includes(last.ip) };
}

export async function benchDns(o: DnsBenchOptions): Promise<string> {
  const scope = new Scope();
  try {
    const dir = scope.dir('dns');
    const data = synthesize(dir, o.services, o.endpoints);
    const plainFile = join(dir, 'plain.txt');
    const mixFile = join(dir, 'mix.txt');
    plainQueries(plainFile, data.names);
    mixQueries(mixFile, data.names);
    const probe = data.names[0]!;
    const knot = await startKnot(scope, data.knotZones, probe);
    const t0 = performance.now();
    const ours = await startClusterdns(scope, dir, productionCorefile(data.manifestFile, await freePort()), probe);
    const readyMs = performance.now() - t0;
    await sleep(1000);
    const rssIdle = rssMB(ours.proc.pid);

    // Pinned to the server core like the others, and idle while they are measured.
    const base = o.baseline ? await startClusterdns(scope, dir, productionCorefile(data.manifestFile, await freePort()), probe, { name: 'baseline', cli: o.baseline }) : undefined;
    const keys = ['knot plain', 'clusterdns plain', 'knot mix', 'clusterdns mix'] as const;
    const baseKeys = base ? ['baseline plain', 'baseline mix'] as const : [];
    const serverOf = (k: string) => (k.startsWith('knot') ? knot : k.startsWith('baseline') ? base! : ours);
    // CPU per answered query of this build and the baseline: steadier than QPS on a shared machine.
    const cpu: Record<string, number[]> = {};
    const res = await alternate(o.rounds, [...keys, ...baseKeys], async (k) => {
      const file = k.endsWith('plain') ? plainFile : mixFile;
      if (k.startsWith('knot')) return dnsperf(knot.port, file, o.seconds);
      const r = await measured(serverOf(k), file, o.seconds);
      (cpu[k] ??= []).push(r.cpuUs);
      return r;
    });
    const rssLoaded = rssMB(ours.proc.pid);
    const med = (k: (typeof keys)[number]) => medianQps(res[k]);
    const rows: (string | number)[][] = [['server', 'workload', 'median QPS', 'runs', 'avg latency ms', 'rcode % (last run)', 'lost', 'ratio to knot']];
    const gate: string[] = [];
    for (const wl of ['plain', 'mix'] as const) {
      for (const srv of ['knot', 'clusterdns'] as const) {
        const k = `${srv} ${wl}` as const;
        const last = res[k].at(-1)!;
        rows.push([srv, wl, Math.round(med(k)), res[k].map((r) => Math.round(r.qps / 1000) + 'k').join(' '), last.avgLatencyMs.toFixed(2),
          rcodeShares(last), last.lost, (med(k) / med(`knot ${wl}`)).toFixed(3)]);
      }
      if (!sameShares(res[`knot ${wl}`].at(-1)!, res[`clusterdns ${wl}`].at(-1)!)) gate.push(`${wl}: rcode split differs from knotd`);
    }
    const change = await changeLatency(data, ours.port, o.changes);
    const rssAfter = rssMB(ours.proc.pid);

    const out = [`## In-memory cluster answers: ${o.services} services × ${o.endpoints} endpoints, ${o.rounds}×${o.seconds}s alternating, servers on core ${SERVER_CORE}`,
      table(rows),
      `ratio to knot, plain A: ${(med('clusterdns plain') / med('knot plain')).toFixed(3)} (target ≥ 0.20, stretch 0.28); ` +
        `cluster mix: ${(med('clusterdns mix') / med('knot mix')).toFixed(3)}; mix vs plain (clusterdns): ${(med('clusterdns mix') / med('clusterdns plain')).toFixed(3)} (must be ≥ 0.90)`,
      `rcode gate: ${gate.length ? gate.join('; ') : 'clusterdns and knotd answered the same rcode split'}`,
      ...(base ? [`this build / baseline (${o.baseline}): QPS plain ${(med('clusterdns plain') / medianQps(res['baseline plain'])).toFixed(3)}, ` +
        `mix ${(med('clusterdns mix') / medianQps(res['baseline mix'])).toFixed(3)} (runs: ${['plain', 'mix'].map((w) => res[`baseline ${w}` as 'baseline plain'].map((r) => Math.round(r.qps / 1000) + 'k').join(' ')).join(' / ')}); ` +
        `CPU µs/query plain ${median(cpu['clusterdns plain']!).toFixed(1)} vs ${median(cpu['baseline plain']!).toFixed(1)} (${(median(cpu['clusterdns plain']!) / median(cpu['baseline plain']!)).toFixed(3)}), ` +
        `mix ${median(cpu['clusterdns mix']!).toFixed(1)} vs ${median(cpu['baseline mix']!).toFixed(1)} (${(median(cpu['clusterdns mix']!) / median(cpu['baseline mix']!)).toFixed(3)})`] : []),
      table([
        ['measure', 'value', 'target'],
        ['spawn to first answer', `${readyMs.toFixed(0)} ms`, ''],
        ['RSS after sync, idle', `${rssIdle.toFixed(0)} MB`, ''],
        ['RSS after load', `${rssLoaded.toFixed(0)} MB`, '< 150 MB (at 10k services / 100k endpoints)'],
        ['RSS after the manifest changes', `${rssAfter.toFixed(0)} MB`, ''],
        ['manifest change → new answer p50', `${percentile(change.ms, 50).toFixed(0)} ms`, '< 2000 ms (1 s poll)'],
        ['manifest change → new answer max', `${(change.ms.at(-1) ?? NaN).toFixed(0)} ms`, '< 2000 ms'],
        ['changes seen / missed', `${change.ms.length} / ${change.missed}`, change.digOk === undefined ? '' : `dig cross-check ${change.digOk ? 'ok' : 'FAILED'}`],
      ])];
    await ours.proc.stop();
    await base?.proc.stop();
    await knot.proc.stop();
    if (o.nodes.length) out.push(await runtimes(scope, dir, data.manifestFile, plainFile, mixFile, probe, o));
    if (o.workers) out.push(await workers(scope, dir, data.manifestFile, plainFile, probe, o));
    return out.join('\n');
  } finally {
    await scope.close();
  }
}

/** Same rcode split within 0.5 percentage points (dnsperf's end-of-run accounting loses a few). */
function sameShares(a: PerfResult, b: PerfResult): boolean {
  const share = (r: PerfResult, k: string) => (r.rcodes[k] ?? 0) / (Object.values(r.rcodes).reduce((x, y) => x + y, 0) || 1);
  const codes = new Set([...Object.keys(a.rcodes), ...Object.keys(b.rcodes)]);
  return [...codes].every((k) => Math.abs(share(a, k) - share(b, k)) < 0.005);
}

/** dnsperf against `server`, with the CPU the server (all its processes) used per completed query. */
async function measured(server: Server, queryFile: string, seconds: number, extra: string[] = []): Promise<PerfResult & { cpuUs: number }> {
  const before = cpuSeconds(server.proc.pid);
  const r = await dnsperf(server.port, queryFile, seconds, extra);
  return { ...r, cpuUs: ((cpuSeconds(server.proc.pid) - before) * 1e6) / r.completed };
}

/**
 * The same server under each Node line, all alive at once on the server core and measured in turn, so
 * drift hits every line alike. The last line also runs once started without the node flag (the bin's
 * path: src/runtime.ts re-execs with it), to show the semi-space setting still holds there.
 */
async function runtimes(scope: Scope, dir: string, manifest: string, plainFile: string, mixFile: string, probe: string, o: DnsBenchOptions): Promise<string> {
  const lines = [...o.nodes.map((n) => ({ ...n, flags: undefined as string[] | undefined })),
    { ...o.nodes.at(-1)!, label: `${o.nodes.at(-1)!.label} (no flag: re-exec)`, flags: [] as string[] }];
  const servers = new Map<string, Server>();
  const versions = new Map<string, string>();
  for (const l of lines) {
    versions.set(l.label, (await exec(l.path, ['--version'])).stdout.trim());
    servers.set(l.label, await startClusterdns(scope, dir, productionCorefile(manifest, await freePort()), probe, { name: `clusterdns on node ${l.label}`, node: l.path, nodeFlags: l.flags }));
  }
  const keys = lines.flatMap((l) => [`${l.label}|plain`, `${l.label}|mix`]);
  const cpu = new Map<string, number[]>();
  const res = await alternate(o.rounds, keys, async (k) => {
    const [label, wl] = k.split('|') as [string, string];
    const r = await measured(servers.get(label)!, wl === 'plain' ? plainFile : mixFile, o.seconds);
    cpu.set(k, [...(cpu.get(k) ?? []), r.cpuUs]);
    return r;
  });
  const base = lines[0]!.label;
  const q = (label: string, wl: string) => medianQps(res[`${label}|${wl}`]!);
  const c = (label: string, wl: string) => median(cpu.get(`${label}|${wl}`)!);
  const rows: (string | number)[][] = [['node', 'version', 'plain QPS', 'mix QPS', `QPS ratio to ${base} (plain/mix)`, 'CPU µs/query plain', 'CPU µs/query mix', `CPU ratio to ${base} (plain/mix)`, 'RSS after load MB']];
  for (const l of lines) {
    rows.push([l.label, versions.get(l.label)!, Math.round(q(l.label, 'plain')), Math.round(q(l.label, 'mix')),
      `${(q(l.label, 'plain') / q(base, 'plain')).toFixed(2)} / ${(q(l.label, 'mix') / q(base, 'mix')).toFixed(2)}`,
      c(l.label, 'plain').toFixed(1), c(l.label, 'mix').toFixed(1),
      `${(c(l.label, 'plain') / c(base, 'plain')).toFixed(2)} / ${(c(l.label, 'mix') / c(base, 'mix')).toFixed(2)}`,
      rssMB(servers.get(l.label)!.proc.pid).toFixed(0)]);
  }
  for (const s of servers.values()) await s.proc.stop();
  return `## Node lines: one process each on core ${SERVER_CORE}, ${o.rounds}×${o.seconds}s per workload, measured in turn\n${table(rows)}\n`;
}

/** SO_REUSEPORT spreads by the hash of the client's address and port: dnsperf's default 4 sockets would be one coin toss. */
const CLIENT_SOCKETS = ['-c', '32'];

/**
 * `-workers 2` (node:cluster's shared sockets, and each worker its own SO_REUSEPORT sockets) against one
 * process, all unpinned (the workers need both cores, so they share core 0 with dnsperf), on the last `--node`.
 */
async function workers(scope: Scope, dir: string, manifest: string, plainFile: string, probe: string, o: DnsBenchOptions): Promise<string> {
  const node = o.nodes.at(-1)?.path ?? process.execPath;
  const version = (await exec(node, ['--version'])).stdout.trim();
  const start = async (name: string, args: string[], env?: NodeJS.ProcessEnv) => startClusterdns(scope, dir, productionCorefile(manifest, await freePort()), probe, { name, args, cores: '0,1', node, env });
  const servers: Record<string, Server> = {
    'one process': await start('clusterdns', []),
    '-workers 2, shared sockets': await start('clusterdns -workers 2 shared', ['-workers', '2']),
  };
  const reuse = { ...process.env, CLUSTERDNS_WORKER_SOCKETS: 'reuseport' };
  if (reusePortWorkers(version.slice(1), reuse)) servers['-workers 2, SO_REUSEPORT'] = await start('clusterdns -workers 2 reuseport', ['-workers', '2'], reuse);
  const cpu: Record<string, number[]> = {};
  const res = await alternate(o.rounds, Object.keys(servers), async (k) => {
    const r = await measured(servers[k]!, plainFile, o.seconds, CLIENT_SOCKETS);
    (cpu[k] ??= []).push(r.cpuUs);
    return r;
  });
  for (const s of Object.values(servers)) await s.proc.stop();
  const one = medianQps(res['one process']!);
  const rows: (string | number)[][] = [['design', 'median QPS', 'runs', 'ratio to one process', 'CPU µs/query']];
  for (const k of Object.keys(servers)) {
    rows.push([k, Math.round(medianQps(res[k]!)), res[k]!.map((r) => Math.round(r.qps / 1000) + 'k').join(' '), (medianQps(res[k]!) / one).toFixed(2), median(cpu[k]!).toFixed(1)]);
  }
  return `## -workers 2 on node ${version}, unpinned (shares core 0 with dnsperf), plain A from ${CLIENT_SOCKETS[1]} client sockets, ${o.rounds}×${o.seconds}s\n${table(rows)}`;
}
