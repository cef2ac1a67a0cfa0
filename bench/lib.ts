/** Benchmark plumbing: processes pinned to cores, dnsperf runs, knotd as the reference server. */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CLASS, TYPE } from '../src/server/wire/constants.js';
import { decodeMessage, encodeMessage, type Message } from '../src/server/wire/message.js';

const exec = promisify(execFile);

export const SERVER_CORE = 1;
export const CLIENT_CORE = 0;

const CLI = new URL('../src/cli.js', import.meta.url).pathname;
/** The node flags npm start and the image run clusterdns with (the bin sets them itself: src/runtime.ts). */
export const NODE_FLAGS = ['--max-semi-space-size=2'];

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Everything a suite starts or creates, released in reverse order by `close()` (in a `finally`) and by
 * `stopEverything()` when the harness is interrupted, so no server outlives the run.
 */
export class Scope {
  private static readonly open = new Set<Scope>();
  private readonly undo: (() => Promise<void> | void)[] = [];

  constructor() { Scope.open.add(this); }

  dir(prefix: string): string {
    const d = scratch(prefix);
    this.undo.push(() => rmSync(d, { recursive: true, force: true }));
    return d;
  }

  /** Runs `fn` at close, like the other releases (e.g. deleting a network namespace). */
  defer(fn: () => Promise<void> | void): void {
    this.undo.push(fn);
  }

  adopt(p: Proc): Proc {
    this.undo.push(() => p.stop());
    return p;
  }

  async close(): Promise<void> {
    Scope.open.delete(this);
    for (const u of this.undo.splice(0).reverse()) {
      try {
        await u();
      } catch (e) {
        process.stderr.write(`cleanup: ${(e as Error).message}\n`);
      }
    }
  }

  static async closeAll(): Promise<void> {
    for (const s of [...Scope.open]) await s.close();
  }
}

/** A scratch directory the caller removes (suites here use `Scope.dir`, which removes it at close). */
export function scratch(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `clusterdns-bench-${prefix}-`));
}

/** A port free for both UDP and TCP on 127.0.0.1 (servers listen on both; a tiny race remains). */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = createServer();
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const udpFree = await new Promise<boolean>((resolve) => {
      const u = createSocket('udp4');
      u.once('error', () => resolve(false));
      u.bind(port, '127.0.0.1', () => u.close(() => resolve(true)));
    });
    if (udpFree) return port;
  }
  throw new Error('no port free for both UDP and TCP after 20 attempts');
}

export interface Proc { child: ChildProcess; name: string; pid: number; exited(): boolean; stderr(): string; stop(): Promise<void> }

/** Starts a command pinned to `core` (taskset execs it, so the pid is the command's own). */
export function startPinned(scope: Scope, name: string, cmd: string, args: string[], core: number | string, env?: NodeJS.ProcessEnv): Proc {
  const child = spawn('taskset', ['-c', String(core), cmd, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: env ?? process.env });
  let stderr = '';
  child.stderr!.on('data', (d) => { stderr = (stderr + d).slice(-4000); });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const alive = () => child.exitCode === null && child.signalCode === null;
  let stopping = false;
  child.once('exit', (code, sig) => {
    if (!stopping) process.stderr.write(`${name} exited unexpectedly (${code ?? sig}): ${stderr}\n`);
  });
  const stop = async () => {
    stopping = true;
    if (alive()) child.kill('SIGTERM');
    await Promise.race([exited, sleep(5000)]);
    if (alive()) {
      child.kill('SIGKILL');
      await exited;
    }
  };
  return scope.adopt({ child, name, pid: child.pid!, exited: () => !alive(), stderr: () => stderr, stop });
}

/** Pins every thread of `pid`: knotd moves its own workers after start-up, so the spawn pin is not enough. */
export async function repin(pid: number, core: number): Promise<void> {
  await exec('taskset', ['-a', '-p', '-c', String(core), String(pid)]);
}

