import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dig } from './dig.js';
import { freePort } from './upstream.js';
import { tempDir } from './temp-dir.js';
import { waitFor } from './wait.js';

const CLI = new URL('../../dist/src/cli.js', import.meta.url).pathname;

export interface ServedCli {
  port: number;
  dir: string;
  child: ChildProcess;
  /** What the process wrote on stdout and stderr so far (query and error logs). */
  output(): string;
  stop(): Promise<void>;
}

/**
 * Runs the built CLI (`clusterdns serve`, dist/: run `npx tsc -p .` first) on a Corefile whose `{PORT}`
 * placeholders become a free loopback port, and waits until `probe` (a dig argument list) gets any
 * answer. Callers register `stop` with t.teardown; it kills the process by its PID.
 */
export async function serveCli(corefile: (port: number) => string,
  opts: { files?: Record<string, string>; probe?: string[]; timeoutMs?: number } = {}): Promise<ServedCli> {
  const dir = tempDir('serve');
  const port = await freePort();
  for (const [name, text] of Object.entries(opts.files ?? {})) writeFileSync(join(dir, name), text);
  writeFileSync(join(dir, 'Corefile'), corefile(port));
  const child = spawn(process.execPath, [CLI, 'serve', '-conf', join(dir, 'Corefile')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (b: Buffer) => { out += b.toString(); });
  child.stderr!.on('data', (b: Buffer) => { out += b.toString(); });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    process.kill(child.pid!, 'SIGKILL');
    await exited;
  };
  try {
    await waitFor('clusterdns serve to answer', async () => {
      if (child.exitCode !== null) throw new Error(`clusterdns serve exited with ${child.exitCode}: ${out}`);
      return (await dig(port, opts.probe ?? ['localhost.', 'SOA']).catch(() => undefined))?.status;
    }, opts.timeoutMs ?? 20_000, 100);
  } catch (e) {
    await stop();
    throw e;
  }
  return { port, dir, child, output: () => out, stop };
}
