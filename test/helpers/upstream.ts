import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { CLASS, TYPE } from '../../src/server/wire/constants.js';
import { encodeMessage } from '../../src/server/wire/message.js';
import { isParseFailure, parseQuery } from '../../src/server/wire/query.js';
import type { Query } from '../../src/server/types.js';
import { sleep } from './wait.js';
import { tempDir } from './temp-dir.js';

/**
 * Real DNS servers (knotd, dnsmasq) as upstreams on 127.0.0.1 high ports, plus a black hole that never
 * answers. Every process is stopped by PID; callers register `stop` in t.teardown.
 */
export interface Upstream {
  host: string;
  port: number;
  /** `HOST:PORT`, as forward's `to` label shows it. */
  addr: string;
  pid: number;
  stop(): Promise<void>;
}

/** A port free for both UDP and TCP on 127.0.0.1 (the kernel picks it; a tiny race remains). */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = net.createServer();
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const udpFree = await new Promise<boolean>((resolve) => {
      const u = dgram.createSocket('udp4');
      u.once('error', () => resolve(false));
      u.bind(port, '127.0.0.1', () => u.close(() => resolve(true)));
    });
    if (udpFree) return port;
  }
  throw new Error('no port free for both UDP and TCP after 20 attempts');
}

/** One UDP query (SOA of `zone`); true when anything answered within `ms`. */
function answers(host: string, port: number, zone: string, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    const done = (ok: boolean) => { clearTimeout(timer); s.close(); resolve(ok); };
    const timer = setTimeout(() => done(false), ms);
    s.on('error', () => done(false));
    s.on('message', () => done(true));
    s.send(encodeMessage({
      id: 4242, qr: false, rd: false, rcode: 0, question: { name: zone, type: TYPE.SOA, class: CLASS.IN },
      answer: [], authority: [], additional: [],
    }), port, host);
  });
}

