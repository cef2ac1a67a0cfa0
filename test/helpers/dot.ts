/** DNS over TLS test parts: a throwaway CA and certificates (openssl), unbound serving DoT on loopback. */
import { spawn } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import tls from 'node:tls';
import { runCommand } from '../../src/pkg/command.js';
import { freePort, stopper, unboundConfig } from './upstream.js';
import { sleep } from './wait.js';
import { tempDir } from './temp-dir.js';

export interface TestPki {
  dir: string;
  /** The CA certificate (PEM file path). */
  ca: string;
  /** Server (or client) certificate and key signed by the CA, for `names` (DNS or IP SANs). */
  cert: string;
  key: string;
  cleanup(): void;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  const r = await runCommand('sh', ['-c', `cd '${cwd}' && openssl ${args.map((a) => `'${a}'`).join(' ')}`]);
  if (r.code !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
}

/** A CA and one leaf certificate whose subjectAltName lists `names` (`IP:127.0.0.1` or plain DNS names). */
export async function makePki(names: string[]): Promise<TestPki> {
  const dir = tempDir('pki');
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await openssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=clusterdns test CA'], dir);
  await openssl(['req', ...ec, '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', `/CN=${names[0]}`], dir);
  const san = names.map((n) => (n.startsWith('IP:') ? n : `DNS:${n}`)).join(',');
  writeFileSync(join(dir, 'leaf.ext'), `subjectAltName=${san}\nextendedKeyUsage=serverAuth,clientAuth\n`);
  await openssl(['x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'leaf.pem',
    '-days', '2', '-extfile', 'leaf.ext'], dir);
  return {
    dir, ca: join(dir, 'ca.pem'), cert: join(dir, 'leaf.pem'), key: join(dir, 'leaf.key'),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export interface DotServer {
  port: number;
  pid: number;
  /** TCP connections to it that are established right now (ss). */
  connections(): Promise<{ local: string }[]>;
  stop(): Promise<void>;
}

/**
 * unbound answering only over TLS on 127.0.0.1:port (its `tls-port`), authoritative for `localData`
 * (`"www.example.com. A 192.0.2.1"` lines) under a static root zone, so nothing is ever recursed.
 */
export async function startUnboundDot(pki: TestPki, localData: string[], port?: number): Promise<DotServer> {
  const p = port ?? await freePort();
  const dir = tempDir('unbound');
  writeFileSync(join(dir, 'unbound.conf'), unboundConfig(dir, p, localData,
    [`tls-port: ${p}`, `tls-service-key: "${pki.key}"`, `tls-service-pem: "${pki.cert}"`]));
  const child = spawn('unbound', ['-d', '-c', join(dir, 'unbound.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const ca = [readFileSync(pki.ca)];
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`unbound exited with ${child.exitCode}: ${err}`);
    const up = await new Promise<boolean>((resolve) => {
      const s = tls.connect({ host: '127.0.0.1', port: p, ca, checkServerIdentity: () => undefined }, () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (up) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`unbound did not take TLS connections on 127.0.0.1:${p} within 10 s: ${err}`);
    }
    await sleep(50);
  }
  return {
    port: p,
    pid: child.pid!,
    connections: async () => {
      const r = await runCommand('ss', ['-Htn', 'state', 'established', `( dport = :${p} )`]);
      return r.stdout.split('\n').filter((l) => l.trim()).map((l) => ({ local: l.trim().split(/\s+/)[2]! }));
    },
    stop: stopper(child, () => rmSync(dir, { recursive: true, force: true })),
  };
}
