import t from 'tap';
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dig } from './helpers/dig.js';
import { sleep } from './helpers/wait.js';
import { tempDir } from './helpers/temp-dir.js';

/** The built CLI as an operator runs it: SIGHUP and SIGUSR1 reload now, a broken file keeps the old config. */
const CLI = new URL('../dist/src/cli.js', import.meta.url).pathname;

async function freePort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const p = s.address().port;
  s.close();
  return p;
}

async function until(what: string, fn: () => Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn().catch(() => false))) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

t.test('SIGHUP/SIGUSR1 reload; a bad Corefile is rejected; SIGTERM exits 0', async (t) => {
  const dir = tempDir('signals');
  const port = await freePort();
  const conf = join(dir, 'Corefile');
  const block = (zone: string) => `${zone}:${port} {\n  bind 127.0.0.1\n  whoami\n}\n`;
  writeFileSync(conf, block('example.org'));
  const child = spawn(process.execPath, [CLI, '-conf', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stderr.on('data', (d) => { log += d; });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL'); });
  const status = async (name: string) => (await dig(port, [name])).status;

  await until('the server', async () => (await status('example.org')) === 'NOERROR');
  writeFileSync(conf, block('example.net'));
  child.kill('SIGHUP');
  await until('SIGHUP reload', async () => (await status('example.net')) === 'NOERROR');
  t.equal(await status('example.org'), 'REFUSED', 'old zone gone after SIGHUP');

  writeFileSync(conf, block('example.com') + 'oops {\n');
  child.kill('SIGUSR1');
  await until('the reload error in the log', async () => /reload failed/.test(log));
  t.match(log, /Corefile:\d+ - Error during parsing/, 'error names file and line');
  t.equal(await status('example.net'), 'NOERROR', 'the running config keeps serving');

  writeFileSync(conf, block('example.com'));
  child.kill('SIGUSR1');
  await until('SIGUSR1 reload', async () => (await status('example.com')) === 'NOERROR');

  child.kill('SIGTERM');
  t.equal(await exited, 0, 'SIGTERM exits 0');
});

t.test('-workers 2: both processes answer on the shared sockets, signals reach every worker', async (t) => {
  const dir = tempDir('workers');
  const port = await freePort();
  const conf = join(dir, 'Corefile');
  writeFileSync(conf, `example.org:${port} {\n  bind 127.0.0.1\n  whoami\n}\n`);
  const child = spawn(process.execPath, [CLI, 'serve', '-conf', conf, '-workers', '2'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stderr.on('data', (d) => { log += d; });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL'); });
  await until('two workers', async () => (log.match(/ worker \d+/g) ?? []).length >= 2, 15_000);
  const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => dig(port, [i % 2 ? '+tcp' : '+notcp', 'example.org'])));
  t.ok(answers.every((a) => a.status === 'NOERROR'), 'UDP and TCP answered');
  writeFileSync(conf, `example.net:${port} {\n  bind 127.0.0.1\n  whoami\n}\n`);
  child.kill('SIGHUP');
  await until('both workers reloaded', async () => {
    const r = await Promise.all(Array.from({ length: 10 }, () => dig(port, ['example.net'])));
    return r.every((a) => a.status === 'NOERROR');
  });
  child.kill('SIGTERM');
  t.equal(await exited, 0, 'the primary exits 0 once the workers are gone');
});
