import t from 'tap';
import { execFile } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileExpression, type Value } from '../src/plugins/view/expression.js';
import { loadPlugins } from '../src/plugins/registry.js';
import { checkCorefile } from '../src/server/check.js';
import { closePlugins, loadConfig } from '../src/server/config.js';
import { DnsServer } from '../src/server/dns-server.js';
import type { Peer } from '../src/server/listeners.js';
import type { Query } from '../src/server/types.js';
import { CLASS } from '../src/server/wire/constants.js';
import { dig } from './helpers/dig.js';
import { inProcessServer } from './helpers/in-process.js';
import { startServer } from './helpers/server.js';
import { tempDir } from './helpers/temp-dir.js';

const query = (over: Partial<Query> = {}): Query => ({
  id: 4242, opcode: 0, rd: true, cd: false, name: 'Example.COM.', lname: 'example.com.', type: 1, class: CLASS.IN,
  edns: { udpSize: 1232, version: 0, do: true } as Query['edns'], raw: Buffer.alloc(40), questionEnd: 29,
  proto: 'udp', remoteAddress: '10.0.0.7', remotePort: 40000, family: 1, server: 'dns://:53', zone: '.', start: 0, ...over,
});
const peer: Peer = { proto: 'udp', address: '10.0.0.7', port: 40000, family: 1, localAddress: '10.0.0.1', localPort: 53 };

t.test('expressions: values for one query (CoreDNS expression_test and view_test cases, expr-lang operators)', async (t) => {
  const cases: [string, Value | 'error'][] = [
    // CoreDNS view_test TestFilter_ErrorPaths: a non-bool or an evaluation error does not match.
    ["name() == 'example.com.'", true],
    ["name() == 'notexample.com.'", false],
    ['1', 1],
    ["incidr('invalid', '1.2.3.0/24')", 'error'],
    // expression_test TestInCidr.
    ["incidr('1.2.3.4', '1.2.0.0/16')", true],
    ["incidr('10.2.3.4', '1.2.0.0/16')", false],
    ["incidr('1:2::3:4', '1:2::/64')", true],
    ["incidr('A:2::3:4', '1:2::/64')", false],
    ["incidr('::ffff:1.2.3.4', '1.2.0.0/16')", true],
    ["incidr('1.2.3.4', '::/0')", false],
    ["incidr('10.0.0.7', '10.0.0.0/29') && incidr(client_ip(), '10.0.0.0/24')", true],
    ["incidr(client_ip(), '10.0.0.8/29')", false],
    ['incidr(client_ip(), "10.0.0.6/31")', true],
    // Every query function.
    ['type()', 'A'], ['class()', 'IN'], ['proto()', 'udp'], ['client_ip()', '10.0.0.7'], ['port()', '40000'],
    ['server_ip()', '10.0.0.1'], ['server_port()', '53'], ['size()', 40], ['bufsize()', 1232], ['do()', true],
    ['id()', 4242], ['opcode()', 0], ["metadata('kubernetes/client-namespace')", ''],
    // Operators, precedence, literals.
    ["(type() == 'A' && name() == 'example.com.') || client_ip() == '1.2.3.4'", true],
    ["type() == 'AAAA' and name() == 'example.com.' or client_ip() == '10.0.0.7'", true],
    ["type() in ['A', 'AAAA']", true], ["type() not in ['A', 'AAAA']", false], ["type() in ['MX']", false],
    ["not (type() == 'A')", false], ["!(proto() == 'tcp')", true], ["proto() != 'tcp'", true],
    ["name() matches '^example\\\\.com\\\\.$'", true], ["name() matches '^abc\\\\..*\\\\.example\\\\.com\\\\.$'", false],
    ["name() matches '(?i)EXAMPLE'", true], ["name() not matches 'foo'", true],
    ["name() endsWith '.com.'", true], ["name() startsWith 'ex'", true], ["name() contains 'ample'", true],
    ['bufsize() >= 1232 && size() < 512', true], ['bufsize() > 4096', false], ['1 + 2 * 3 == 7', true], ['2 ** 3 ** 2', 512],
    ['7 % 3', 1], ['-1 < 0', true], ['10 / 4', 2.5], ["'a' < 'b'", true], ["'a' + \"b\" == 'ab'", true],
    ["true ? 'yes' : 'no'", 'yes'], ["nil ?? 'x'", 'x'], ["lower('AbC') == 'abc'", true], ["len(name())", 12],
    ["'\\x41\\u0042' == 'AB'", true], ['`a\\b` == "a\\\\b"', true], ['0x10 == 16', true], ['1_000 == 1000', true],
    ['[1, 2] == [1, 2]', true], ['true && false || true', true], ['false and true or true', true], ['not false', true],
  ];
  for (const [src, want] of cases) {
    const run = compileExpression(src);
    if (want === 'error') t.throws(() => run(query(), peer), src);
    else t.same(run(query(), peer), want, src);
  }
  // The per-query view of the other functions.
  const tcp = compileExpression('bufsize()')(query({ proto: 'tcp' }), peer);
  t.equal(tcp, 65535, 'bufsize() over TCP: 64 KiB');
  t.equal(compileExpression('bufsize()')(query({ edns: null }), peer), 512, 'bufsize() without EDNS: 512');
  t.equal(compileExpression('type()')(query({ type: 65280 }), peer), 'TYPE65280');
  t.equal(compileExpression("client_ip() == '::1'")(query(), { ...peer, address: '::1', family: 2 }), true);
});

