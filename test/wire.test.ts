import t from 'tap';
import { classMnemonic, className, classNumber, rcodeName, rcodeNumber, TYPE, typeByMnemonic, typeName, typeNumber } from '../src/server/wire/constants.js';
import { decodeMessage, encodeMessage, type Message } from '../src/server/wire/message.js';
import { nameToWire, readName, WireError } from '../src/server/wire/name.js';
import { isParseFailure, parseQuery } from '../src/server/wire/query.js';
import { StreamFrames, tcpFrame } from '../src/server/wire/stream.js';

const query = (name: string, type: number, extra: Partial<Message> = {}): Buffer =>
  encodeMessage({ id: 0x1234, qr: false, rd: true, rcode: 0, question: { name, type, class: 1 }, answer: [], authority: [], additional: [], ...extra });

t.test('names round-trip through wire form, escapes included', async (t) => {
  for (const name of ['.', 'a.', 'MyWeb.Default.svc.cluster.local.', 'a\\.b.example.', 'x\\032y.example.', 'back\\\\slash.']) {
    const w = nameToWire(name);
    t.equal(readName(w, 0)[0], name, name);
  }
  t.throws(() => nameToWire('a'.repeat(64) + '.'), WireError);
  t.throws(() => nameToWire(('a'.repeat(63) + '.').repeat(5)), WireError, 'longer than 255');
});

t.test('type, class and rcode names read as miekg/dns and dig spell them', async (t) => {
  // Corefile spelling (dns.StringToType/StringToRcode/StringToClass): exact mnemonics, every one we can name.
  t.equal(typeByMnemonic('AAAA'), TYPE.AAAA);
  t.equal(typeByMnemonic('DS'), 43, 'a type we only name still has a number');
  t.equal(typeByMnemonic('ANY'), TYPE.ANY);
  t.equal(typeByMnemonic('aaaa'), undefined, 'case-sensitive');
  t.equal(typeByMnemonic('TYPE28'), undefined, 'no TYPEnnn form');
  t.equal(rcodeNumber('NXDOMAIN'), 3);
  t.equal(rcodeNumber('NOTIMPL'), 4, "miekg's alias");
  t.equal(rcodeNumber('BADSIG'), 16);
  t.equal(rcodeNumber('BADCOOKIE'), 23);
  t.equal(rcodeNumber('nxdomain'), undefined, 'case-sensitive');
  t.equal(rcodeNumber('RCODE3'), undefined);
  t.equal(classNumber('CH'), 3);
  t.equal(classNumber('NONE'), 254);
  t.equal(classNumber('ch'), undefined);
  t.equal(className(2), 'CS');
  t.equal(className(7), 'CLASS7', 'dns.Class(7).String()');
  t.equal(classMnemonic(7), undefined, 'ClassToString has none');
  // Names back, as metrics labels and logs print them.
  for (let r = 0; r <= 23; r++) if (rcodeNumber(rcodeName(r)) !== undefined) t.equal(rcodeNumber(rcodeName(r)), r, `rcode ${r} round-trips`);
  t.equal(rcodeName(16), 'BADSIG', 'RcodeToString[16], as CoreDNS labels it');
  t.equal(rcodeName(12), 'RCODE12');
  t.equal(rcodeName(12, ''), '12');
  // dig/zone-file spelling: any case, TYPEnnn, only types we can encode by mnemonic.
  t.equal(typeNumber('srv'), TYPE.SRV);
  t.equal(typeNumber('TYPE65280'), 65280);
  t.equal(typeNumber('DS'), undefined, 'no RDATA codec: write TYPE43');
  t.equal(typeName(65280), 'TYPE65280');
});

t.test('stream framing: messages come out whole whatever the chunks, and outlive them', async (t) => {
  const msgs = [query('a.example.', TYPE.A), query('b.example.', TYPE.AAAA), Buffer.alloc(0)];
  const stream = Buffer.concat(msgs.map(tcpFrame));
  t.equal(stream.length, msgs.reduce((n, m) => n + m.length + 2, 0));
  for (const size of [1, 2, 3, 7, stream.length]) {
    const frames = new StreamFrames();
    const got: Buffer[] = [];
    const chunks: Buffer[] = [];
    for (let i = 0; i < stream.length; i += size) {
      chunks.push(Buffer.from(stream.subarray(i, i + size)));
      frames.push(chunks.at(-1)!);
      for (let m = frames.next(); m; m = frames.next()) got.push(m);
    }
    for (const c of chunks) c.fill(0xff);
    t.same(got, msgs, `chunks of ${size} bytes`);
    t.equal(frames.buffered, 0);
  }
  const partial = new StreamFrames();
  partial.push(tcpFrame(msgs[0]!).subarray(0, 5));
  t.equal(partial.next(), undefined, 'a partial message waits');
  t.equal(partial.buffered, 5);
});

t.test('readName rejects pointer loops and out-of-range pointers', async (t) => {
  t.throws(() => readName(Buffer.from([0xc0, 0x00]), 0), /loop/);
  t.throws(() => readName(Buffer.from([0x01, 0x61, 0xc0, 0x00]), 0), /loop/);
  t.throws(() => readName(Buffer.from([0xc0, 0x10]), 0), /past the end/);
  t.throws(() => readName(Buffer.from([0x05, 0x61]), 0), /past the end/);
  t.throws(() => readName(Buffer.from([0x80]), 0), /label type/);
});

