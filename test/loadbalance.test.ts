import t from 'tap';
import { startServer } from './helpers/server.js';
import { dig } from './helpers/dig.js';
import { decodeMessage, encodeMessage, type Message } from '../src/server/wire/message.js';
import { TYPE } from '../src/server/wire/constants.js';
import { shuffleWire } from '../src/plugins/loadbalance/shuffle.js';
import { balance } from '../src/plugins/loadbalance/handler.js';

const ZONE = `$TTL 60
@     SOA ns hostmaster 1 7200 900 1209600 300
@     NS  ns
ns    A   192.0.2.1
www   A   192.0.2.10
www   A   192.0.2.11
www   A   192.0.2.12
www   A   192.0.2.13
www   AAAA 2001:db8::10
alias CNAME www
@     MX  10 mx1
@     MX  20 mx2
@     MX  30 mx3
@     MX  40 mx4
mx1   A   192.0.2.21
mx2   A   192.0.2.22
mx3   A   192.0.2.23
mx4   A   192.0.2.24
`;

t.test('loadbalance: order changes across queries, CNAME first, MX shuffled', async (t) => {
  const srv = await startServer('example.org {\n    loadbalance round_robin\n    file db\n}\n', { files: { db: ZONE } });
  t.teardown(() => srv.stop());
  const orders = new Set<string>();
  for (let i = 0; i < 12; i++) {
    const r = await dig(srv.port, ['alias.example.org', 'A']);
    t.equal(r.answer[0]?.type, 'CNAME', 'CNAME stays first');
    t.same(r.answer.slice(1).map((a) => a.data).sort(), ['192.0.2.10', '192.0.2.11', '192.0.2.12', '192.0.2.13']);
    orders.add(r.answer.map((a) => a.data).join(','));
  }
  t.ok(orders.size > 1, `A order changed (${orders.size} orders in 12 queries)`);
  const mx = new Set<string>();
  for (let i = 0; i < 12; i++) {
    const r = await dig(srv.port, ['example.org', 'MX']);
    t.equal(r.answer.length, 4);
    t.equal(r.additional.length, 4, 'glue intact');
    mx.add(r.answer.map((a) => a.data).join(','));
  }
  t.ok(mx.size > 1, `MX order changed (${mx.size} orders in 12 queries)`);
});

const base = (answer: Message['answer'], additional: Message['additional'] = []): Message => ({
  id: 7, rcode: 0, aa: true, question: { name: 'a.example.org.', type: TYPE.A, class: 1 }, answer, authority: [], additional,
});
const a = (ip: string, name = 'a.example.org.') => ({ name, type: TYPE.A, ttl: 30, data: ip });

t.test('shuffleWire', async (t) => {
  const m = base([{ name: 'a.example.org.', type: TYPE.CNAME, ttl: 30, data: 'b.example.org.' }, ...['1.1.1.1', '2.2.2.2', '3.3.3.3'].map((ip) => a(ip, 'b.example.org.'))]);
  const wire = encodeMessage({ ...m, edns: { udpSize: 1232, version: 0, do: false } });
  const seen = new Set<string>();
  for (let i = 0; i < 50; i++) {
    const out = shuffleWire(wire);
    t.equal(out.length, wire.length);
    const d = decodeMessage(out);
    t.equal(d.answer[0]!.type, TYPE.CNAME);
    t.ok(d.edns, 'OPT kept');
    t.same(d.answer.slice(1).map((r) => r.data).sort(), ['1.1.1.1', '2.2.2.2', '3.3.3.3']);
    seen.add(d.answer.map((r) => r.data).join());
  }
  t.ok(seen.size > 1, 'shuffled');
  // A CNAME after the addresses is moved to the front, as CoreDNS does.
  const late = decodeMessage(shuffleWire(encodeMessage(base([a('1.1.1.1'), { name: 'a.example.org.', type: TYPE.CNAME, ttl: 1, data: 'c.example.org.' }]))));
  t.same(late.answer.map((r) => r.type), [TYPE.CNAME, TYPE.A]);
  // Errors and single records are left alone (same buffer back).
  const nx = encodeMessage({ ...base([a('1.1.1.1'), a('2.2.2.2')]), rcode: 3 });
  t.equal(shuffleWire(nx), nx);
  const one = encodeMessage(base([a('1.1.1.1')]));
  t.equal(shuffleWire(one), one);
  // msg replies are encoded once and the result is wire.
  const r = balance({ rcode: 0, msg: base([a('1.1.1.1'), a('2.2.2.2')]) });
  t.ok(r.wire && !r.msg);
});