t.test('expressions: what expr.Compile refuses is a setup error', async (t) => {
  const cases: [string, RegExp][] = [
    ['invalid expression', /unexpected token Identifier\("expression"\) \(1:9\)/],
    ['name(', /unexpected token EOF/],
    ["name() == 'a", /literal not terminated/],
    ['nosuch()', /unknown func nosuch/],
    ['client', /unknown name client/],
    ['name', /name is a function/],
    ["incidr(client_ip())", /not enough arguments to call incidr/],
    ["incidr(client_ip(), '10.0.0.0/8', 1)", /too many arguments to call incidr/],
    ["incidr(1, '10.0.0.0/8')", /cannot use int as argument \(type string\) to call incidr/],
    ["incidr(client_ip(), 'ten/8')", /invalid CIDR address: ten\/8/],
    ["name() == 1", /invalid operation: == \(mismatched types string and int\)/],
    ["name() && true", /invalid operation: && \(mismatched types string and bool\)/],
    ["!name()", /invalid operation: ! \(mismatched type string\)/],
    ["type() in 'A'", /invalid operation: in/],
    ["name() matches '(?<=a)b'", /error parsing regexp/],
    ["name() == 'a' ;", /unrecognized character/],
    ['', /unexpected token EOF/],
  ];
  for (const [src, err] of cases) t.throws(() => compileExpression(src), { message: err }, src || '(empty)');
});

/** Split DNS on one zone and port: by source address, by name and type, by protocol, with a catch-all last. */
const SPLIT = `. {
    view local-one {
        expr incidr(client_ip(), '127.0.0.1/32')
    }
    hosts {
        10.0.0.1 test
        fallthrough
    }
    template IN A tcp.example {
        answer "{{ .Name }} 60 IN A 10.9.9.1"
    }
    prometheus 127.0.0.1:0
    cache 30
    acl {
        allow net 127.0.0.1
    }
}

. {
    view local-two {
        expr client_ip() == '127.0.0.2'
        expr port() != '0'
    }
    prometheus 127.0.0.1:0
    hosts {
        10.0.0.2 test
    }
}

. {
    view typed {
        expr type() in ['TXT', 'MX'] && name() matches '^txt\\\\..*example\\\\.$'
    }
    template IN ANY {
        answer "{{ .Name }} 60 IN TXT \\"from-view-typed\\""
    }
}

tcp.example {
    view tcp-only {
        expr proto() == 'tcp'
    }
    template IN A {
        answer "{{ .Name }} 60 IN A 10.9.9.9"
    }
}

. {
    prometheus 127.0.0.1:0
    hosts {
        10.0.0.3 test
    }
    template IN ANY tcp.example txt.zone.example {
        answer "{{ .Name }} 60 IN A 10.0.0.4"
    }
}
`;