async function waitReady(child: ChildProcess, host: string, port: number, zone: string, what: string, stderr: () => string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}: ${stderr()}`);
    if (await answers(host, port, zone, 200)) return;
    await sleep(50);
  }
  child.kill('SIGKILL');
  throw new Error(`${what} did not answer on ${host}:${port} within 10 s: ${stderr()}`);
}

/** Stops `child` by PID (SIGTERM, SIGKILL after 3 s), then runs `cleanup`. */
export function stopper(child: ChildProcess, cleanup: () => void): () => Promise<void> {
  return async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      process.kill(child.pid!, 'SIGTERM');
      const timer = setTimeout(() => { if (child.exitCode === null) process.kill(child.pid!, 'SIGKILL'); }, 3000);
      await exited;
      clearTimeout(timer);
    }
    cleanup();
  };
}

/** A zone file for example.com (SOA, NS, ns A 127.0.0.1) with `records` after the header, for startKnot. */
export function exampleZone(records: string): string {
  return `$ORIGIN example.com.\n$TTL 300\n@ SOA ns hostmaster 1 3600 600 86400 60\n@ NS ns\nns A 127.0.0.1\n${records}`;
}

export interface KnotOptions {
  /** Zone origin (`example.com.`) → zone file text; '' for a secondary zone transferred from `primary`. */
  zones: Record<string, string>;
  /** `IP@PORT` of the primary that secondary zones transfer from; NOTIFY from its address is taken. */
  primary?: string;
  port?: number;
  /** Another loopback address (127.0.0.0/8) to listen on, e.g. with port 53 for resolv.conf tests. */
  host?: string;
  /** Largest UDP answer knotd sends (it sets TC above it), default 1232; knotd takes nothing below 1232. */
  udpMaxPayload?: number;
  /** Sign the zones on load (knotd automatic DNSSEC), so DO=1 answers carry RRSIGs. */
  dnssec?: boolean;
}

/** knotd serving `zones` authoritatively on 127.0.0.1:port (rundir and storage in a temp dir). */
export async function startKnot(opts: KnotOptions): Promise<Upstream> {
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port ?? await freePort();
  const dir = tempDir('knot');
  const origins = Object.keys(opts.zones);
  origins.forEach((origin, i) => { if (opts.zones[origin]) writeFileSync(join(dir, `z${i}.zone`), opts.zones[origin]); });
  const primary = opts.primary ? [
    'remote:', '  - id: primary', `    address: ${opts.primary}`,
    'acl:', '  - id: notify', `    address: ${opts.primary.split('@')[0]}`, '    action: notify',
  ] : [];
  writeFileSync(join(dir, 'knot.conf'), [
    'server:',
    `    rundir: "${dir}"`,
    `    listen: ${host}@${port}`,
    `    udp-max-payload: ${opts.udpMaxPayload ?? 1232}`,
    '    udp-workers: 1',
    '    tcp-workers: 1',
    '    background-workers: 1',
    'log:',
    '  - target: stderr',
    '    any: warning',
    'database:',
    `    storage: "${dir}"`,
    ...primary,
    'zone:',
    ...origins.flatMap((origin, i) => [
      `  - domain: "${origin}"`, `    storage: "${dir}"`, `    file: "z${i}.zone"`,
      ...(opts.zones[origin] ? [] : ['    master: primary', '    acl: notify', '    zonefile-sync: -1']),
      ...(opts.dnssec ? ['    dnssec-signing: on', '    zonefile-sync: -1'] : []),
    ]),
    '',
  ].join('\n'));
  const child = spawn('knotd', ['-c', join(dir, 'knot.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  await waitReady(child, host, port, origins[0]!, 'knotd', () => err);
  return { host, port, addr: `${host}:${port}`, pid: child.pid!, stop: stopper(child, () => rmSync(dir, { recursive: true, force: true })) };
}

/** unbound.conf for a foreground unbound on 127.0.0.1:port answering only `localData`; `extra` server lines (TLS). */
export function unboundConfig(dir: string, port: number, localData: string[], extra: string[] = []): string {
  return [
    'server:',
    '    verbosity: 0',
    `    interface: 127.0.0.1@${port}`,
    ...extra.map((l) => `    ${l}`),
    '    do-daemonize: no',
    '    username: ""',
    '    chroot: ""',
    `    directory: "${dir}"`,
    `    pidfile: "${join(dir, 'unbound.pid')}"`,
    '    use-syslog: no',
    '    logfile: ""',
    '    num-threads: 1',
    '    do-ip6: no',
    '    access-control: 127.0.0.0/8 allow',
    '    module-config: "iterator"',
    '    local-zone: "." static',
    ...localData.map((rr) => `    local-data: '${rr}'`),
    '',
  ].join('\n');
}

/**
 * unbound on 127.0.0.1:port answering `localData` (`"www.example.com. A 192.0.2.1"` lines) under a static
 * root zone, so nothing is ever recursed. Unlike knotd it answers an RRset too big for 64 KiB over TCP
 * with TC set (knotd answers SERVFAIL).
 */
export async function startUnbound(localData: string[], opts: { port?: number } = {}): Promise<Upstream> {
  const port = opts.port ?? await freePort();
  const dir = tempDir('unbound');
  writeFileSync(join(dir, 'unbound.conf'), unboundConfig(dir, port, localData));
  const child = spawn('unbound', ['-d', '-c', join(dir, 'unbound.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  await waitReady(child, '127.0.0.1', port, '.', 'unbound', () => err);
  return { host: '127.0.0.1', port, addr: `127.0.0.1:${port}`, pid: child.pid!, stop: stopper(child, () => rmSync(dir, { recursive: true, force: true })) };
}

/** dnsmasq on 127.0.0.1:port with only the records given as its own options (`--host-record=...`). */
export async function startDnsmasq(records: string[], opts: { port?: number; probeZone?: string } = {}): Promise<Upstream> {
  const port = opts.port ?? await freePort();
  const child = spawn('dnsmasq', [
    '--keep-in-foreground', '--no-resolv', '--no-hosts', '--no-poll', '--conf-file=/dev/null', '--user=root',
    `--port=${port}`, '--listen-address=127.0.0.1', '--bind-interfaces', '--cache-size=0', '--log-facility=-',
    ...records,
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  await waitReady(child, '127.0.0.1', port, opts.probeZone ?? '.', 'dnsmasq', () => err);
  return { host: '127.0.0.1', port, addr: `127.0.0.1:${port}`, pid: child.pid!, stop: stopper(child, () => undefined) };
}

/** UDP+TCP sockets on 127.0.0.1:port that take queries and never answer (a hung upstream). */
export async function startBlackhole(): Promise<{ port: number; addr: string; received: () => number; stop(): Promise<void> }> {
  const port = await freePort();
  let count = 0;
  const udp = dgram.createSocket('udp4');
  udp.on('message', () => { count++; });
  await new Promise<void>((r) => udp.bind(port, '127.0.0.1', () => r()));
  const conns = new Set<net.Socket>();
  const tcp = net.createServer((c) => { conns.add(c); c.on('data', () => { count++; }); c.on('close', () => conns.delete(c)); c.on('error', () => undefined); });
  await new Promise<void>((r) => tcp.listen(port, '127.0.0.1', () => r()));
  return {
    port, addr: `127.0.0.1:${port}`, received: () => count,
    stop: async () => {
      for (const c of conns) c.destroy();
      await new Promise<void>((r) => udp.close(() => r()));
      await new Promise<void>((r) => tcp.close(() => r()));
    },
  };
}

/** A Query as the server hands it to plugins, built from a real encoded query (for calling serve() directly). */
export function makeQuery(name: string, type: number, opts: { id?: number; do?: boolean; edns?: boolean; udpSize?: number; proto?: 'udp' | 'tcp'; rd?: boolean; cd?: boolean; class?: number } = {}): Query {
  const raw = encodeMessage({
    id: opts.id ?? Math.floor(Math.random() * 0xffff), qr: false, rd: opts.rd ?? true, cd: opts.cd, rcode: 0,
    question: { name, type, class: opts.class ?? CLASS.IN }, answer: [], authority: [], additional: [],
    edns: opts.edns === false ? null : { udpSize: opts.udpSize ?? 1232, version: 0, do: !!opts.do },
  });
  const pq = parseQuery(raw);
  if (isParseFailure(pq)) throw new Error(`makeQuery: ${pq.reason}`);
  return Object.assign(pq, {
    proto: opts.proto ?? 'udp', remoteAddress: '127.0.0.1', remotePort: 40000, family: 1 as const,
    server: 'dns://:53', zone: '.', start: performance.now(),
  });
}
