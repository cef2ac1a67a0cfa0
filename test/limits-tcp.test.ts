import t from 'tap';
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { loadPlugins } from '../src/plugins/registry.js';
import { DnsServer } from '../src/server/dns-server.js';
import { CLASS, TYPE } from '../src/server/wire/constants.js';
import { decodeMessage, encodeMessage } from '../src/server/wire/message.js';
import { tcpFrame } from '../src/server/wire/stream.js';
import { dig } from './helpers/dig.js';
import { sleep, waitFor } from './helpers/wait.js';
import { freePort } from './helpers/upstream.js';
import { tempDir } from './helpers/temp-dir.js';

/** Attacks on the TCP side of a listener at a small scale: each must leave UDP, TCP and HTTP answering. */

const CLI = new URL('../dist/src/cli.js', import.meta.url).pathname;

function frame(name: string, id: number): Buffer {
  return tcpFrame(encodeMessage({
    id, qr: false, rd: true, rcode: 0, question: { name, type: TYPE.A, class: CLASS.IN }, answer: [], authority: [], additional: [],
  }));
}

function rssKb(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1' }, () => resolve(s));
    s.once('error', reject);
  });
}

t.test('a client that pipelines queries and never reads: memory bounded, UDP keeps answering, connection closed', async (t) => {
  const dir = tempDir('tcp');
  const port = await freePort();
  // ~1.7 KB answers: 100 addresses for one name.
  const hosts = Array.from({ length: 100 }, (_, i) => `10.1.${i >> 8}.${i & 255} big.example.org`).join('\n');
  writeFileSync(join(dir, 'hosts'), hosts + '\n');
  writeFileSync(join(dir, 'Corefile'), `example.org:${port} {\n  bind 127.0.0.1\n  timeouts {\n    write 2s\n  }\n  hosts hosts\n}\n`);
  const child = spawn(process.execPath, [CLI, '-conf', join(dir, 'Corefile')], { stdio: ['ignore', 'ignore', 'pipe'] });
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL'); });
  await waitFor('the server', async () => (await dig(port, ['big.example.org']).catch(() => undefined))?.status === 'NOERROR', 10_000);
  const before = rssKb(child.pid!);

  const sock = await connect(port);
  sock.pause();
  let closed = false;
  sock.on('close', () => { closed = true; });
  sock.on('error', () => undefined);
  // 60k queries (~100 MB of answers if buffered); stop when the server stops reading or after 4 s.
  const chunk = Buffer.concat(Array.from({ length: 1000 }, (_, i) => frame('big.example.org', i)));
  const until = Date.now() + 4000;
  let sent = 0;
  while (sent < 60 && Date.now() < until && !closed) {
    if (!sock.write(chunk)) await Promise.race([new Promise((r) => sock.once('drain', r)), new Promise((r) => setTimeout(r, 300))]);
    sent++;
  }
  const during = await dig(port, ['big.example.org']);
  t.equal(during.status, 'NOERROR', 'a UDP query from another client is answered during the attack');
  const grew = rssKb(child.pid!) - before;
  t.ok(grew < 40_000, `server RSS grew ${Math.round(grew / 1024)} MB (< 40 MB) after ${sent}k pipelined queries`);
  // A paused socket sees no FIN: read what the kernel holds, then the close shows.
  await sleep(2500);
  sock.resume();
  await waitFor('the server to close the stalled connection', async () => closed, 5000);
  t.pass('the connection whose answers did not drain within write (2 s) was closed');
  t.equal((await dig(port, ['+tcp', 'big.example.org'])).status, 'NOERROR', 'TCP still answers');
  sock.destroy();
});

t.test('slowloris: connections capped, each message has a deadline, DNS and HTTP keep working', async (t) => {
  const dir = tempDir('tcp');
  const file = join(dir, 'Corefile');
  const httpPort = await freePort();
  writeFileSync(file, `example.org {\n  timeouts {\n    read 1s\n    idle 2s\n  }\n  health 127.0.0.1:${httpPort}\n  whoami\n}\n`);
  const server = new DnsServer({ conf: file, dnsPort: 0, bind: ['127.0.0.1'], maxTcpConns: 50, plugins: await loadPlugins() });
  await server.start();
  t.teardown(() => server.stop());
  const port = server.boundPort(0)!;

  const socks: net.Socket[] = [];
  let closed = 0;
  const t0 = Date.now();
  for (let i = 0; i < 200; i++) {
    const s = await connect(port);
    s.on('error', () => undefined);
    s.on('close', () => { closed++; });
    s.write(Buffer.from([0, 40, 0x12])); // 3 bytes of a 40-byte message, never the rest
    socks.push(s);
  }
  t.teardown(() => { for (const s of socks) s.destroy(); });
  await waitFor('the cap to push out the oldest', async () => closed >= 150, 3000);
  t.ok(closed >= 150, `${closed} of 200 slow connections closed to stay under the cap of 50`);
  t.equal((await dig(port, ['+tcp', 'example.org'])).status, 'NOERROR', 'a new TCP client is answered at the cap');
  t.equal((await dig(port, ['example.org'])).status, 'NOERROR', 'UDP answers');
  const health = await new Promise<number>((resolve, reject) => {
    http.get(`http://127.0.0.1:${httpPort}/health`, (res) => { res.resume(); resolve(res.statusCode!); }).on('error', reject);
  });
  t.equal(health, 200, '/health answers');
  await waitFor('every partial message to time out', async () => closed === 200, 4000);
  t.ok(Date.now() - t0 < 4000, `all 200 closed ${Date.now() - t0} ms after the first (read deadline 1 s)`);
});

t.test('half-closed TCP: the client shuts its side after the query; the answer still arrives', async (t) => {
  // An upstream that answers after 300 ms, so the answer comes after the client's FIN.
  const up = dgram.createSocket('udp4');
  await new Promise<void>((r) => up.bind(0, '127.0.0.1', () => r()));
  up.on('message', (msg, rinfo) => {
    const q = decodeMessage(msg);
    const reply = encodeMessage({ ...q, qr: true, ra: true, answer: [{ name: q.question!.name, type: TYPE.A, class: CLASS.IN, ttl: 5, data: '192.0.2.7' }] });
    setTimeout(() => up.send(reply, rinfo.port, rinfo.address), 300);
  });
  t.teardown(() => up.close());
  const dir = tempDir('tcp');
  const file = join(dir, 'Corefile');
  writeFileSync(file, `. {\n  forward . 127.0.0.1:${up.address().port} {\n    prefer_udp\n  }\n}\n`);
  const server = new DnsServer({ conf: file, dnsPort: 0, bind: ['127.0.0.1'], plugins: await loadPlugins() });
  await server.start();
  t.teardown(() => server.stop());
  const sock = await connect(server.boundPort(0)!);
  const got: Buffer[] = [];
  sock.on('data', (d) => got.push(d));
  const ended = new Promise<void>((r) => sock.on('end', () => r()));
  sock.end(frame('half.example.', 77));
  await ended;
  const buf = Buffer.concat(got);
  t.ok(buf.length > 2, 'an answer came back before the server closed its side');
  const m = decodeMessage(buf.subarray(2));
  t.equal(m.id, 77);
  t.same(m.answer.map((rr) => rr.data), ['192.0.2.7']);
});
