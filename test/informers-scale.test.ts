import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { FakeApiServer, namespace, seedSynthetic, writeKubeconfig } from './helpers/fake-apiserver.js';
import { digShort } from './helpers/dig.js';
import { sleep } from './helpers/wait.js';
import { tempDir } from './helpers/temp-dir.js';

/**
 * 5k Services / 50k endpoints through a real `clusterdns serve` process (so its RSS is its own, not the
 * fake API server's): time from spawn to /ready, resident memory after the sync.
 */
const CLI = resolve('dist/src/cli.js');
const SERVICES = 5000;
const PER_SERVICE = 10;

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

const kb = (field: string, pid: number) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);

interface Run { syncMs: number; rssMB: number; peakMB: number; stderr: string; dnsPort: number; stop(): Promise<void> }

/** Spawns `clusterdns serve` (clean environment: no tap loaders or coverage) against `api`; waits for /ready. */
async function runClusterdns(api: FakeApiServer): Promise<Run> {
  const dir = tempDir('scale');
  const [dnsPort, readyPort] = [await freePort(), await freePort()];
  writeFileSync(join(dir, 'Corefile'), `cluster.local:${dnsPort} {
  bind 127.0.0.1
  ready 127.0.0.1:${readyPort}
  kubernetes cluster.local {
    kubeconfig ${writeKubeconfig(dir, api.url)}
    startup_timeout 60s
  }
}
`);
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/' };
  const started = performance.now();
  const child = spawn(process.execPath, [CLI, 'serve', '-conf', join(dir, 'Corefile')], { stdio: ['ignore', 'ignore', 'pipe'], env });
  let stderr = '';
  child.stderr!.on('data', (d) => { stderr = (stderr + d).slice(-4000); });
  const exited = new Promise((r) => child.once('exit', r));
  const stop = async () => {
    child.kill('SIGKILL');
    await exited;
  };
  let syncMs = NaN;
  for (const deadline = performance.now() + 60_000; performance.now() < deadline && child.exitCode === null;) {
    if (await fetch(`http://127.0.0.1:${readyPort}/ready`).then((r) => r.ok, () => false)) {
      syncMs = performance.now() - started;
      break;
    }
    await sleep(100);
  }
  const rssMB = child.exitCode === null ? kb('VmRSS', child.pid!) / 1024 : NaN;
  const peakMB = child.exitCode === null ? kb('VmHWM', child.pid!) / 1024 : NaN;
  return { syncMs, rssMB, peakMB, stderr, dnsPort, stop };
}

t.test(`initial LIST of ${SERVICES} services / ${SERVICES * PER_SERVICE} endpoints`, { skip: !existsSync(CLI) && 'dist/src/cli.js missing (run tsc -p . first)' }, async (t) => {
  const api = await new FakeApiServer().start();
  t.teardown(() => api.stop());
  api.apply('namespaces', namespace('default'));
  // Reference in the same run: the same process with an empty cluster.
  const empty = await runClusterdns(api);
  await empty.stop();
  t.ok(Number.isFinite(empty.syncMs), `empty cluster ready (stderr: ${empty.stderr.slice(-300)})`);

  seedSynthetic(api, SERVICES, PER_SERVICE);
  const full = await runClusterdns(api);
  t.teardown(full.stop);
  t.ok(Number.isFinite(full.syncMs), `ready within 60 s (stderr: ${full.stderr.slice(-300)})`);
  t.same(await digShort(full.dnsPort, [`svc${SERVICES - 1}.default.svc.cluster.local`, 'A']), [`10.96.${((SERVICES - 1) >> 8) & 255}.${(SERVICES - 1) & 255}`]);
  const dataMB = full.rssMB - empty.rssMB;
  t.comment(`sync ${SERVICES} services / ${SERVICES * PER_SERVICE} endpoints: ${full.syncMs.toFixed(0)} ms from spawn to /ready ` +
    `(empty cluster ${empty.syncMs.toFixed(0)} ms); RSS ${full.rssMB.toFixed(0)} MB (peak ${full.peakMB.toFixed(0)} MB), ` +
    `empty cluster ${empty.rssMB.toFixed(0)} MB: ${dataMB.toFixed(0)} MB for the data`);
  t.ok(dataMB < 200, `data costs ${dataMB.toFixed(0)} MB of RSS (< 200 MB)`);
  t.ok(full.syncMs < 30_000, `synced in ${full.syncMs.toFixed(0)} ms`);
});
