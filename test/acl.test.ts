import t from 'tap';
import { readFileSync } from 'node:fs';
import { startServer } from './helpers/server.js';
import { dig } from './helpers/dig.js';
import { startKnot } from './helpers/upstream.js';
import { inProcessServer } from './helpers/in-process.js';

const ZONE = readFileSync(new URL('../zones/example.org.zone', import.meta.url), 'utf8');
const ede = (raw: string) => /; EDE: (\d+)/.exec(raw)?.[1];

t.test('acl through dig: block (REFUSED, EDE 15), filter (NOERROR, EDE 17), drop (nothing), allow; forwarded to knotd', async (t) => {
  const knot = await startKnot({ zones: { 'example.org.': ZONE } });
  t.teardown(() => knot.stop());
  const srv = await startServer(`. {
    acl blocked.example.org {
        block
    }
    acl {
        allow type AAAA net 127.0.0.1
        block type A net 127.0.0.0/8
        filter type MX
        drop type TXT net ::1 127.0.0.1/32
    }
    prometheus 127.0.0.1:0
    forward . ${knot.addr}
}
`);
  t.teardown(() => srv.stop());
  const a = await dig(srv.port, ['www.example.org', 'A']);
  t.equal(a.status, 'REFUSED', 'A from 127.0.0.1: blocked');
  t.equal(ede(a.raw), '15', 'EDE Blocked');
  t.same(a.answer, []);
  const noEdns = await dig(srv.port, ['www.example.org', 'A', '+noedns']);
  t.equal(noEdns.status, 'REFUSED');
  t.notMatch(noEdns.raw, /OPT PSEUDOSECTION/, 'no OPT (and so no EDE) for a query without EDNS');
  const mx = await dig(srv.port, ['example.org', 'MX']);
  t.equal(mx.status, 'NOERROR', 'MX: filtered');
  t.equal(ede(mx.raw), '17', 'EDE Filtered');
  t.same(mx.answer, [], 'empty answer');
  const aaaa = await dig(srv.port, ['www.example.org', 'AAAA']);
  t.equal(aaaa.status, 'NOERROR', 'AAAA allowed: answered by knotd');
  t.same(aaaa.answer.map((r) => r.data), ['2001:db8::80']);
  const blocked = await dig(srv.port, ['blocked.example.org', 'AAAA']);
  t.equal(blocked.status, 'REFUSED', 'the first acl line covers blocked.example.org: its block decides before the allow');
  // dig exits 9 when no reply came.
  await t.rejects(dig(srv.port, ['www.example.org', 'TXT', '+time=1']), { code: 9 }, 'TXT: dropped, no answer');
  const soa = await dig(srv.port, ['example.org', 'SOA', '+tcp']);
  t.equal(soa.status, 'NOERROR', 'no policy matches: allowed, also over TCP');

  const text = await srv.server.registry.metrics();
  const value = (name: string, labels: string) => Number(new RegExp(`^${name}\\{${labels}\\} (\\d+)$`, 'm').exec(text)?.[1]);
  const server = `server="dns://:0"`;
  t.equal(value('coredns_acl_blocked_requests_total', `${server},zone="\\.",view=""`), 2);
  t.equal(value('coredns_acl_blocked_requests_total', `${server},zone="blocked\\.example\\.org\\.",view=""`), 1);
  t.equal(value('coredns_acl_filtered_requests_total', `${server},zone="\\.",view=""`), 1);
  t.equal(value('coredns_acl_dropped_requests_total', `${server},zone="\\.",view=""`), 1);
  t.equal(value('coredns_acl_allowed_requests_total', `${server},view=""`), 2);
});

t.test('acl: source networks, IPv6, types and zones (in-process, other source addresses)', async (t) => {
  const srv = await inProcessServer(`example.org {
    acl a.example.org {
        block net 2001:db8::/32
    }
    acl {
        allow net 192.168.1.0/24
        block net 192.168.0.0/16
        filter type AAAA TXT net *
    }
    file db
}
`, { files: { db: ZONE } });
  t.teardown(() => srv.close());
  const rows: [from: string, name: string, type: string, rcode: string, answers: number][] = [
    ['192.168.1.7', 'www.example.org.', 'A', 'NOERROR', 2],
    ['192.168.2.7', 'www.example.org.', 'A', 'REFUSED', 0],
    ['::ffff:192.168.2.7', 'www.example.org.', 'A', 'REFUSED', 0],
    ['10.0.0.1', 'www.example.org.', 'A', 'NOERROR', 2],
    ['10.0.0.1', 'www.example.org.', 'AAAA', 'NOERROR', 0],
    ['192.168.1.7', 'www.example.org.', 'AAAA', 'NOERROR', 1],
    ['2001:db8::1', 'a.example.org.', 'A', 'REFUSED', 0],
    ['2001:db8::1', 'www.example.org.', 'A', 'NOERROR', 2],
  ];
  for (const [from, name, type, rcode, answers] of rows) {
    const r = await srv.ask(name, type, { from, bufsize: 1232 });
    t.equal(r.rcode, rcode, `${from} ${name} ${type}: ${rcode}`);
    t.equal(r.answer.length, answers, `${from} ${name} ${type}: ${answers} answers`);
  }
});

t.test('acl: bad config', async (t) => {
  const rows: [string, RegExp][] = [
    ['acl {\n        permit\n    }', /Corefile:3 - Error during setup: plugin\/acl: unexpected token 'permit'; expect 'allow', 'block', 'filter' or 'drop'/],
    ['acl {\n        block from 10.0.0.0/8\n    }', /unexpected token 'from'; expect 'type \| net'/],
    ['acl {\n        block net\n    }', /no token specified in 'net' section/],
    ['acl {\n        block type BOGUS\n    }', /unexpected token 'BOGUS'; expect legal QTYPE/],
    ['acl {\n        block type a\n    }', /unexpected token 'a'; expect legal QTYPE/],
    ['acl {\n        block net 10.0.0.0/33\n    }', /illegal CIDR notation '10.0.0.0\/33'/],
    ['acl {\n        allow\n    }\n    acl {\n        drop net nope\n    }', /Corefile:6 - Error during setup: plugin\/acl: illegal CIDR notation 'nope'/],
  ];
  for (const [text, re] of rows) await t.rejects(startServer(`. {\n    ${text}\n    whoami\n}\n`), re, text);
});