export interface Answer { rcode: number; msg: Message; ms: number }

/** One UDP query from this process; undefined on timeout. For timing loops and polls, not for load. */
export function udpQuery(port: number, name: string, type: number = TYPE.A, timeoutMs = 1000): Promise<Answer | undefined> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    const id = (Math.random() * 0xffff) | 0;
    let t0 = 0;
    const done = (a: Answer | undefined) => {
      clearTimeout(timer);
      s.close();
      resolve(a);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    s.on('error', () => done(undefined));
    s.on('message', (buf) => {
      const ms = performance.now() - t0;
      try {
        const msg = decodeMessage(buf);
        if (msg.id === id) done({ rcode: msg.rcode, msg, ms });
      } catch {
        done(undefined);
      }
    });
    const q = encodeMessage({ id, qr: false, rd: true, rcode: 0, question: { name, type, class: CLASS.IN }, answer: [], authority: [], additional: [] });
    s.bind(0, '127.0.0.1', () => {
      t0 = performance.now();
      s.send(q, port, '127.0.0.1');
    });
  });
}

/** Waits (bounded) until `name` gets a NOERROR answer with records from 127.0.0.1:port; fails early if `proc` died. */
export async function waitForDns(port: number, name: string, proc?: Proc, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const a = await udpQuery(port, name, TYPE.A, 500);
    if (a && a.rcode === 0 && a.msg.answer.length) return;
    if (proc?.exited()) throw new Error(`${proc.name} exited before answering: ${proc.stderr()}`);
    if (Date.now() > deadline) throw new Error(`no answer for ${name} on port ${port} after ${timeoutMs} ms${proc ? `; ${proc.name}: ${proc.stderr()}` : ''}`);
    await sleep(200);
  }
}

export interface PerfResult { qps: number; avgLatencyMs: number; lost: number; rcodes: Record<string, number>; completed: number }

/**
 * Runs dnsperf pinned to the client core (`-c 4 -q 200` as in the reference measurements), against
 * 127.0.0.1 or, with `at`, another server address from inside a network namespace.
 */
export async function dnsperf(port: number, queryFile: string, seconds: number, extra: string[] = [], at: { server: string; netns: string } | null = null): Promise<PerfResult> {
  const args = ['taskset', '-c', String(CLIENT_CORE), 'dnsperf', '-s', at?.server ?? '127.0.0.1', '-p', String(port),
    '-d', queryFile, '-l', String(seconds), '-c', '4', '-q', '200', ...extra];
  const [cmd, ...rest] = at ? ['ip', 'netns', 'exec', at.netns, ...args] : args;
  const { stdout } = await exec(cmd!, rest, { timeout: (seconds + 30) * 1000, maxBuffer: 1 << 20 });
  const num = (re: RegExp) => Number(re.exec(stdout)?.[1] ?? NaN);
  const rcodes: Record<string, number> = {};
  const rc = /Response codes:\s+(.*)/.exec(stdout)?.[1] ?? '';
  for (const m of rc.matchAll(/([A-Z]+) (\d+)/g)) rcodes[m[1]!] = Number(m[2]);
  return {
    qps: num(/Queries per second:\s+([\d.]+)/), avgLatencyMs: num(/Average Latency \(s\):\s+([\d.]+)/) * 1000,
    lost: num(/Queries lost:\s+(\d+)/), completed: num(/Queries completed:\s+(\d+)/), rcodes,
  };
}

/** Response-code shares in percent, e.g. `NOERROR 90.0 NXDOMAIN 10.0`: the correctness gate under load. */
export function rcodeShares(r: PerfResult): string {
  const total = Object.values(r.rcodes).reduce((a, b) => a + b, 0) || 1;
  return Object.entries(r.rcodes).map(([k, v]) => `${k} ${((100 * v) / total).toFixed(1)}`).join(' ');
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export function rssMB(pid: number): number {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024;
  } catch {
    return NaN;
  }
}

