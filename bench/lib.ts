/** Benchmark plumbing: processes pinned to cores, dnsperf runs, knotd as the reference server. */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);

export const SERVER_CORE = 1;
export const CLIENT_CORE = 0;

export function scratch(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `clusterdns-bench-${prefix}-`));
}

export async function freePort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const port = s.address().port;
  s.close();
  return port;
}

export interface Proc { child: ChildProcess; name: string; stop(): Promise<void> }

/** Starts a command pinned to `core`, then re-pins every thread (knotd re-pins its own workers). */
export async function startPinned(name: string, cmd: string, args: string[], core: number, env?: NodeJS.ProcessEnv): Promise<Proc> {
  const child = spawn('taskset', ['-c', String(core), cmd, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: env ?? process.env });
  let stderr = '';
  child.stderr!.on('data', (d) => { stderr = (stderr + d).slice(-4000); });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  child.once('exit', (code, sig) => {
    if (code && code !== 0) process.stderr.write(`${name} exited ${code} ${sig ?? ''}: ${stderr}\n`);
  });
  return { child, name, stop };
}

export async function repin(pid: number, core: number): Promise<void> {
  await exec('taskset', ['-a', '-p', '-c', String(core), String(pid)]);
}

/** Waits until `name` gets any answer from 127.0.0.1:port (bounded). */
export async function waitForDns(port: number, name: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const { stdout } = await exec('dig', ['@127.0.0.1', '-p', String(port), '+time=1', '+tries=1', '+short', name]);
      if (stdout.trim()) return;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) throw new Error(`no answer for ${name} on port ${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export interface PerfResult { qps: number; avgLatencyMs: number; lost: number; rcodes: Record<string, number>; completed: number }

/** Runs dnsperf pinned to the client core. */
export async function dnsperf(port: number, queryFile: string, seconds: number, extra: string[] = []): Promise<PerfResult> {
  const { stdout } = await exec('taskset', ['-c', String(CLIENT_CORE), 'dnsperf', '-s', '127.0.0.1', '-p', String(port),
    '-d', queryFile, '-l', String(seconds), '-c', '4', '-q', '200', ...extra], { timeout: (seconds + 30) * 1000, maxBuffer: 1 << 20 });
  const num = (re: RegExp) => Number(re.exec(stdout)?.[1] ?? NaN);
  const rcodes: Record<string, number> = {};
  const rc = /Response codes:\s+(.*)/.exec(stdout)?.[1] ?? '';
  for (const m of rc.matchAll(/([A-Z]+) (\d+)/g)) rcodes[m[1]!] = Number(m[2]);
  return {
    qps: num(/Queries per second:\s+([\d.]+)/), avgLatencyMs: num(/Average Latency \(s\):\s+([\d.]+)/) * 1000,
    lost: num(/Queries lost:\s+(\d+)/), completed: num(/Queries completed:\s+(\d+)/), rcodes,
  };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** knotd with one UDP worker serving `zones` (name → zone file text), all threads on the server core. */
export async function startKnot(zones: Record<string, string>): Promise<{ port: number; proc: Proc }> {
  const dir = scratch('knot');
  const port = await freePort();
  const zoneConf = Object.entries(zones).map(([origin, text]) => {
    const file = join(dir, `${origin}.zone`);
    writeFileSync(file, text);
    return `  - domain: ${origin}\n    file: "${file}"\n    journal-content: none\n    zonefile-sync: -1\n    semantic-checks: off`;
  }).join('\n');
  writeFileSync(join(dir, 'knot.conf'), `server:\n  rundir: "${dir}"\n  listen: 127.0.0.1@${port}\n  udp-workers: 1\n  tcp-workers: 1\n  background-workers: 1\n` +
    `database:\n  storage: "${dir}"\nlog:\n  - target: stderr\n    any: error\nzone:\n${zoneConf}\n`);
  const proc = await startPinned('knotd', 'knotd', ['-c', join(dir, 'knot.conf')], SERVER_CORE);
  return { port, proc };
}

export function table(rows: (string | number)[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  return rows.map((r) => r.map((c, i) => String(c).padEnd(widths[i]!)).join('  ')).join('\n');
}
