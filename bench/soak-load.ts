/**
 * The load processes of `npm run bench soak`, one per role, started pinned to the client core by
 * bench/soak.ts: `node soak-load.js ROLE JSON`, the result as one JSON line on stdout.
 *   legit:  cluster names from a dnsperf-format file at a fixed rate; latency of each answer.
 *   attack: every attack of issue 14 at once for the same time (see attack()).
 * Every loop stops at `seconds`; sockets still open then are destroyed.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { CLASS, TYPE, typeNumber } from '../src/server/wire/constants.js';
import { encodeMessage } from '../src/server/wire/message.js';
import { StreamFrames, tcpFrame } from '../src/server/wire/stream.js';
import { udpLoad, type LoadResult } from '../test/helpers/udp-load.js';

export interface LegitConfig { port: number; seconds: number; rate: number; queryFile: string }
export interface LegitResult { sent: number; answered: number; lost: number; rcodes: Record<number, number>; p50: number; p99: number; max: number }

export interface AttackConfig {
  port: number;
  seconds: number;
  /** A name with a big answer (a headless Service with thousands of endpoints), asked for SRV. */
  bigName: string;
  /** Connections that send queries for bigName and never read. */
  stalled: number;
  /** Connections that send one byte and wait. */
  slowloris: number;
}

/** What each attack did, as its client saw it. */
export interface AttackResult {
  nxdomain: { sent: number; answered: number; lost: number };
  randomCaseSrv: { udpAnswered: number; udpLost: number; tcpAnswers: number };
  stalled: { connections: number; closedByServer: number; bytesWritten: number };
  slowloris: { connections: number; closedByServer: number };
  forward: { sent: number; servfail: number; refused: number; lost: number };
}

const pct = (sorted: number[], p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! : NaN);

async function legit(c: LegitConfig): Promise<LegitResult> {
  const queries = readFileSync(c.queryFile, 'utf8').split('\n').filter(Boolean).map((l) => {
    const [name, type] = l.split(' ');
    return { name: name!.endsWith('.') ? name! : `${name}.`, type: typeNumber(type!) ?? TYPE.A };
  });
  const r = await udpLoad({
    port: c.port, rate: c.rate, window: c.rate, count: Math.ceil(c.rate * c.seconds), maxMs: c.seconds * 1000,
    query: (i) => queries[i % queries.length]!,
  });
  return { sent: r.sent, answered: r.answered, lost: r.lost, rcodes: r.rcodes, p50: pct(r.latencyMs, 50), p99: pct(r.latencyMs, 99), max: r.latencyMs.at(-1) ?? NaN };
}

function queryFrame(name: string, type: number, id: number): Buffer {
  return tcpFrame(encodeMessage({ id, qr: false, rd: true, rcode: 0, question: { name, type, class: CLASS.IN }, answer: [], authority: [], additional: [] }));
}

let seed = 12345;
const random = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
const randomCase = (s: string) => [...s].map((ch) => (random() < 0.5 ? ch.toUpperCase() : ch)).join('');

/** Keeps `n` connections doing `use` until `until`, opening a new one whenever the server closes one. */
function connections(port: number, n: number, until: number, use: (s: net.Socket) => void): { opened: () => number; closedByServer: () => number; stop: () => void } {
  const open = new Set<net.Socket>();
  let opened = 0;
  let closedByServer = 0;
  let stopping = false;
  const connect = () => {
    if (stopping || Date.now() >= until) return;
    const s = net.connect({ port, host: '127.0.0.1' });
    opened++;
    open.add(s);
    s.on('error', () => undefined);
    s.on('connect', () => use(s));
    s.on('close', () => {
      open.delete(s);
      if (stopping) return;
      closedByServer++;
      setTimeout(connect, 10);
    });
  };
  for (let i = 0; i < n; i++) connect();
  return {
    opened: () => opened, closedByServer: () => closedByServer,
    stop: () => {
      stopping = true;
      for (const s of open) s.destroy();
    },
  };
}

/**
 * Issue 14's attacks on one server at once: unique non-existent names under the cluster zone, a big
 * headless SRV answer in random letter case (UDP, and TCP read back), TCP connections that pipeline
 * queries for it and never read, slowloris connections, and names forwarded to an upstream that never
 * answers.
 */
async function attack(c: AttackConfig): Promise<AttackResult> {
  const until = Date.now() + c.seconds * 1000;
  const maxMs = c.seconds * 1000;
  let stalledBytes = 0;
  const stalled = connections(c.port, c.stalled, until, (s) => {
    s.pause();
    const chunk = Buffer.concat(Array.from({ length: 200 }, (_, i) => queryFrame(randomCase(c.bigName), TYPE.SRV, i)));
    const pump = () => {
      while (!s.destroyed && Date.now() < until && s.write(chunk)) stalledBytes += chunk.length;
    };
    s.on('drain', pump);
    pump();
  });
  const slow = connections(c.port, c.slowloris, until, (s) => { s.write(Buffer.from([0])); });
  let tcpAnswers = 0;
  const srvTcp = connections(c.port, 1, until, (s) => {
    const frames = new StreamFrames();
    let id = 0;
    const ask = () => { if (Date.now() < until) s.write(queryFrame(randomCase(c.bigName), TYPE.SRV, id++ & 0xffff)); };
    s.on('data', (d) => {
      frames.push(d);
      while (frames.next()) {
        tcpAnswers++;
        ask();
      }
    });
    for (let i = 0; i < 4; i++) ask();
  });
  const [nx, srvUdp, fwd] = await Promise.all([
    udpLoad({ port: c.port, window: 200, count: Infinity, maxMs, timeoutMs: 1000,
      query: (i) => ({ name: `a${i}-${Math.floor(random() * 1e9)}.default.svc.cluster.local.`, type: TYPE.A }) }),
    udpLoad({ port: c.port, window: 8, count: Infinity, maxMs, timeoutMs: 1000, bufsize: 1232,
      query: () => ({ name: randomCase(c.bigName), type: TYPE.SRV }) }),
    udpLoad({ port: c.port, window: 5000, rate: 2000, count: Infinity, maxMs, timeoutMs: 6000,
      query: (i) => ({ name: `x${i}-${Math.floor(random() * 1e9)}.example.com.`, type: TYPE.A }) }),
  ]);
  const result: AttackResult = {
    nxdomain: { sent: nx.sent, answered: nx.answered, lost: nx.lost },
    randomCaseSrv: { udpAnswered: srvUdp.answered, udpLost: srvUdp.lost, tcpAnswers },
    stalled: { connections: stalled.opened(), closedByServer: stalled.closedByServer(), bytesWritten: stalledBytes },
    slowloris: { connections: slow.opened(), closedByServer: slow.closedByServer() },
    forward: { sent: fwd.sent, servfail: count(fwd, 2), refused: count(fwd, 5), lost: fwd.lost },
  };
  for (const group of [stalled, slow, srvTcp]) group.stop();
  return result;
}

const count = (r: LoadResult, rcode: number) => r.rcodes[rcode] ?? 0;

const [role, json] = process.argv.slice(2);
const run = role === 'legit' ? legit(JSON.parse(json!) as LegitConfig) : role === 'attack' ? attack(JSON.parse(json!) as AttackConfig) : undefined;
if (!run) throw new Error(`usage: soak-load.js legit|attack JSON (got '${role}')`);
process.stdout.write(JSON.stringify(await run) + '\n');
process.exit(0);