/** USER_HZ: 100 on every Linux ABI node runs on. */
const CLOCK_TICKS = 100;

/** CPU seconds (user + system, all threads) used so far by `pid` and its child processes (node:cluster workers). */
export function cpuSeconds(pid: number): number {
  const ticks = (p: number) => {
    try {
      // Fields after the parenthesised command: state is [0], utime [11], stime [12].
      const f = readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return Number(f[11]) + Number(f[12]);
    } catch {
      return 0;
    }
  };
  let children: number[] = [];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ').filter(Boolean).map(Number);
  } catch { /* exited */ }
  return [pid, ...children].reduce((sum, p) => sum + ticks(p), 0) / CLOCK_TICKS;
}

export interface Server { name: string; port: number; proc: Proc }

/**
 * knotd with one UDP worker serving `zones` (origin → zone file text), every thread on the server core;
 * returns once `probe` resolves, after the re-pin (knotd pins its workers itself once they run).
 */
export async function startKnot(scope: Scope, zones: Record<string, string>, probe: string): Promise<Server> {
  const dir = scope.dir('knot');
  const port = await freePort();
  const zoneConf = Object.entries(zones).map(([origin, text]) => {
    const file = join(dir, `${origin}.zone`);
    writeFileSync(file, text);
    return `  - domain: ${origin}\n    file: "${file}"\n    journal-content: none\n    zonefile-sync: -1\n    semantic-checks: off`;
  }).join('\n');
  writeFileSync(join(dir, 'knot.conf'), `server:\n  rundir: "${dir}"\n  listen: 127.0.0.1@${port}\n  udp-workers: 1\n  tcp-workers: 1\n  background-workers: 1\n` +
    `database:\n  storage: "${dir}"\nlog:\n  - target: stderr\n    any: error\nzone:\n${zoneConf}\n`);
  const proc = startPinned(scope, 'knotd', 'knotd', ['-c', join(dir, 'knot.conf')], SERVER_CORE);
  await waitForDns(port, probe, proc, 30_000);
  await repin(proc.pid, SERVER_CORE);
  return { name: 'knotd', port, proc };
}

/**
 * `clusterdns serve` (this build, or the `cli` of another) with the Corefile `corefile(port)`, pinned to
 * the server core (or to `cores`), returned once `probe` resolves.
 */
export async function startClusterdns(scope: Scope, dir: string, corefile: (port: number) => string, probe: string,
  opts: { name?: string; args?: string[]; cores?: string; readyMs?: number; node?: string; nodeFlags?: string[]; env?: NodeJS.ProcessEnv; cli?: string } = {}): Promise<Server> {
  const port = await freePort();
  const conf = join(dir, `Corefile.${port}`);
  writeFileSync(conf, corefile(port));
  const name = opts.name ?? 'clusterdns';
  const proc = startPinned(scope, name, opts.node ?? process.execPath, [...(opts.nodeFlags ?? NODE_FLAGS), opts.cli ?? CLI, 'serve', '-conf', conf, ...(opts.args ?? [])],
    opts.cores ?? SERVER_CORE, opts.env);
  await waitForDns(port, probe, proc, opts.readyMs ?? 120_000);
  return { name, port, proc };
}

/**
 * Runs `run` for every key once per round, in the given order, so drift on this noisy VM hits every
 * server alike; returns all results by key.
 */
export async function alternate<K extends string>(rounds: number, keys: K[], run: (k: K) => Promise<PerfResult>): Promise<Record<K, PerfResult[]>> {
  const out = Object.fromEntries(keys.map((k) => [k, [] as PerfResult[]])) as Record<K, PerfResult[]>;
  for (let r = 0; r < rounds; r++) for (const k of keys) out[k].push(await run(k));
  return out;
}

export const medianQps = (rs: PerfResult[]) => median(rs.map((r) => r.qps));

export function table(rows: (string | number)[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  return rows.map((r) => r.map((c, i) => String(c).padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}
