/**
 * A pod's view of DNS without touching the host: private network, mount and PID namespaces (`unshare`;
 * everything started inside dies with it),
 * loopback up, a pod resolv.conf bind-mounted over /etc/resolv.conf, clusterdns (the built CLI)
 * listening on 127.0.0.1:53 inside. Real stub resolvers (glibc getent, a musl-static binary, dig,
 * nslookup) run in there; nothing leaves the namespace.
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { tempDir } from './temp-dir.js';

const run = promisify(execFile);
const ROOT = new URL('../../', import.meta.url).pathname;
const CLI = join(ROOT, 'dist/src/cli.js');

export const POD_RESOLV_CONF = 'search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver 127.0.0.1\noptions ndots:5\n';

/** Why pod-namespace tests cannot run here, or undefined when they can. */
export function podnsUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root for unshare --net --mount';
  if (!existsSync(CLI)) return `needs the built CLI (${CLI}): run npm run build`;
  try {
    execFileSync('unshare', ['--net', '--mount', '--pid', '--mount-proc', '--fork', 'true'], { stdio: 'ignore' });
  } catch {
    return 'unshare --net --mount is not permitted here';
  }
  return undefined;
}

const binaries = new Map<string, string>();

/** Compiles test/fixtures/gai.c once per process against glibc (`gcc`) or musl (`musl-gcc -static`). */
export function gaiBinary(libc: 'glibc' | 'musl'): string {
  const cached = binaries.get(libc);
  if (cached) return cached;
  const dir = tempDir('gai');
  const out = join(dir, `gai-${libc}`);
  const src = join(ROOT, 'test/fixtures/gai.c');
  if (libc === 'musl') execFileSync('musl-gcc', ['-static', '-O2', '-o', out, src]);
  else execFileSync('gcc', ['-O2', '-o', out, src]);
  binaries.set(libc, out);
  return out;
}

export interface PodResult { cmd: string; stdout: string; code: number }

export interface PodRun {
  results: PodResult[];
  /** clusterdns's stdout+stderr inside the namespace (query log lines when the Corefile has `log`). */
  serverLog: string;
}

/**
 * Runs `commands` (shell strings) one after another inside a fresh pod namespace with clusterdns serving
 * `corefile` on 127.0.0.1:53. `files` are written to a temp dir that is also the working directory.
 * `before` runs first inside the namespace (e.g. to start an upstream on 127.0.0.2).
 */
export async function inPodNamespace(opts: {
  corefile: string; commands: string[]; files?: Record<string, string>; resolvConf?: string; before?: string; timeoutMs?: number;
}): Promise<PodRun> {
  const dir = tempDir('pod');
  for (const [name, text] of Object.entries(opts.files ?? {})) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  writeFileSync(join(dir, 'Corefile'), opts.corefile);
  writeFileSync(join(dir, 'resolv.conf'), opts.resolvConf ?? POD_RESOLV_CONF);
  const sep = '@@@CLUSTERDNS-STEP@@@';
  const steps = opts.commands.map((c) => `echo "${sep}"; ( ${c} ) 2>&1; echo "${sep} rc=$?"`).join('\n');
  const script = `set -u
cd "${dir}"
ip link set lo up
ip addr add 127.0.0.2/8 dev lo 2>/dev/null || true
mount --bind "${dir}/resolv.conf" "$(readlink -f /etc/resolv.conf)"
${opts.before ?? ''}
"${process.execPath}" "${CLI}" serve -conf "${dir}/Corefile" > "${dir}/server.log" 2>&1 &
SERVER=$!
for i in $(seq 1 100); do
  if dig @127.0.0.1 +time=1 +tries=1 dns-version.cluster.local TXT >/dev/null 2>&1 || dig @127.0.0.1 +time=1 +tries=1 . NS >/dev/null 2>&1; then break; fi
  kill -0 $SERVER 2>/dev/null || { echo "server died"; cat "${dir}/server.log"; exit 1; }
  sleep 0.1
done
sleep 0.2
${steps}
kill $SERVER; wait $SERVER 2>/dev/null
`;
  writeFileSync(join(dir, 'pod.sh'), script);
  let stdout: string;
  try {
    ({ stdout } = await run('unshare', ['--net', '--mount', '--pid', '--mount-proc', '--fork', 'bash', join(dir, 'pod.sh')], { timeout: opts.timeoutMs ?? 60_000, maxBuffer: 16 << 20 }));
  } catch (e) {
    const err = e as { stdout?: string; message: string };
    throw new Error(`pod namespace run failed: ${err.message}\n${err.stdout ?? ''}\n${existsSync(join(dir, 'server.log')) ? readFileSync(join(dir, 'server.log'), 'utf8') : ''}`);
  }
  const results: PodResult[] = [];
  const parts = stdout.split(`${sep}\n`).slice(1);
  parts.forEach((p, i) => {
    const m = new RegExp(`^([\\s\\S]*?)${sep} rc=(\\d+)\\n?`).exec(p);
    results.push({ cmd: opts.commands[i]!, stdout: m ? m[1]! : p, code: m ? Number(m[2]) : -1 });
  });
  return { results, serverLog: readFileSync(join(dir, 'server.log'), 'utf8') };
}
