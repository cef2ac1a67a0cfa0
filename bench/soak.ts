/**
 * Soak (issue 14): one `clusterdns serve` on the server core with the kubeadm Corefile's shape, asked the
 * same legitimate cluster names at a fixed rate twice in one run: alone, then under every attack of
 * issue 14 at once. Reports the legitimate queries' latency and losses and the server's peak RSS for both,
 * and what each attack got. The load processes run pinned to the client core (the attack one niced, so the
 * legitimate client is measured, not queued behind it).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bigHeadlessManifest } from '../test/helpers/big-headless.js';
import { startBlackhole } from '../test/helpers/upstream.js';
import { mixQueries, synthesize } from './cluster-data.js';
import { CLIENT_CORE, NODE_FLAGS, rssMB, Scope, SERVER_CORE, sleep, startClusterdns, table } from './lib.js';
import type { AttackConfig, AttackResult, LegitConfig, LegitResult } from './soak-load.js';

export interface SoakOptions {
  /** Length of each phase (quiet, attack). */
  seconds: number;
  services: number;
  endpoints: number;
  /** Endpoints of the headless Service whose SRV answer the attack asks for in random case. */
  headless: number;
  /** Legitimate queries per second. */
  rate: number;
  /**
   * The server's V8 old-space limit in MB (0: V8's default). In a container Node sizes the heap from the
   * memory limit; on a large host V8 lets garbage pile up long before it collects, and peak RSS would
   * measure that laziness rather than what the server holds.
   */
  heapMb: number;
}

const LOAD = new URL('./soak-load.js', import.meta.url).pathname;

/** Runs one load role pinned to the client core; resolves with its JSON result. */
function load<T>(scope: Scope, role: 'legit' | 'attack', config: LegitConfig | AttackConfig): Promise<T> {
  const nice = role === 'attack' ? ['nice', '-n', '10'] : [];
  const child = spawn('taskset', ['-c', String(CLIENT_CORE), ...nice, process.execPath, LOAD, role, JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'pipe'] });
  scope.defer(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => { out += d; });
  child.stderr!.on('data', (d) => { err = (err + d).slice(-2000); });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => {
      try {
        if (code !== 0) throw new Error(`exit ${code}`);
        resolve(JSON.parse(out) as T);
      } catch (e) {
        reject(new Error(`soak ${role} load: ${(e as Error).message}: ${err}`));
      }
    });
  });
}

/** Samples the server's RSS every 100 ms until stopped; the peak. */
function rssPeak(pid: number): () => number {
  let peak = rssMB(pid);
  const timer = setInterval(() => { peak = Math.max(peak, rssMB(pid) || 0); }, 100);
  return () => {
    clearInterval(timer);
    return Math.max(peak, rssMB(pid) || 0);
  };
}

export async function benchSoak(o: SoakOptions): Promise<string> {
  const scope = new Scope();
  try {
    const dir = scope.dir('soak');
    const manifests = join(dir, 'manifests');
    mkdirSync(manifests);
    const data = synthesize(manifests, o.services, o.endpoints);
    writeFileSync(join(manifests, 'big.yaml'), bigHeadlessManifest('big', 'soak', o.headless));
    const queryFile = join(dir, 'legit.txt');
    mixQueries(queryFile, data.names);
    const silent = await startBlackhole();
    scope.defer(() => silent.stop());
    const corefile = (port: number) => `.:${port} {\n  bind 127.0.0.1\n  errors\n` +
      `  kubernetes cluster.local in-addr.arpa ip6.arpa {\n    manifests ${manifests}\n    fallthrough in-addr.arpa ip6.arpa\n    ttl 30\n  }\n` +
      `  forward . ${silent.addr}\n  cache 30 {\n    disable success cluster.local\n    disable denial cluster.local\n  }\n}\n`;
    const server = await startClusterdns(scope, dir, corefile, data.names[0]!,
      { nodeFlags: [...NODE_FLAGS, ...(o.heapMb > 0 ? [`--max-old-space-size=${o.heapMb}`] : [])] });
    await sleep(1000);
    const rssStart = rssMB(server.proc.pid);

    const legitConfig: LegitConfig = { port: server.port, seconds: o.seconds, rate: o.rate, queryFile };
    const phases: { name: string; legit: LegitResult; peak: number; after: number }[] = [];
    let attacked: AttackResult | undefined;
    for (const name of ['quiet', 'under attack']) {
      const peak = rssPeak(server.proc.pid);
      const attack = name === 'quiet' ? undefined : load<AttackResult>(scope, 'attack', {
        port: server.port, seconds: o.seconds, bigName: 'big.soak.svc.cluster.local.', stalled: 4, slowloris: 200,
      });
      const legit = await load<LegitResult>(scope, 'legit', legitConfig);
      if (attack) attacked = await attack;
      phases.push({ name, legit, peak: peak(), after: rssMB(server.proc.pid) });
      if (server.proc.exited()) throw new Error(`clusterdns died during the ${name} phase: ${server.proc.stderr()}`);
    }
    await server.proc.stop();

    const rows: (string | number)[][] = [['phase', 'legit sent', 'answered', 'lost', 'NOERROR/NXDOMAIN/other', 'p50 ms', 'p99 ms', 'max ms', 'peak RSS MB', 'RSS after MB']];
    for (const p of phases) {
      const rc = p.legit.rcodes;
      const other = p.legit.answered - (rc[0] ?? 0) - (rc[3] ?? 0);
      rows.push([p.name, p.legit.sent, p.legit.answered, p.legit.lost, `${rc[0] ?? 0}/${rc[3] ?? 0}/${other}`,
        p.legit.p50.toFixed(2), p.legit.p99.toFixed(2), p.legit.max.toFixed(1), p.peak.toFixed(0), p.after.toFixed(0)]);
    }
    const a = attacked!;
    return [
      `## Soak: ${o.rate} legitimate queries/s (cluster mix) for ${o.seconds} s, alone and under attack; ${o.services} services × ${o.endpoints} endpoints + a headless Service of ${o.headless}; server on core ${SERVER_CORE} (${o.heapMb > 0 ? `heap limit ${o.heapMb} MB` : 'V8 default heap'}), load on core ${CLIENT_CORE}`,
      `RSS at start ${rssStart.toFixed(0)} MB`,
      table(rows),
      table([
        ['attack (same time as the legitimate load)', 'what its client saw'],
        ['unique non-existent names under cluster.local (UDP, 200 in flight)', `${a.nxdomain.sent} sent, ${a.nxdomain.answered} answered, ${a.nxdomain.lost} unanswered`],
        ['big headless SRV in random letter case', `UDP: ${a.randomCaseSrv.udpAnswered} answered, ${a.randomCaseSrv.udpLost} unanswered; TCP: ${a.randomCaseSrv.tcpAnswers} answers read`],
        ['TCP pipelining that SRV and never reading', `${a.stalled.connections} connections, ${a.stalled.closedByServer} closed by the server, ${(a.stalled.bytesWritten / 1e6).toFixed(1)} MB of queries written`],
        ['slowloris (1 byte, then silence)', `${a.slowloris.connections} connections, ${a.slowloris.closedByServer} closed by the server`],
        ['names forwarded to an upstream that never answers (2000/s)', `${a.forward.sent} sent, ${a.forward.servfail} SERVFAIL, ${a.forward.refused} REFUSED, ${a.forward.lost} unanswered (6 s)`],
      ]),
    ].join('\n');
  } finally {
    await scope.close();
  }
}
