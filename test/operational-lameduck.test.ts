import t from 'tap';
import { execFile, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { dig } from './helpers/dig.js';
import { sleep } from './helpers/wait.js';
import { tempDir } from './helpers/temp-dir.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const cli = join(root, 'dist/src/cli.js');

/** `npm test` builds first (pretest); a direct run of this file builds when the sources are newer. */
async function ensureBuilt(): Promise<void> {
  const newest = (dir: string): number => Math.max(0, ...readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts')).map((e) => statSync(join(e.parentPath, e.name)).mtimeMs));
  if (existsSync(cli) && statSync(cli).mtimeMs >= newest(join(root, 'src'))) return;
  // tsc exits non-zero on type errors anywhere in the tree but still emits; the spawn below is the check.
  await promisify(execFile)('npx', ['tsc', '-p', '.'], { cwd: root, timeout: 180_000 }).catch(() => {});
}

/** A port free for TCP and UDP on 127.0.0.1 right now (the CLI needs fixed numbers in its Corefile). */
async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = createServer().once('error', reject).listen(0, '127.0.0.1', () => {
        const p = (srv.address() as { port: number }).port;
        srv.close(() => resolve(p));
      });
    });
    const udpFree = await new Promise<boolean>((resolve) => {
      const s = createSocket('udp4').once('error', () => resolve(false));
      s.bind(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (udpFree) return port;
  }
}

async function status(port: number, path: string): Promise<number> {
  try {
    return (await fetch(`http://127.0.0.1:${port}${path}`)).status;
  } catch {
    return 0;
  }
}

t.test('SIGTERM: /ready fails at once, DNS keeps answering for the lameduck duration, then exit 0', async (t) => {
  await ensureBuilt();
  const [dnsPort, httpPort] = [await freePort(), await freePort()];
  const dir = tempDir('lameduck');
  const conf = join(dir, 'Corefile');
  writeFileSync(conf, `.:${dnsPort} {\n  bind 127.0.0.1\n  health 127.0.0.1:${httpPort} {\n    lameduck 1s\n  }\n  ready 127.0.0.1:${httpPort}\n  whoami\n}\n`);
  const child = spawn(process.execPath, [cli, 'serve', '-conf', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += String(d); });
  const exited = new Promise<{ code: number | null; at: number }>((resolve) => child.on('exit', (code) => resolve({ code, at: performance.now() })));
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL'); });

  const deadline = Date.now() + 30_000;
  while ((await status(httpPort, '/ready')) !== 200) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`server did not become ready:\n${stderr}`);
    await sleep(100);
  }
  t.equal((await dig(dnsPort, ['example.org', 'A'])).status, 'NOERROR', 'serving before SIGTERM');

  const sent = performance.now();
  child.kill('SIGTERM');
  await sleep(100);
  t.equal(await status(httpPort, '/ready'), 503, '/ready fails at once');
  t.equal(await status(httpPort, '/health'), 200, '/health stays OK during lameduck');
  for (const waitMs of [300, 700]) {
    await sleep(Math.max(0, sent + waitMs - performance.now()));
    t.equal((await dig(dnsPort, ['example.org', 'A'])).status, 'NOERROR', `still answering ${waitMs} ms after SIGTERM`);
  }
  const { code, at } = await exited;
  const took = at - sent;
  t.equal(code, 0, 'exit status 0');
  t.ok(took >= 950 && took < 3000, `exited after the 1 s lameduck (${Math.round(took)} ms)`);
  t.match(stderr, /\[INFO\] plugin\/health: Going into lameduck mode for 1s/);
});
