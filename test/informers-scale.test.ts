import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { FakeApiServer, namespace, seedSynthetic, writeKubeconfig } from './helpers/fake-apiserver.js';
import { digShort } from './helpers/dig.js';

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

t.test(`initial LIST of ${SERVICES} services / ${SERVICES * PER_SERVICE} endpoints`, { skip: !existsSync(CLI) && 'dist/src/cli.js missing (run tsc -p . first)' }, async (t) => {
  const api = await new FakeApiServer().start();
  api.apply('namespaces', namespace('default'));
  seedSynthetic(api, SERVICES, PER_SERVICE);
  t.teardown(() => api.stop());
  const dir = mkdtempSync(join(tmpdir(), 'clusterdns-scale-'));
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
  const started = performance.now();
  // A clean environment: tap's NODE_OPTIONS loaders and NODE_V8_COVERAGE would double time and memory.
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/' };
  const child = spawn(process.execPath, [CLI, 'serve', '-conf', join(dir, 'Corefile')], { stdio: ['ignore', 'ignore', 'pipe'], env });
  let stderr = '';
  child.stderr!.on('data', (d) => { stderr = (stderr + d).slice(-4000); });
  const exited = new Promise((r) => child.once('exit', r));
  t.teardown(async () => {
    child.kill('SIGKILL');
    await exited;
  });

  let syncMs = NaN;
  for (const deadline = performance.now() + 60_000; performance.now() < deadline;) {
    const ok = await fetch(`http://127.0.0.1:${readyPort}/ready`).then((r) => r.ok, () => false);
    if (ok) { syncMs = performance.now() - started; break; }
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  t.ok(Number.isFinite(syncMs), `ready within 60 s (stderr: ${stderr.slice(-500)})`);
  t.same(await digShort(dnsPort, [`svc${SERVICES - 1}.default.svc.cluster.local`, 'A']), [`10.96.${((SERVICES - 1) >> 8) & 255}.${(SERVICES - 1) & 255}`]);
  const rssMB = kb('VmRSS', child.pid!) / 1024;
  const peakMB = kb('VmHWM', child.pid!) / 1024;
  t.comment(`sync ${SERVICES} services / ${SERVICES * PER_SERVICE} endpoints: ${syncMs.toFixed(0)} ms from spawn to /ready; RSS ${rssMB.toFixed(0)} MB (peak ${peakMB.toFixed(0)} MB)`);
  t.ok(rssMB < 150, `RSS ${rssMB.toFixed(0)} MB < 150 MB`);
  t.ok(syncMs < 30_000, `synced in ${syncMs.toFixed(0)} ms`);
});
