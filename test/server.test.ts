import t from 'tap';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { dig } from './helpers/dig.js';
import { startServer } from './helpers/server.js';
import { CLASS, TYPE } from '../src/server/wire/constants.js';
import { decodeMessage, encodeMessage } from '../src/server/wire/message.js';
import { StreamFrames, tcpFrame } from '../src/server/wire/stream.js';

const s = await startServer(`example.org {\n  whoami\n}\nsub.example.org {\n  whoami\n}\n`);
t.teardown(() => s.stop());

function udpExchange(port: number, packet: Buffer, waitMs = 1000): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const sock = createSocket('udp4');
    const timer = setTimeout(() => { sock.close(); resolve(null); }, waitMs);
    sock.on('message', (m) => { clearTimeout(timer); sock.close(); resolve(m); });
    sock.send(packet, port, '127.0.0.1');
  });
}

const q = (name: string, type = TYPE.A, klass: number = CLASS.IN, id = 4242) =>
  encodeMessage({ id, qr: false, rd: true, rcode: 0, question: { name, type, class: klass }, answer: [], authority: [], additional: [] });

t.test('dig over UDP, TCP, with and without EDNS', async (t) => {
  for (const args of [[], ['+tcp'], ['+noedns'], ['+tcp', '+noedns'], ['+dnssec']]) {
    const r = await dig(s.port, ['Example.ORG', 'A', ...args]);
    t.equal(r.status, 'NOERROR', args.join(' ') || 'udp');
    t.match(r.flags, ['qr', 'aa', 'rd'], 'flags');
    t.notOk(r.flags.includes('ra'), 'no RA without forward');
    t.same(r.additional.map((rr) => rr.name), ['Example.ORG.', `_${args.includes('+tcp') ? 'tcp' : 'udp'}.Example.ORG.`], 'owner echoes the question case');
    t.equal(r.ednsUdp !== undefined, !args.includes('+noedns'), 'OPT only when asked with EDNS');
  }
});

t.test('routing: longest zone wins, no zone or other class is REFUSED', async (t) => {
  const sub = await dig(s.port, ['a.sub.example.org']);
  t.equal(sub.status, 'NOERROR');
  t.equal((await dig(s.port, ['example.com'])).status, 'REFUSED');
  t.equal((await dig(s.port, ['-c', 'CH', 'example.org', 'TXT'])).status, 'REFUSED');
  t.equal((await dig(s.port, ['+tcp', 'example.org', 'AXFR'])).raw.includes('Transfer failed'), true, 'AXFR refused');
});

t.test('malformed queries: FORMERR, NOTIMP, silence for runts and responses', async (t) => {
  const good = q('example.org.');
  const formerr = await udpExchange(s.port, Buffer.concat([good.subarray(0, 4), Buffer.from([0, 2]), good.subarray(6)]));
  t.equal(formerr && decodeMessage(formerr).rcode, 1, 'QDCOUNT 2 -> FORMERR');
  const notimp = await udpExchange(s.port, Buffer.concat([good.subarray(0, 2), Buffer.from([0x28, 0x00]), good.subarray(4)]));
  t.equal(notimp && decodeMessage(notimp).rcode, 4, 'UPDATE opcode -> NOTIMP');
  t.equal(await udpExchange(s.port, good.subarray(0, 7), 300), null, 'runt dropped');
  const response = Buffer.from(good);
  response[2]! |= 0x80;
  t.equal(await udpExchange(s.port, response, 300), null, 'QR=1 never answered');
  const badvers = encodeMessage({ ...decodeMessage(good), qr: false, edns: { udpSize: 1232, version: 1, do: false } });
  const bv = await udpExchange(s.port, badvers);
  t.equal(bv && decodeMessage(bv).rcode, 16, 'EDNS version 1 -> BADVERS');
});

t.test('TCP: pipelined queries on one connection all get answers', async (t) => {
  const ids = Array.from({ length: 50 }, (_, i) => 1000 + i);
  const frames = ids.map((id) => {
    return tcpFrame(q(`n${id}.example.org.`, TYPE.A, CLASS.IN, id));
  });
  const got = await new Promise<number[]>((resolve, reject) => {
    const sock = connect(s.port, '127.0.0.1');
    const answers = new StreamFrames();
    const seen: number[] = [];
    sock.on('data', (d) => {
      answers.push(d);
      for (let m = answers.next(); m; m = answers.next()) seen.push(decodeMessage(m).id);
      if (seen.length === ids.length) { sock.end(); resolve(seen); }
    });
    sock.on('error', reject);
    // Split the stream at odd places: framing must not depend on segment boundaries.
    const all = Buffer.concat(frames);
    sock.write(all.subarray(0, 7));
    setTimeout(() => sock.write(all.subarray(7)), 20);
  });
  t.same([...got].sort(), ids);
});

t.test('many concurrent TCP connections', async (t) => {
  // 40 dig processes starting at once take ~1.5 s of CPU on an idle 2-core machine, more beside another test
  // file: a generous client timeout, so what is measured is the server's concurrency, not dig's start-up.
  const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => dig(s.port, ['+tcp', '+time=10', `c${i}.example.org`])));
  t.ok(answers.every((a) => a.status === 'NOERROR'));
});
