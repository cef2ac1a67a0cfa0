import t from 'tap';
import { readFileSync } from 'node:fs';
import { startServer } from './helpers/server.js';
import { dig } from './helpers/dig.js';
import { startKnot } from './helpers/upstream.js';
import { startRecorder } from './helpers/recording-upstream.js';
import { parseOptions } from '../src/plugins/rewrite/edns0.js';

/* rewrite's rcode, cname and edns0 rules, through dig, against knotd or a capturing upstream. */

const ZONE = readFileSync(new URL('../zones/example.org.zone', import.meta.url), 'utf8');
const fmt = (rrs: { name: string; type: string; data: string }[]) => rrs.map((a) => `${a.name} ${a.type} ${a.data}`);

t.test('rewrite rcode: responses to matching names get the new rcode', async (t) => {
  const knot = await startKnot({ zones: { 'example.org.': ZONE } });
  t.teardown(() => knot.stop());
  const srv = await startServer(`. {
    rewrite rcode regex ^gone\\. NXDOMAIN NOERROR
    rewrite continue rcode suffix .example.org 3 REFUSED
    rewrite rcode exact both.example.org NXDOMAIN NOERROR
    forward . ${knot.addr}
}
`);
  t.teardown(() => srv.stop());
  const gone = await dig(srv.port, ['gone.example.org', 'A']);
  t.equal(gone.status, 'NOERROR', 'NXDOMAIN -> NOERROR, and stop: the suffix rule is not reached');
  t.match(gone.authority, [{ type: 'SOA' }], 'the SOA stays');
  t.equal((await dig(srv.port, ['other.example.org', 'A'])).status, 'REFUSED', 'NXDOMAIN (3) -> REFUSED');
  t.equal((await dig(srv.port, ['both.example.org', 'A'])).status, 'NOERROR', 'two rules: the last applies first (CoreDNS order), the first no longer matches');
  const www = await dig(srv.port, ['www.example.org', 'A']);
  t.equal(www.status, 'NOERROR', 'other rcodes untouched');
  t.equal(www.answer.length, 2);
});

t.test('rewrite cname: the target is rewritten and resolved again (exact, prefix, suffix, substring, regex)', async (t) => {
  const knot = await startKnot({ zones: { 'example.org.': ZONE } });
  t.teardown(() => knot.stop());
  const rows: [rule: string, answer: string[]][] = [
    ['cname exact web.example.org mail.example.org', ['blog.example.org. CNAME mail.example.org.', 'mail.example.org. A 192.0.2.25']],
    ['cname prefix web mail2', ['blog.example.org. CNAME mail2.example.org.', 'mail2.example.org. A 192.0.2.26']],
    ['cname suffix eb.example.org. ww.example.org.', ['blog.example.org. CNAME www.example.org.', 'www.example.org. A 192.0.2.80', 'www.example.org. A 192.0.2.81']],
    ['cname substring we mail', ['blog.example.org. CNAME mailb.example.org.']],
    ['cname regex ^(w)eb\\.(.*)$ {1}ww.{2}', ['blog.example.org. CNAME www.example.org.', 'www.example.org. A 192.0.2.80', 'www.example.org. A 192.0.2.81']],
  ];
  for (const [rule, answer] of rows) {
    const srv = await startServer(`. {\n    rewrite ${rule}\n    forward . ${knot.addr}\n}\n`);
    try {
      const r = await dig(srv.port, ['blog.example.org', 'A']);
      t.equal(r.status, 'NOERROR', `${rule}: status`);
      t.same(fmt(r.answer).sort(), answer.sort(), `${rule}: answer`);
      t.same(fmt((await dig(srv.port, ['mail.example.org', 'A'])).answer), ['mail.example.org. A 192.0.2.25'], `${rule}: no CNAME, untouched`);
    } finally {
      await srv.stop();
    }
  }
});

