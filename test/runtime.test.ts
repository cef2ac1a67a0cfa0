import t, { type Test } from 'tap';
import { execFile, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SEMI_SPACE_FLAG } from '../src/runtime.js';
import { reusePortWorkers } from '../src/server/listeners.js';
import { dig } from './helpers/dig.js';
import { sleep } from './helpers/wait.js';
import { tempDir } from './helpers/temp-dir.js';

/** How the bin starts (shebang, V8 flags) and what `-workers` binds, on the node running the suite. */
const run = promisify(execFile);
const CLI = new URL('../dist/src/cli.js', import.meta.url).pathname;
const built = existsSync(CLI) ? false : 'dist/src/cli.js missing (run tsc -p . first)';
const canExecve = typeof (process as { execve?: unknown }).execve === 'function';

async function freePort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const p = s.address().port;
  s.close();
  return p;
}

async function until<T>(what: string, fn: () => T | undefined | Promise<T | undefined>, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await Promise.resolve(fn()).catch(() => undefined);
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** Starts `clusterdns serve` (no node flags, as the bin would) on a whoami block; stopped at teardown. */
async function serve(t: Test, args: string[] = [], env: NodeJS.ProcessEnv = process.env) {
  const port = await freePort();
  const conf = join(tempDir('runtime'), 'Corefile');
  writeFileSync(conf, `example.org:${port} {\n  bind 127.0.0.1\n  whoami\n}\n`);
  const child = spawn(process.execPath, [CLI, 'serve', '-conf', conf, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env });
  let log = '';
  child.stderr.on('data', (d) => { log += d; });
  const exited = new Promise((r) => child.once('exit', r));
  t.teardown(async () => {
    if (child.exitCode === null) child.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  // Generous: -workers starts three processes, on a machine the suite keeps busy.
  await until(`the server (${log})`, async () => (await dig(port, ['example.org'])).status === 'NOERROR', 30_000);
  return { port, pid: child.pid! };
}

t.test('the shebang works under BusyBox env (no GNU -S)', { skip: built }, async (t) => {
  const first = readFileSync(CLI, 'utf8').split('\n')[0]!;
  const m = /^#!(\S+)(?: (.*))?$/.exec(first);
  t.ok(m, `shebang line: ${first}`);
  t.equal(m![1], '/usr/bin/env');
  t.notMatch(m![2] ?? '', /^-S/, 'no env -S');
  const busybox = ['/usr/bin/busybox', '/bin/busybox'].find(existsSync);
  // Not installed: the shape checks above stand alone (.ci/run installs it).
  if (!busybox) return;
  // The kernel passes everything after the interpreter as one argument, as here.
  const { stdout } = await run(busybox, ['env', m![2]!, CLI, '--version']);
  t.match(stdout, /^clusterdns-\S+\n/);
});

t.test(`started without node flags, the server runs with ${SEMI_SPACE_FLAG}`, { skip: built || (!canExecve && 'needs process.execve (Node >= 22.15)') }, async (t) => {
  const { pid } = await serve(t);
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  t.ok(argv.includes(SEMI_SPACE_FLAG), `re-exec'd with the flag, same pid: ${argv.join(' ')}`);
});

t.test('SO_REUSEPORT workers only when asked for, from Node 22.12 on', async (t) => {
  const reuse = { CLUSTERDNS_WORKER_SOCKETS: 'reuseport' };
  for (const [version, env, want] of [
    ['26.12.1', {}, false], ['20.20.2', reuse, false], ['22.11.0', reuse, false], ['22.12.0', reuse, true], ['24.1.0', reuse, true], ['26.12.1', reuse, true],
  ] as const) t.equal(reusePortWorkers(version, env), want, `${version} ${JSON.stringify(env)}`);
});

const reuse = { ...process.env, CLUSTERDNS_WORKER_SOCKETS: 'reuseport' };
for (const [design, env, own] of [['shared', process.env, false], ['reuseport', reuse, reusePortWorkers(undefined, reuse)]] as const) {
  t.test(`-workers 2, ${design}: ${own ? 'one UDP and one TCP socket per worker' : 'one socket of each, shared'}`, { skip: built }, async (t) => {
    const { port } = await serve(t, ['-workers', '2'], env);
    // One line per socket; a shared socket lists every process holding it.
    const sockets = async (proto: 'u' | 't') => (await run('ss', [`-H${proto}ln`, `sport = :${port}`])).stdout.trim().split('\n').filter(Boolean).length;
    // The second worker may bind after the first one answers.
    if (own) await until('both workers bound', async () => (await sockets('u')) === 2);
    t.equal(await sockets('u'), own ? 2 : 1, 'UDP');
    t.equal(await sockets('t'), own ? 2 : 1, 'TCP');
  });
}