t.test('encode/decode round trip with compression, SRV uncompressed, TXT, SOA, OPT', async (t) => {
  const m: Message = {
    id: 7, aa: true, rd: true, rcode: 3, question: { name: 'Foo.Example.', type: TYPE.SRV, class: 1 },
    answer: [
      { name: 'foo.example.', type: TYPE.SRV, ttl: 5, data: { priority: 0, weight: 50, port: 80, target: 'foo.example.' } },
      { name: 'foo.example.', type: TYPE.TXT, ttl: 5, data: ['hello', 'x'.repeat(300)] },
      { name: 'foo.example.', type: TYPE.AAAA, ttl: 5, data: 'fd00::1' },
    ],
    authority: [{ name: 'example.', type: TYPE.SOA, ttl: 5, data: { mname: 'ns.dns.example.', rname: 'hostmaster.example.', serial: 9, refresh: 7200, retry: 1800, expire: 86400, minimum: 5 } }],
    additional: [{ name: 'foo.example.', type: 65280, ttl: 1, data: Buffer.from([1, 2, 3]) }],
    edns: { udpSize: 1232, version: 0, do: true },
  };
  const wire = encodeMessage(m);
  const back = decodeMessage(wire);
  t.equal(back.rcode, 3);
  t.ok(back.aa);
  t.same(back.question, m.question);
  t.same(back.answer[0]!.data, m.answer[0]!.data);
  // Compression matches spelling exactly (miekg/dns does the same): names keep their own letter case.
  t.same(back.answer.map((r) => r.name), ['foo.example.', 'foo.example.', 'foo.example.']);
  t.same(back.answer[1]!.data, ['hello', 'x'.repeat(255), 'x'.repeat(45)]);
  t.equal(back.answer[2]!.data, 'fd00::1');
  t.same(back.authority[0]!.data, m.authority[0]!.data, 'SOA names not in the question\'s case');
  t.same(back.additional[0]!.data, Buffer.from([1, 2, 3]));
  t.equal(back.edns?.do, true);
  t.equal(back.edns?.udpSize, 1232);
  // RFC 2782: the SRV target is written out in full, never as a pointer.
  const srvTarget = nameToWire('foo.example.');
  t.ok(wire.includes(srvTarget), 'SRV target not compressed');
  let full = 0;
  for (let at = wire.indexOf(srvTarget); at >= 0; at = wire.indexOf(srvTarget, at + 1)) full++;
  t.equal(full, 2, 'written out twice (first owner, SRV target); every later owner is a pointer');
  const question = decodeMessage(encodeMessage({ ...m, additional: [{ name: 'Foo.Example.', type: TYPE.A, ttl: 1, data: '192.0.2.1' }] }));
  t.equal(question.additional[0]!.name, 'Foo.Example.', 'the same spelling as the question still points at it');
});

t.test('truncation keeps whole records that fit and sets TC only for dropped answers', async (t) => {
  const answer = Array.from({ length: 100 }, (_, i) => ({ name: 'big.example.', type: TYPE.A, ttl: 5, data: `10.0.${i >> 8}.${i & 255}` }));
  const m: Message = { id: 1, rcode: 0, question: { name: 'big.example.', type: TYPE.A, class: 1 }, answer, authority: [], additional: [] };
  const small = decodeMessage(encodeMessage(m, 512));
  t.ok(small.tc, 'TC set');
  t.ok(small.answer.length > 20 && small.answer.length < 100, `kept ${small.answer.length} records`);
  t.ok(encodeMessage(m, 512).length <= 512);
  const withOpt = encodeMessage({ ...m, edns: { udpSize: 1232, version: 0, do: false } }, 512);
  t.ok(withOpt.length <= 512, 'OPT budgeted');
  t.ok(decodeMessage(withOpt).edns, 'OPT kept when truncating');
  const glue = decodeMessage(encodeMessage({ ...m, answer: answer.slice(0, 5), additional: answer }, 512));
  t.notOk(glue.tc, 'dropping additional records does not set TC');
  t.equal(glue.answer.length, 5);
});

t.test('parseQuery: accepts a normal query, reads EDNS', async (t) => {
  const q = parseQuery(query('Redis.Default.svc.cluster.local.', TYPE.A, { edns: { udpSize: 4096, version: 0, do: true } }));
  if (isParseFailure(q)) throw new Error(q.reason);
  t.equal(q.name, 'Redis.Default.svc.cluster.local.');
  t.equal(q.lname, 'redis.default.svc.cluster.local.');
  t.equal(q.edns?.udpSize, 4096);
  t.equal(q.edns?.do, true);
  t.equal(q.id, 0x1234);
});

t.test('parseQuery: drops runts and responses, FORMERR/NOTIMP for the rest', async (t) => {
  const good = query('a.example.', TYPE.A);
  const cases: [string, Buffer, string | number][] = [
    ['runt', good.subarray(0, 11), 'drop'],
    ['response', Buffer.concat([good.subarray(0, 2), Buffer.from([0x81, 0x00]), good.subarray(4)]), 'drop'],
    ['opcode 2', Buffer.concat([good.subarray(0, 2), Buffer.from([0x10, 0x00]), good.subarray(4)]), 4],
    ['qdcount 0', Buffer.concat([good.subarray(0, 4), Buffer.from([0, 0]), good.subarray(6)]), 1],
    ['qdcount 2', Buffer.concat([good.subarray(0, 4), Buffer.from([0, 2]), good.subarray(6)]), 1],
    ['truncated question', good.subarray(0, good.length - 2), 1],
    ['pointer loop', Buffer.concat([good.subarray(0, 12), Buffer.from([0xc0, 0x0c, 0, 1, 0, 1])]), 1],
    ['arcount lies', Buffer.concat([good.subarray(0, 10), Buffer.from([0, 3]), good.subarray(12)]), 1],
  ];
  for (const [name, buf, want] of cases) {
    const r = parseQuery(buf);
    t.ok(isParseFailure(r), name);
    if (!isParseFailure(r)) continue;
    if (want === 'drop') t.ok(r.drop, name);
    else t.equal(!r.drop && r.rcode, want, name);
  }
});