t.test('rewrite edns0: local, nsid and subnet options on the query the upstream gets', async (t) => {
  const rec = await startRecorder();
  t.teardown(() => rec.stop());
  const srv = await startServer(`. {
    rewrite continue edns0 local set 0xffee 0xabcd
    rewrite continue edns0 local append 65517 {client_ip}
    rewrite continue edns0 local replace 0xffec {qname}
    rewrite continue edns0 nsid unset
    rewrite continue edns0 subnet set 24 56 revert
    rewrite edns0 local set 0xffeb {protocol}
    forward . ${rec.addr}
}
`);
  t.teardown(() => srv.stop());
  const sent = async (args: string[]) => {
    const r = await dig(srv.port, ['example.org', 'A', ...args]);
    t.equal(r.status, 'NOERROR', `${args}: answered`);
    const opts = parseOptions(rec.queries.at(-1)!.edns?.options);
    return { r, opts: Object.fromEntries(opts.map((o) => [o.code, o.data.toString('hex')])), count: opts.length };
  };
  const a = await sent(['+nsid', '+subnet=10.1.2.0/24', '+nocookie']);
  t.same(a.opts, { 65518: 'abcd', 65517: '7f000001', 8: '0001180' + '07f0000', 65515: Buffer.from('udp').toString('hex') },
    'local set, variable append, no 0xffec to replace, NSID removed, ECS replaced by the client /24, protocol');
  t.equal(a.count, 4);
  t.notMatch(a.r.raw, /NSID|CLIENT-SUBNET/, 'the response OPT carries none of the query\'s options');
  const b = await sent(['+noedns']);
  t.equal(rec.queries.at(-1)!.edns?.udpSize, 4096, 'a query without EDNS gets an OPT (4096) for the upstream');
  t.equal(b.count, 4, 'local set, two variables and the subnet added; nothing to replace or unset');
  t.notMatch(b.r.raw, /OPT PSEUDOSECTION/, 'the client, which sent no EDNS, gets none back');
});

t.test('rewrite rcode/cname/edns0: bad config', async (t) => {
  const rows: [string, RegExp][] = [
    ['rewrite rcode a.example.org NXDOMAIN', /too few \(2\) arguments for a rcode rule/],
    ['rewrite rcode a.example.org NOPE NOERROR', /invalid matching RCODE 'NOPE' for a rcode rule/],
    ['rewrite rcode a.example.org NXDOMAIN 24', /invalid replacement RCODE '24' for a rcode rule/],
    ['rewrite rcode fuzzy a.example.org NXDOMAIN NOERROR', /rcode rule supports only exact, prefix, suffix, substring, and regex name matching/],
    ['rewrite cname a.example.org', /too few \(1\) arguments for a cname rule/],
    ['rewrite cname fuzzy a b', /unknown cname rewrite type: fuzzy/],
    ['rewrite edns0 local', /too few arguments for an EDNS0 rule/],
    ['rewrite edns0 local toggle 0xffee 1', /invalid action: "toggle"/],
    ['rewrite edns0 local set 0xffee', /EDNS0 local rules require three or four args/],
    ['rewrite edns0 local set 0x1ffff a', /invalid EDNS0 option code '0x1ffff'/],
    ['rewrite edns0 local set 0xffee 0xabc', /invalid hex data '0xabc'/],
    ['rewrite edns0 local set 0xffee {server_ip}', /variable \{server_ip\} is not supported/],
    ['rewrite edns0 local set 0xffee {metadata/label}', /unsupported variable name "\{metadata\/label\}"/],
    ['rewrite edns0 nsid set x', /EDNS0 NSID rules can accept no more than one arg/],
    ['rewrite edns0 subnet set 33 56', /invalid IPv4 bit mask length 33/],
    ['rewrite edns0 subnet set 24 129', /invalid IPv6 bit mask length 129/],
    ['rewrite edns0 cookie set', /invalid rule type "cookie"/],
  ];
  for (const [line, re] of rows) await t.rejects(startServer(`. {\n    ${line}\n    whoami\n}\n`), re, line);
});
