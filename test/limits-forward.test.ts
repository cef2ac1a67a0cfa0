import t from 'tap';
import dgram from 'node:dgram';
import { CLASS, RCODE, TYPE } from '../src/server/wire/constants.js';
import { checkMessage } from '../src/server/wire/check.js';
import { decodeMessage, encodeMessage } from '../src/server/wire/message.js';
import { dig } from './helpers/dig.js';
import { sleep, waitFor } from './helpers/wait.js';
import { startServer } from './helpers/server.js';

/** forward against upstreams that never answer or that lie about their own records. */

/** A UDP upstream that records source ports and answers with `reply(query)` (null: never). */
async function scriptedUpstream(reply: (q: Buffer) => Buffer | null) {
  const sock = dgram.createSocket({ type: 'udp4', recvBufferSize: 8 << 20 });
  const ports = new Set<number>();
  let received = 0;
  sock.on('message', (msg, rinfo) => {
    received++;
    ports.add(rinfo.port);
    const out = reply(msg);
    if (out) sock.send(out, rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  return { port: sock.address().port, ports, received: () => received, stop: () => new Promise<void>((r) => sock.close(() => r())) };
}

function query(name: string, id: number): Buffer {
  return encodeMessage({ id, qr: false, rd: true, rcode: 0, question: { name, type: TYPE.A, class: CLASS.IN }, answer: [], authority: [], additional: [] });
}

/** Sends `n` queries from one socket as fast as the loop allows; resolves with the rcodes of what came back within `waitMs`. */
async function flood(port: number, n: number, waitMs: number): Promise<number[]> {
  const sock = dgram.createSocket('udp4');
  const rcodes: number[] = [];
  sock.on('message', (m) => rcodes.push(m[3]! & 0xf));
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  for (let i = 0; i < n; i++) {
    sock.send(query(`q${i}.flood.example.`, i & 0xffff), port, '127.0.0.1');
    // Paced so that the kernel's receive buffers (server and upstream share this process) do not overflow.
    if (i % 100 === 99) await sleep(10);
  }
  await sleep(waitMs);
  sock.close();
  return rcodes;
}

t.test('unresponsive upstream: pending queries spread over sockets, local names keep answering', async (t) => {
  const up = await scriptedUpstream(() => null);
  t.teardown(() => up.stop());
  const s = await startServer(`ok.example {\n  hosts {\n    192.0.2.1 ok.example\n  }\n}\n. {\n  forward . 127.0.0.1:${up.port} {\n    max_concurrent 5000\n    max_fails 0\n  }\n}\n`);
  t.teardown(() => s.stop());
  const flooding = flood(s.port, 2000, 300);
  const started = Date.now();
  const local = await dig(s.port, ['ok.example']);
  t.equal(local.status, 'NOERROR', 'hosts answers while 2000 forwards are pending');
  t.ok(Date.now() - started < 1500, `within ${Date.now() - started} ms`);
  await flooding;
  t.ok(up.received() >= 1000, `the upstream got ${up.received()} queries`);
  t.ok(up.ports.size >= Math.ceil(up.received() / 256), `${up.ports.size} source ports (at most 256 pending per socket)`);
  await waitFor('an answer after the flood', async () => (await dig(s.port, ['ok.example']).catch(() => undefined))?.status === 'NOERROR', 4000);
  t.pass('still answering after the flood');
});

t.test('max_concurrent defaults to 1000: queries beyond it get REFUSED at once', async (t) => {
  const up = await scriptedUpstream(() => null);
  t.teardown(() => up.stop());
  // A read_timeout past the test's end: no second try muddies the count.
  const s = await startServer(`. {\n  forward . 127.0.0.1:${up.port} {\n    read_timeout 10s\n  }\n}\n`);
  t.teardown(() => s.stop());
  // Through the server's own query path (no sockets on the asking side: nothing is lost to a full buffer).
  const late = new Promise<number>((r) => setTimeout(() => r(-1), 500));
  const rcodes = await Promise.all(Array.from({ length: 1500 }, (_, i) =>
    Promise.race([s.server.resolveInternal(`q${i}.flood.example`, TYPE.A).then((m) => m.rcode, () => -2), late])));
  const refused = rcodes.filter((r) => r === RCODE.REFUSED).length;
  t.equal(refused, 500, `${refused} of 1500 REFUSED at once while 1000 wait on the upstream`);
  await sleep(300);
  t.ok(up.received() <= 1000, `the upstream saw ${up.received()} queries (some dropped by its receive buffer)`);
});

/** An answer for the query in `q` whose answer section is `rr` (raw bytes), with ANCOUNT 1. */
function forged(q: Buffer, rr: Buffer): Buffer {
  const qEnd = 12 + (q.readUInt16BE(4) ? q.subarray(12).indexOf(0) + 5 : 0);
  const head = Buffer.from(q.subarray(0, qEnd));
  head.writeUInt16BE(0x8180, 2);
  head.writeUInt16BE(1, 6);
  head.writeUInt16BE(0, 8);
  head.writeUInt16BE(0, 10);
  return Buffer.concat([head, rr]);
}

const LIES: Record<string, Buffer> = {
  // A record whose RDLENGTH claims 200 bytes; 4 follow.
  rdlength: Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 200, 192, 0, 2, 1]),
  // CNAME whose target is a pointer to itself.
  loop: Buffer.from([0xc0, 0x0c, 0, 5, 0, 1, 0, 0, 0, 60, 0, 2, 0xc0, 12 + 0]),
  // CNAME whose RDLENGTH (2) is shorter than the name it holds.
  short: Buffer.from([0xc0, 0x0c, 0, 5, 0, 1, 0, 0, 0, 60, 0, 2, 3, 0x77, 0x77, 0x77, 0]),
};

t.test('upstream records with lying RDLENGTH or pointer loops: SERVFAIL, never relayed', async (t) => {
  const up = await scriptedUpstream((q) => {
    const name = decodeMessage(q).question!.name.toLowerCase();
    const kind = name.split('.')[0]!;
    if (kind === 'loop') {
      // The pointer must point at the RDATA itself: offset of the record's RDATA in the forged message.
      const msg = forged(q, LIES.loop!);
      msg.writeUInt16BE(0xc000 | (msg.length - 2), msg.length - 2);
      return msg;
    }
    return forged(q, LIES[kind] ?? Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 9]));
  });
  t.teardown(() => up.stop());
  const s = await startServer(`. {\n  forward . 127.0.0.1:${up.port} {\n    max_fails 0\n  }\n}\n`);
  t.teardown(() => s.stop());
  for (const kind of Object.keys(LIES)) {
    const r = await dig(s.port, [`${kind}.lies.example`]);
    t.equal(r.status, 'SERVFAIL', `${kind}: SERVFAIL`);
    t.same(r.answer, [], `${kind}: nothing relayed`);
  }
  const good = await dig(s.port, ['good.lies.example', '+short']);
  t.match(good.raw, /192\.0\.2\.9/, 'a well-formed answer from the same upstream is relayed');
});

t.test('checkMessage: table of malformed messages', async (t) => {
  const q = query('x.example.', 1);
  t.equal(checkMessage(forged(q, Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 1, 2, 3, 4]))), undefined, 'well formed');
  t.match(checkMessage(forged(q, LIES.rdlength!)), /RDLENGTH 200 runs past the end/);
  t.match(checkMessage(forged(q, LIES.short!)), /name does not fill RDATA/);
  t.match(checkMessage(Buffer.from([0, 1, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12])), /bad question name/, 'question pointing at itself');
  t.match(checkMessage(Buffer.alloc(5)), /shorter than a header/);
  t.match(checkMessage(forged(q, Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 3, 1, 2, 3]))), /A with RDLENGTH 3/);
});
