import t from 'tap';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { dig } from './helpers/dig.js';
import { startServer } from './helpers/server.js';
import { TYPE } from '../src/server/wire/constants.js';
import { encodeMessage } from '../src/server/wire/message.js';
import { sleep } from './helpers/wait.js';

/** Deterministic PRNG so a failure can be replayed (seed printed). */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    return x / 0x100000000;
  };
}

const templates = [
  encodeMessage({ id: 1, qr: false, rd: true, rcode: 0, question: { name: 'a.example.org.', type: TYPE.A, class: 1 }, answer: [], authority: [], additional: [] }),
  encodeMessage({ id: 2, qr: false, rd: true, rcode: 0, question: { name: 'x.y.z.example.org.', type: TYPE.SRV, class: 1 }, answer: [], authority: [], additional: [], edns: { udpSize: 4096, version: 0, do: true } }),
  encodeMessage({ id: 3, qr: false, rcode: 0, question: { name: 'example.org.', type: TYPE.TXT, class: 1 },
    answer: [{ name: 'example.org.', type: TYPE.TXT, ttl: 1, data: ['t'] }], authority: [], additional: [] }),
];

function mutate(r: () => number): Buffer {
  const pick = Math.floor(r() * 8);
  const base = Buffer.from(templates[Math.floor(r() * templates.length)]!);
  const n = base.length;
  switch (pick) {
    case 0: return base.subarray(0, Math.floor(r() * n)); // truncated anywhere, headers included
    case 1: { // flipped bytes
      for (let i = 0; i < 1 + r() * 4; i++) base[Math.floor(r() * n)] = Math.floor(r() * 256);
      return base;
    }
    case 2: { // compression pointer loops and wild pointers in the question
      const at = 12 + Math.floor(r() * (n - 14));
      base[at] = 0xc0 | Math.floor(r() * 64);
      base[at + 1] = Math.floor(r() * 256);
      return base;
    }
    case 3: { // huge section counts
      base.writeUInt16BE(Math.floor(r() * 65536), 4 + 2 * Math.floor(r() * 4));
      return base;
    }
    case 4: { // label lengths past the end / over 63
      base[12] = 64 + Math.floor(r() * 192);
      return base;
    }
    case 5: return Buffer.from(Array.from({ length: Math.floor(r() * 600) }, () => Math.floor(r() * 256))); // noise
    case 6: return Buffer.concat([base.subarray(0, 12), Buffer.from(Array.from({ length: Math.floor(r() * 80) }, () => Math.floor(r() * 256)))]);
    default: { // bad OPT: wrong rdlength
      const opt = templates[1]!;
      const b = Buffer.from(opt);
      b.writeUInt16BE(Math.floor(r() * 65536), b.length - 2);
      return b;
    }
  }
}

const s = await startServer(`example.org {\n  whoami\n}\n`);
t.teardown(() => s.stop());
const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 1e9);
t.comment(`fuzz seed ${seed}`);

t.test('100k mutated datagrams over UDP, then a normal query still works', async (t) => {
  const r = rng(seed);
  const sock = createSocket('udp4');
  await new Promise<void>((res) => sock.bind(0, '127.0.0.1', () => res()));
  let replies = 0;
  sock.on('message', () => replies++);
  const deadline = Date.now() + 60_000;
  let sent = 0;
  for (let batch = 0; batch < 500 && Date.now() < deadline; batch++) {
    await Promise.all(Array.from({ length: 200 }, () => new Promise<void>((res) => sock.send(mutate(r), s.port, '127.0.0.1', () => res()))));
    sent += 200;
    // Let the server drain its socket so the packets are parsed rather than dropped by the kernel.
    await sleep(8);
  }
  await sleep(300);
  sock.close();
  t.ok(sent >= 100_000, `sent ${sent}`);
  t.ok(replies > 0, `server answered ${replies} of them (FORMERR etc.)`);
  const ok = await dig(s.port, ['example.org']);
  t.equal(ok.status, 'NOERROR', 'still answering');
});

t.test('mutated frames over TCP, then a normal TCP query still works', async (t) => {
  const r = rng(seed + 1);
  const deadline = Date.now() + 20_000;
  let frames = 0;
  for (let c = 0; c < 200 && Date.now() < deadline; c++) {
    await new Promise<void>((res) => {
      const sock = connect(s.port, '127.0.0.1');
      sock.on('error', () => res());
      sock.on('close', () => res());
      sock.on('connect', () => {
        const parts: Buffer[] = [];
        for (let i = 0; i < 100; i++) {
          const p = mutate(r);
          const len = Buffer.alloc(2);
          // Sometimes lie about the frame length as well.
          len.writeUInt16BE(r() < 0.05 ? Math.floor(r() * 65536) : p.length);
          parts.push(len, p);
          frames++;
        }
        sock.end(Buffer.concat(parts));
        setTimeout(() => sock.destroy(), 200);
      });
    });
  }
  t.ok(frames >= 10_000, `sent ${frames} frames`);
  const ok = await dig(s.port, ['+tcp', 'example.org']);
  t.equal(ok.status, 'NOERROR', 'still answering over TCP');
});