t.test('view through dig: the first block whose view passes answers, the catch-all the rest', async (t) => {
  const srv = await startServer(SPLIT);
  t.teardown(() => srv.stop());
  const ask = async (from: string, ...args: string[]) => {
    const r = await dig(srv.port, ['-b', from, ...args]);
    return `${r.status} ${r.answer.map((a) => `${a.type} ${a.data}`).join(',')}`;
  };
  t.equal(await ask('127.0.0.1', 'test', 'A'), 'NOERROR A 10.0.0.1', '127.0.0.1: view local-one');
  t.equal(await ask('127.0.0.2', 'test', 'A'), 'NOERROR A 10.0.0.2', '127.0.0.2: view local-two');
  t.equal(await ask('127.0.0.3', 'test', 'A'), 'NOERROR A 10.0.0.3', '127.0.0.3: no view passes, the catch-all block');
  t.equal(await ask('127.0.0.2', 'test', 'A', '+tcp'), 'NOERROR A 10.0.0.2', 'over TCP as well');
  t.equal(await ask('127.0.0.3', 'txt.zone.example', 'TXT'), 'NOERROR TXT "from-view-typed"', 'type() and name() view');
  t.equal(await ask('127.0.0.3', 'txt.zone.example', 'A'), 'NOERROR A 10.0.0.4', 'another type: the catch-all');
  t.equal(await ask('127.0.0.3', 'txtzone.example', 'TXT'), 'SERVFAIL ', 'another name: the catch-all, whose hosts has no fallthrough');
  t.equal(await ask('127.0.0.3', 'a.tcp.example', 'A', '+tcp'), 'NOERROR A 10.9.9.9', 'zone tcp.example: its TCP view');
  t.equal(await ask('127.0.0.3', 'a.tcp.example', 'A'), 'NOERROR A 10.0.0.4', 'UDP: the view fails, so the parent zone . routes it (CoreDNS walks on)');
  t.equal(await ask('127.0.0.1', 'a.tcp.example', 'A'), 'NOERROR A 10.9.9.1', 'and in . the first passing view wins');

  const metrics = await srv.server.registry.metrics();
  t.match(metrics, /coredns_plugin_enabled\{server="dns:\/\/:0",zone="\.",view="local-two",name="hosts"\} 1/, 'plugin_enabled carries the view');
  t.match(metrics, /coredns_plugin_enabled\{server="dns:\/\/:0",zone="\.",view="",name="hosts"\} 1/);
  t.match(metrics, /coredns_dns_requests_total\{server="dns:\/\/:0",zone="\.",view="local-two",proto="udp",family="1",type="A"\} 1\n/, 'prometheus: the view label');
  t.match(metrics, /coredns_dns_requests_total\{server="dns:\/\/:0",zone="\.",view="local-two",proto="tcp",family="1",type="A"\} 1\n/);
  t.match(metrics, /coredns_dns_requests_total\{server="dns:\/\/:0",zone="\.",view="",proto="udp",family="1",type="A"\} 3\n/, 'the catch-all: no view');
  t.match(metrics, /coredns_template_matches_total\{server="dns:\/\/:0",zone="tcp\.example\.",view="local-one",class="IN",type="A"\} 1\n/, 'template: the view label');
  t.match(metrics, /coredns_cache_requests_total\{server="dns:\/\/:0",zones="\.",view="local-one"\} 2\n/, 'cache: the view label');
  t.match(metrics, /coredns_acl_allowed_requests_total\{server="dns:\/\/:0",view="local-one"\} 2\n/, 'acl: the view label');
});

