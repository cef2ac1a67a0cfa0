import t from 'tap';
import { readFileSync } from 'node:fs';
import { startServer } from './helpers/server.js';
import { dig } from './helpers/dig.js';

const ZONE = readFileSync(new URL('../zones/example.org.zone', import.meta.url), 'utf8');

const COREFILE = `example.org example.test {
    rewrite continue ttl exact mail.example.org 10
    rewrite continue ttl regex ^mail2\\. 100-200
    rewrite name exact ex.example.org www.example.org
    rewrite name prefix alias2 www answer auto
    rewrite name suffix .example.test .example.org answer auto
    rewrite name substring staging.example.org example.org answer auto
    rewrite name regex (.*)-v1\\.example\\.org {1}.example.org answer auto
    rewrite type HINFO TXT
    file db example.org
}
`;

const fmt = (rrs: { name: string; ttl: number; type: string; data: string }[]) => rrs.map((a) => `${a.name} ${a.ttl} ${a.type} ${a.data}`);

t.test('rewrite through dig', async (t) => {
  const srv = await startServer(COREFILE, { files: { db: ZONE } });
  t.teardown(() => srv.stop());
  const rows: { q: string[]; status?: string; answer: string[] }[] = [
    { q: ['ex.example.org', 'A'], answer: ['ex.example.org. 300 A 192.0.2.80', 'ex.example.org. 300 A 192.0.2.81'] },
    { q: ['alias2.example.org', 'AAAA'], answer: ['alias2.example.org. 3600 AAAA 2001:db8::80'] },
    { q: ['blog.example.test', 'A'], answer: [
      'blog.example.test. 3600 CNAME web.example.test.', 'web.example.test. 3600 CNAME www.example.test.',
      'www.example.test. 300 A 192.0.2.80', 'www.example.test. 300 A 192.0.2.81'] },
    { q: ['www.staging.example.org', 'A'], answer: ['www.staging.example.org. 300 A 192.0.2.80', 'www.staging.example.org. 300 A 192.0.2.81'] },
    { q: ['web-v1.example.org', 'A'], answer: [
      'web-v1.example.org. 3600 CNAME www.example.org.', 'www.example.org. 300 A 192.0.2.80', 'www.example.org. 300 A 192.0.2.81'] },
    { q: ['example.org', 'HINFO'], answer: ['example.org. 3600 TXT "v=spf1 mx -all"'] },
    { q: ['mail.example.org', 'A'], answer: ['mail.example.org. 10 A 192.0.2.25'] },
    { q: ['mail2.example.org', 'A'], answer: ['mail2.example.org. 200 A 192.0.2.26'] },
    { q: ['nothing-v1.example.org', 'A'], status: 'NXDOMAIN', answer: [] },
    { q: ['untouched.example.org', 'A'], status: 'NXDOMAIN', answer: [] },
  ];
  for (const row of rows) {
    const label = row.q.join(' ');
    const r = await dig(srv.port, row.q);
    t.equal(r.status, row.status ?? 'NOERROR', `${label} status`);
    t.notMatch(r.raw, /Question section mismatch/, `${label}: dig accepts the question`);
    t.match(r.raw, new RegExp(`;${row.q[0]!.replace(/\./g, '\\.')}\\.\\s+IN\\s+${row.q[1]}`), `${label}: original question echoed`);
    t.same(fmt(r.answer).sort(), row.answer.sort(), `${label} answer`);
  }
});

t.test('rewrite: stop ends the rule list, continue goes on', async (t) => {
  const srv = await startServer(`example.org {
    rewrite continue name exact a.example.org b.example.org
    rewrite name exact b.example.org www.example.org
    rewrite name exact www.example.org mail.example.org
    file db
}
`, { files: { db: ZONE } });
  t.teardown(() => srv.stop());
  const r = await dig(srv.port, ['a.example.org', 'A']);
  t.same(fmt(r.answer).sort(), ['a.example.org. 300 A 192.0.2.80', 'a.example.org. 300 A 192.0.2.81'], 'a -> b -> www, then stop');
});

t.test('rewrite: bad config', async (t) => {
  const rows: [string, RegExp][] = [
    ['rewrite', /Corefile:2 - Error during setup: plugin\/rewrite: no rule type specified for rewrite/],
    ['rewrite foo a b', /Corefile:2 - Error during setup: plugin\/rewrite: invalid rule type "foo"/],
    ['rewrite continue', /Corefile:2 - Error during setup: plugin\/rewrite: continue rule must begin with a rule type/],
    ['rewrite name a', /Corefile:2 - Error during setup: plugin\/rewrite: too few arguments for a name rule/],
    ['rewrite name fuzzy a b', /Corefile:2 - Error during setup: plugin\/rewrite: name rule supports only exact, prefix, suffix, substring, and regex name matching, received: fuzzy/],
    ['rewrite name regex ( b', /Corefile:2 - Error during setup: plugin\/rewrite: invalid regex matching pattern: \(/],
    ['rewrite name regex (a) {1}.{2}', /uses more subexpressions than its corresponding matching regex pattern/],
    ['rewrite name suffix a b answer', /Corefile:2 - Error during setup: plugin\/rewrite: invalid arguments for suffix rule/],
    ['rewrite name suffix a b answer nope', /invalid type "nope" for answer rule for suffix rule/],
    ['rewrite name suffix a b answer auto answer name x y', /auto name answer rule cannot be combined with explicit name answer rules/],
    ['rewrite type A', /Corefile:2 - Error during setup: plugin\/rewrite: type rules must have exactly two arguments/],
    ['rewrite type A BOGUS', /invalid type "BOGUS"/],
    ['rewrite class IN XX', /invalid class "XX"/],
    ['rewrite ttl a.example.org -', /invalid TTL '-' for a ttl rule/],
    ['rewrite ttl a.example.org 20-10', /invalid TTL '20-10' for a ttl rule/],
    ['rewrite answer name a b', /response rewrites must begin with a name rule/],
    ['whoami\nrewrite name a b\nrewrite name x', /Corefile:4 - Error during setup: plugin\/rewrite: too few arguments for a name rule/],
  ];
  for (const [block, want] of rows) {
    await t.rejects(startServer(`example.org {\n${block}\n}\n`), want, block.replace(/\n/g, ' '));
  }
});