t.test('view in-process: routing table and a port without views keeps single-block routes', async (t) => {
  const srv = await inProcessServer(SPLIT);
  t.teardown(() => srv.close());
  const a = (from: string) => srv.ask('test.', 'A', { from }).then((r) => r.answer.join());
  t.equal(await a('127.0.0.1'), 'test. 30 IN A 10.0.0.1', 'through the cache of its block (cap 30 s)');
  t.equal(await a('127.0.0.2'), 'test. 3600 IN A 10.0.0.2');
  t.equal(await a('::1'), 'test. 3600 IN A 10.0.0.3');
  t.equal(await srv.ask('x.tcp.example.', 'A', { from: '127.0.0.5', proto: 'tcp' }).then((r) => r.answer.join()), 'x.tcp.example. 60 IN A 10.9.9.9');

  // No block takes it (only views, none passing): REFUSED, as a zone nobody serves.
  const views = await inProcessServer(`. {\n    view v4 {\n        expr incidr(client_ip(), '0.0.0.0/0')\n    }\n    whoami\n}\n`);
  t.teardown(() => views.close());
  t.equal((await views.ask('x.', 'A', { from: '127.0.0.9' })).rcode, 'NOERROR');
  t.equal((await views.ask('x.', 'A', { from: '::1' })).rcode, 'REFUSED', 'an IPv6 client: no block takes the query');

  // A CNAME the server chases itself is asked for the same client (CoreDNS's upstream.Lookup keeps the writer).
  const chase = await inProcessServer(`. {
    view two {
        expr client_ip() == '127.0.0.2'
    }
    template IN A alias.test {
        answer "alias.test. 60 IN CNAME target.test."
    }
    hosts {
        10.2.2.2 target.test
    }
}
. {
    template IN A alias.test {
        answer "alias.test. 60 IN CNAME target.test."
    }
    hosts {
        10.3.3.3 target.test
    }
}
`);
  t.teardown(() => chase.close());
  t.same((await chase.ask('alias.test.', 'A', { from: '127.0.0.2' })).answer, ['alias.test. 60 IN CNAME target.test.', 'target.test. 3600 IN A 10.2.2.2']);
  t.same((await chase.ask('alias.test.', 'A', { from: '127.0.0.3' })).answer, ['alias.test. 60 IN CNAME target.test.', 'target.test. 3600 IN A 10.3.3.3']);

  const plugins = await loadPlugins();
  const load = (text: string) => loadConfig({ file: 'Corefile', text, plugins, shared: new DnsServer({ conf: 'Corefile', plugins }).shared });
  const plain = await load('. {\n    whoami\n}\nexample.org {\n    whoami\n}\n');
  t.equal(plain.ports[0]!.views, undefined, 'no view on the port: no candidate lists, routes stay one map lookup');
  t.equal(plain.ports[0]!.zones.size, 2);
  const split = await load(SPLIT);
  t.same([...split.ports[0]!.views!].map(([z, bs]) => [z, bs.map((b) => b.view)]),
    [['.', ['local-one', 'local-two', 'typed', '']], ['tcp.example.', ['tcp-only']]],
    'candidates per zone in Corefile order');
  await closePlugins([...plain.blocks, ...split.blocks]);
});

t.test('view setup: errors with file:line, and `check` loads a Corefile with views', async (t) => {
  const plugins = await loadPlugins();
  const check = (text: string) => checkCorefile({ file: 'Corefile', text, plugins });
  const cases: [string, RegExp][] = [
    ['. {\n  view\n  whoami\n}\n', /^Corefile:2 - Error during setup: plugin\/view: wrong argument count: want NAME, got 0$/],
    ['. {\n  view a {\n    expr invalid expression\n  }\n}\n', /^Corefile:3 - Error during setup: plugin\/view: unexpected token Identifier\("expression"\) \(1:9\) in 'invalid expression'$/],
    ['. {\n  view x {\n    foo bar\n  }\n}\n', /^Corefile:3 - Error during setup: plugin\/view: unknown property 'foo'$/],
    ['. {\n  view a\n  view b\n}\n', /^Corefile:3 - Error during setup: plugin\/view: this plugin can only be used once per Server Block$/],
    ['. {\n  whoami\n}\n\n. {\n  whoami\n}\n', /^Corefile:5 - Error during parsing: cannot serve dns:\/\/.:53 - it is already defined$/],
    ['. {\n  view a {\n    expr incidr(client_ip(), \'300.0.0.0/8\')\n  }\n}\n', /^Corefile:3 - .*invalid CIDR address: 300\.0\.0\.0\/8/],
  ];
  for (const [text, err] of cases) {
    const r = await check(text);
    t.match(r.problems[0], err, text);
  }
  const ok = await check(SPLIT);
  t.same(ok.problems, [], 'the split Corefile has no problem');
  t.equal(ok.blocks, 5);
  // Two views and a catch-all: the filtered blocks may come after the catch-all too (CoreDNS allows it; they never serve).
  const late = await check('. {\n  whoami\n}\n. {\n  view a {\n    expr true\n  }\n  whoami\n}\n');
  t.same(late.problems, []);

  const cli = join(fileURLToPath(new URL('..', import.meta.url)), 'dist/src/cli.js');
  if (!existsSync(cli)) return;
  const dir = tempDir('view');
  const conf = join(dir, 'Corefile');
  writeFileSync(conf, SPLIT);
  const out = await new Promise<{ code: number; stdout: string }>((resolve) => {
    execFile(process.execPath, [cli, 'check', '-conf', conf], { timeout: 30_000 }, (err, stdout) => resolve({ code: err ? 1 : 0, stdout }));
  });
  t.same(out, { code: 0, stdout: `${conf}: OK (5 server blocks)\n` }, 'clusterdns check');
});
