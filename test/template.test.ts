import t from 'tap';
import { readFileSync } from 'node:fs';
import { loadPlugins } from '../src/plugins/registry.js';
import { goRegexp } from '../src/pkg/goregexp.js';
import { GoMethod, GoStruct, GoTemplate } from '../src/plugins/template/gotemplate.js';
import { checkCorefile } from '../src/server/check.js';
import { loadConfig } from '../src/server/config.js';
import { DnsServer } from '../src/server/dns-server.js';
import { dig, digAnswer } from './helpers/dig.js';
import { checkCases, inProcessServer, type DnsCase } from './helpers/in-process.js';
import { serveCli } from './helpers/serve-cli.js';
import { freePort, startDnsmasq } from './helpers/upstream.js';
import { waitFor } from './helpers/wait.js';

/*
 * template: the Go text/template subset and Go regexp translation as pure tables, CoreDNS's handler
 * cases in-process, and AKS's default template blocks with real dig against `clusterdns serve` forwarding
 * to dnsmasq (the built dist/: run `npx tsc -p .` first).
 */

const data = new GoStruct('*template.templateData', {
  Name: 'ip-10-95-12-8.example.', Zone: 'example.', Class: 'IN', Type: 'A',
  Match: ['ip-10-95-12-8.example.', '', '95', '12', '8'],
  Group: new Map([['0', 'ip-10-95-12-8.example.'], ['1', ''], ['b', '95'], ['c', '12'], ['d', '8'], ['hex', '5f']]),
  Question: new GoStruct('*dns.Question', { Name: 'IP-10-95-12-8.example.', Qtype: 1, Qclass: 1 }, () => ';IP-10-95-12-8.example.\tIN\t A'),
  Var: null,
  Meta: new GoMethod('Meta', 1, () => ''),
});

t.test('Go template subset: output as text/template writes it', async (t) => {
  const cases: [string, string][] = [
    ['{{ .Name }} 60 IN A 10.{{ .Group.b }}.{{ .Group.c }}.{{ .Group.d }}', 'ip-10-95-12-8.example. 60 IN A 10.95.12.8'],
    ['{{ index .Match 2 }}-{{index .Match 0}}', '95-ip-10-95-12-8.example.'],
    ['10.{{ parseInt .Group.hex 16 8 }}.{{ parseInt "0x1f" 0 64 }}.{{ parseInt "017" 0 8 }}', '10.95.31.15'],
    ['{{ .Group.missing }}|{{ index .Group "missing" }}|{{ .Var.x }}', '<no value>||<no value>'],
    ['{{ .Meta "kubernetes/client-namespace" }}x', 'x'],
    ['{{ $.Zone }} {{ .Question.Name }} {{ .Question.Qtype }} {{ .Question }}', 'example. IP-10-95-12-8.example. 1 ;IP-10-95-12-8.example.\tIN\t A'],
    ['{{ .Name | len }} {{ len .Match }} {{ slice .Name 0 5 }} {{ slice .Zone 2 }}', '22 5 ip-10 ample.'],
    ['{{ printf "%s-%03d-%x" .Zone 7 255 }} {{ print 1 2 "a" 3 }} {{ .Zone | printf "<%s>" }}', 'example.-007-ff 1 2a3 <example.>'],
    ['{{ (index .Match 2) }}{{ index .Match (len .Question.Name | print | len) }}', '9595'],
    ['a  {{- " b " -}}  c {{/* a comment */}}d', 'a b c d'],
    ['{{ .Match }} {{ .Group.b | print }} {{ true }} {{ 0x10 }}', '[ip-10-95-12-8.example.  95 12 8] 95 true 16'],
  ];
  for (const [text, want] of cases) t.equal(GoTemplate.parse('answer', text).execute(data), want, text);
});

t.test('Go template subset: runtime errors in Go\'s words, syntax errors at setup', async (t) => {
  const runtime: [string, string][] = [
    ['{{ .Name }} 60 IN TXT "{{ index .Match 9 }}"', 'template: answer:1:26: executing "answer" at <index .Match 9>: error calling index: index out of range: 9'],
    ['{{ .Name }} 60 IN TXT "{{ parseInt "gg" 16 8 }}"', 'template: answer:1:26: executing "answer" at <parseInt "gg" 16 8>: error calling parseInt: strconv.ParseUint: parsing "gg": invalid syntax'],
    ['{{ parseInt "1ff" 16 8 }}', 'error calling parseInt: strconv.ParseUint: parsing "1ff": value out of range'],
    ['{{ .Name.Foo }}', `at <.Name.Foo>: can't evaluate field Foo in type string`],
    ['{{ .Nope }}', `can't evaluate field Nope in type *template.templateData`],
    ['{{ .Meta }}', 'wrong number of args for Meta: want 1 got 0'],
    ['{{ parseInt .Group.b 10 }}', 'wrong number of args for parseInt: want 3 got 2'],
  ];
  for (const [text, want] of runtime) t.throws(() => GoTemplate.parse('answer', text).execute(data), { message: want.startsWith('template:') ? want : new RegExp(want.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) }, text);
  const syntax: [string, RegExp][] = [
    ['{{ if .Name }}x{{ end }}', /\{\{if\}\} is not supported by clusterdns's template subset/],
    ['{{ range .Match }}{{ . }}{{ end }}', /\{\{range\}\} is not supported/],
    ['{{ $x := .Name }}', /variable declarations are not supported/],
    ['{{ $x }}', /variable \$x is not supported/],
    ['{{ eq .Name "a" }}', /function "eq" is not supported by clusterdns's template subset/],
    ['{{ nosuch .Name }}', /^template: answer:1: function "nosuch" not defined$/],
    ['{{ .Name ', /unclosed action/],
    ['{{ 1.5 }}', /number 1\.5 is not supported .*integers only/],
    ['{{ .Name | "x" }}', /non executable command in pipeline stage 2/],
  ];
  for (const [text, want] of syntax) t.throws(() => GoTemplate.parse('answer', text), { message: want }, text);
  t.equal(GoTemplate.parse('answer', '{{ .Name }} 60 IN A {{ index .Match 1 | print }}').toString(), '{{.Name}} 60 IN A {{index .Match 1 | print}}',
    'printed back as Go does (the metrics\' template label)');
});

t.test('Go regexp syntax translated; what RE2 refuses is refused', async (t) => {
  const cases: [string, string, (string | undefined)[] | null, Record<string, string>?][] = [
    ['(^|[.])ip-(?P<a>[0-9]*)-(?P<b>[0-9]*)[.]example[.]$', 'x.ip-1-2.example.', ['.ip-1-2.example.', '.', '1', '2'], { a: '1', b: '2' }],
    ['^(?:[^.]+\\.){4,}internal\\.cloudapp\\.net\\.$', 'a.b.c.d.internal.cloudapp.net.', ['a.b.c.d.internal.cloudapp.net.']],
    ['^(?:[^.]+\\.){4,}internal\\.cloudapp\\.net\\.$', 'b.c.d.internal.cloudapp.net.', null],
    ['(?i)^FOO\\.', 'foo.example.', ['foo.']],
    ['[]x]+', 'a]x]b', [']x]']],
    ['^[[:digit:]]+[[:alpha:]_]+$', '12ab_', ['12ab_']],
    ['\\Qa.b\\E$', 'a.b', ['a.b']],
    ['\\Aab\\z', 'ab', ['ab']],
    ['a\\sb', 'a\u00a0b', null],
    ['\\x41\\x{42}\\103', 'ABC', ['ABC']],
    ['(?<name>x)', 'x', ['x', 'x'], { name: 'x' }],
  ];
  for (const [src, input, want, groups] of cases) {
    const m = goRegexp(src).exec(input);
    t.same(m ? [...m] : null, want, `${src} on ${input}`);
    if (groups) t.same({ ...m!.groups }, groups, `${src}: named groups`);
  }
  const refused: [string, RegExp][] = [
    ['a(?=b)', /invalid or unsupported Perl syntax: `\(\?=`/],
    ['(?<!a)b', /invalid or unsupported Perl syntax: `\(\?<!`/],
    ['(a)\\1', /invalid escape sequence: `\\1`/],
    ['\\e', /invalid escape sequence: `\\e`/],
    ['\\pL', /Unicode character classes/],
    ['a(?i)b', /flags other than a leading \(\?ims\)/],
    ['(?U)a+', /ungreedy/],
    ['[a', /missing closing \]/],
    ['a**', /Nothing to repeat|nested repetition/],
    ['x'.repeat(10001), /regex pattern too long: 10001 > 10000/],
  ];
  for (const [src, want] of refused) t.throws(() => goRegexp(src), { message: want }, src.slice(0, 20));
});

const COREFILE = `. {
    errors
    template IN A example {
        match (^|[.])ip-10-(?P<b>[0-9]*)-(?P<c>[0-9]*)-(?P<d>[0-9]*)[.]example[.]$
        answer "{{ .Name }} 60 IN A 10.{{ .Group.b }}.{{ .Group.c }}.{{ .Group.d }}"
        fallthrough
    }
    template IN A example {
        match "^ip0a(?P<b>[a-f0-9]{2})(?P<c>[a-f0-9]{2})(?P<d>[a-f0-9]{2})[.]example[.]$"
        answer "{{ .Name }} 60 IN A 10.{{ parseInt .Group.b 16 8 }}.{{ parseInt .Group.c 16 8 }}.{{ parseInt .Group.d 16 8 }}"
        fallthrough
    }
    template IN MX example {
        match ^ip-10-(?P<b>[0-9]*)-(?P<c>[0-9]*)-(?P<d>[0-9]*)[.]example[.]$
        answer "{{ .Name }} 60 IN MX 10 {{ .Name }}"
        additional "{{ .Name }} 60 IN A 10.{{ .Group.b }}.{{ .Group.c }}.{{ .Group.d }}"
    }
    template IN A remote.test {
        answer "{{ .Name }} 60 IN A {{ .Remote }}"
    }
    template ANY ANY invalid {
        rcode NXDOMAIN
        authority "invalid. 60 {{ .Class }} SOA ns.invalid. hostmaster.invalid. (1 60 60 60 60)"
    }
    template IN A ns.test {
        answer "{{ .Name }} 60 IN A 10.0.0.1"
        authority "test. IN NS ns0.test."
        additional "ns0.test. IN A 203.0.113.8"
    }
    template IN TXT broken.test {
        answer "{{ .Name }} 60 IN TXT \\"{{ index .Match 2 }}\\""
    }
    template IN TXT nonrr.test {
        answer "{{ .Name }}"
    }
    template IN A servfail.test {
        rcode SERVFAIL
    }
    template IN AAAA v4.test {
        rcode NOERROR
    }
    template IN TXT data.test {
        match "^(?P<first>[a-z]+)[.]"
        answer "{{ .Name }} 5 IN TXT \\"{{ .Zone }}\\" \\"{{ .Class }}/{{ .Type }}\\" \\"{{ .Question.Name }}\\" \\"{{ .Regex }}\\" \\"{{ .Group.first }}\\""
    }
    template IN ANY alias.test {
        match "^alias[.]test[.]$"
        answer "alias.test 60 IN CNAME target.test"
    }
    template IN A target.test {
        answer "{{ .Name }} 60 IN A 192.0.2.7"
    }
    template IN A loop.test {
        answer "loop.test 60 IN CNAME loop.test"
    }
    template IN A in-addr.arpa {
        match ^(?P<d>[0-9]*)[.](?P<c>[0-9]*)[.](?P<b>[0-9]*)[.](?P<a>[0-9]*)[.]in-addr[.]arpa[.]$
        answer "{{ .Name }} 60 IN A {{ .Group.a }}.{{ .Group.b }}.{{ .Group.c }}.{{ .Group.d }}"
        fallthrough in-addr.arpa
    }
    whoami
}
`;

/** Cases the template does not take reach whoami: empty answer, whoami's records in the additional section. */
const WHOAMI = ['_udp.{q} 0 IN SRV 0 0 40000 .', '{q} 0 IN A 127.0.0.1'];
const whoami = (q: string) => WHOAMI.map((r) => r.replace('{q}', q));

const handlerCases: DnsCase[] = [
  { q: 'ip-10-95-12-8.example.', type: 'A', an: ['ip-10-95-12-8.example. 60 IN A 10.95.12.8'], ar: [] },
  { q: 'a.b.ip-10-1-2-3.example.', type: 'A', an: ['a.b.ip-10-1-2-3.example. 60 IN A 10.1.2.3'] },
  { q: 'ip0a5f0c09.example.', type: 'A', an: ['ip0a5f0c09.example. 60 IN A 10.95.12.9'] },
  { q: 'something.example.', type: 'A', ar: whoami('something.example.') },
  { q: 'ip-10-95-12-8.example.', type: 'MX', an: ['ip-10-95-12-8.example. 60 IN MX 10 ip-10-95-12-8.example.'], ar: ['ip-10-95-12-8.example. 60 IN A 10.95.12.8'] },
  { q: 'something.example.', type: 'MX', rcode: 'SERVFAIL' },
  { q: 'ip-10-95-12-8.example.', type: 'TXT', ar: whoami('ip-10-95-12-8.example.') },
  { q: 'x.remote.test.', type: 'A', an: ['x.remote.test. 60 IN A 127.0.0.1'] },
  { q: 'test.invalid.', type: 'MX', rcode: 'NXDOMAIN', ns: ['invalid. 60 IN SOA ns.invalid. hostmaster.invalid. 1 60 60 60 60'] },
  { q: 'ns.test.', type: 'A', an: ['ns.test. 60 IN A 10.0.0.1'], ns: ['test. 3600 IN NS ns0.test.'], ar: ['ns0.test. 3600 IN A 203.0.113.8'] },
  { q: 'x.broken.test.', type: 'TXT', rcode: 'SERVFAIL' },
  { q: 'x.nonrr.test.', type: 'TXT', rcode: 'SERVFAIL' },
  { q: 'servfail.test.', type: 'A', rcode: 'SERVFAIL' },
  { q: 'www.v4.test.', type: 'AAAA', an: [], ar: [] },
  { q: 'www.v4.test.', type: 'A', ar: whoami('www.v4.test.') },
  { q: 'abc.data.test.', type: 'TXT', an: ['abc.data.test. 5 IN TXT "data.test." "IN/TXT" "abc.data.test." "^(?P<first>[a-z]+)[.]" "abc"'] },
  { q: 'alias.test.', type: 'A', an: ['alias.test. 60 IN CNAME target.test.', 'target.test. 60 IN A 192.0.2.7'] },
  { q: 'alias.test.', type: 'TXT', an: ['alias.test. 60 IN CNAME target.test.'] },
  { q: 'loop.test.', type: 'A', rcode: 'SERVFAIL' },
  { q: '4.3.2.1.in-addr.arpa.', type: 'A', an: ['4.3.2.1.in-addr.arpa. 60 IN A 1.2.3.4'] },
  { q: 'x.4.3.2.1.in-addr.arpa.', type: 'A', ar: whoami('x.4.3.2.1.in-addr.arpa.') },
];

t.test(`template: CoreDNS's handler cases in-process (${handlerCases.length})`, async (t) => {
  const srv = await inProcessServer(COREFILE);
  t.teardown(() => srv.close());
  await checkCases(t, (q, type) => srv.ask(q, type), handlerCases);
  const r = await srv.ask('ip-10-1-2-3.example.', 'A');
  t.ok(r.aa, 'template answers are authoritative');
  const mixed = await srv.ask('ABC.Data.Test.', 'TXT');
  t.match(mixed.answer[0], '"data.test." "IN/TXT" "ABC.Data.Test." "^(?P<first>[a-z]+)[.]" "abc"',
    'the regex sees the lower-case name, .Question.Name is as asked');
  const any = await srv.ask('ip-10-1-2-3.example.', 'ANY');
  t.same(any.answer, ['ip-10-1-2-3.example. 60 IN A 10.1.2.3'], 'an ANY question takes the first template whose zone and regex fit');
  t.equal((await srv.ask('ip-10-95-12-8.example.', 'A', { from: '10.240.0.1' })).rcode, 'NOERROR');
  t.same((await srv.ask('x.remote.test.', 'A', { from: '10.240.0.1' })).answer, ['x.remote.test. 60 IN A 10.240.0.1'], '.Remote');
});

t.test('template setup: CoreDNS\'s option errors, with file:line', async (t) => {
  const plugins = await loadPlugins();
  const server = new DnsServer({ conf: '/nonexistent/Corefile', plugins });
  const load = (block: string) => loadConfig({ file: 'Corefile', text: `.:1053 {\n${block}\n}\n`, plugins, shared: server.shared });
  const bad: [string, RegExp][] = [
    ['    template', /Corefile:2 - Error during setup: plugin\/template: wrong argument count: want CLASS TYPE \[ZONE\.\.\.\], got 0/],
    ['    template in A', /Corefile:2 - Error during setup: plugin\/template: invalid query class in/],
    ['    template IN BOGUS', /plugin\/template: invalid RR class BOGUS/],
    ['    template IN A {\n        match "(?=x)"\n    }', /Corefile:3 - Error during setup: plugin\/template: could not parse regex: \(\?=x\), invalid or unsupported Perl syntax/],
    ['    template IN A {\n        answer "{{ if .Name }}"\n    }', /Corefile:3 .*could not compile template: \{\{ if \.Name \}\}, template: answer:1: \{\{if\}\} is not supported/],
    ['    template IN A {\n        rcode NOPE\n    }', /Corefile:3 .*unknown rcode NOPE/],
    ['    template IN A {\n        var ip group(1)\n    }', /Corefile:3 .*'var' needs CoreDNS's expression language/],
    ['    template IN A {\n        ederror 70000\n    }', /Corefile:3 .*ederror: want a whole number from 0 to 65535, got '70000'/],
    ['    template IN A {\n        ederror 21 a b\n    }', /Corefile:3 .*ederror: wrong argument count/],
    ['    template IN A {\n        answer\n    }', /Corefile:3 .*answer: wrong argument count/],
    ['    template IN A {\n        bogus\n    }', /Corefile:3 .*unknown property 'bogus'/],
  ];
  for (const [block, want] of bad) await t.rejects(load(block), want, block.replace(/\s+/g, ' ').trim());
  await t.resolves(load('    template IN A example.org 10.0.0.0/8 {\n        upstream\n        fallthrough in-addr.arpa\n    }'), 'zones, CIDRs, upstream (ignored), fallthrough zones');
});

t.test('AKS\'s default template blocks and AAAA suppression: dig against clusterdns serve forwarding to dnsmasq', async (t) => {
  const up = await startDnsmasq([
    '--address=/vm1.abc.xx.internal.cloudapp.net/10.0.0.4', '--address=/www.example.net/192.0.2.80', '--address=/www.example.net/2001:db8::80',
  ]);
  t.teardown(() => up.stop());
  const metricsPort = await freePort();
  const srv = await serveCli((port) => `.:${port} {
    bind 127.0.0.1
    errors
    prometheus 127.0.0.1:${metricsPort}
    forward . ${up.addr}
    template ANY ANY internal.cloudapp.net {
      match "^(?:[^.]+\\.){4,}internal\\.cloudapp\\.net\\.$"
      rcode NXDOMAIN
      fallthrough
    }
    template ANY ANY reddog.microsoft.com {
      rcode NXDOMAIN
    }
    template ANY ANY invalid {
      rcode NXDOMAIN
      authority "invalid. 60 {{ .Class }} SOA ns.invalid. hostmaster.invalid. (1 60 60 60 60)"
      ederror 21 "Blocked according to RFC2606"
    }
    template IN AAAA v4only.test {
      rcode NOERROR
    }
    template IN ANY foogle.com {
      match "^foogle\\.com\\.$"
      answer "foogle.com 60 IN CNAME www.example.net"
    }
    template IN TXT broken.test {
      answer "{{ .Name }} 60 IN TXT \\"{{ index .Match 2 }}\\""
    }
}
`, { probe: ['www.example.net', 'A'] });
  t.teardown(() => srv.stop());
  const cases: DnsCase[] = [
    { q: 'vm1.abc.xx.internal.cloudapp.net.', type: 'A', an: ['vm1.abc.xx.internal.cloudapp.net. 0 IN A 10.0.0.4'] },
    { q: 'test.vm1.abc.xx.internal.cloudapp.net.', type: 'A', rcode: 'NXDOMAIN' },
    { q: 'x.reddog.microsoft.com.', type: 'A', rcode: 'NXDOMAIN' },
    { q: 'reddog.microsoft.com.', type: 'MX', rcode: 'NXDOMAIN' },
    { q: 'www.example.net.', type: 'AAAA', an: ['www.example.net. 0 IN AAAA 2001:db8::80'] },
    { q: 'www.v4only.test.', type: 'AAAA' },
    { q: 'foogle.com.', type: 'A', an: ['foogle.com. 60 IN CNAME www.example.net.', 'www.example.net. 0 IN A 192.0.2.80'] },
    { q: 'x.broken.test.', type: 'TXT', rcode: 'SERVFAIL' },
  ];
  await checkCases(t, (q, type) => digAnswer(srv.port, q, type), cases);
  const invalid = await dig(srv.port, ['test.invalid', 'A']);
  t.equal(invalid.status, 'NXDOMAIN');
  t.same(invalid.authority.map((r) => r.data), ['ns.invalid. hostmaster.invalid. 1 60 60 60 60'], 'the SOA for negative caching');
  t.match(invalid.raw, /; EDE: 21 \(Not Supported\): \(Blocked according to RFC2606\)/, 'the Extended DNS Error, as dig prints it');
  t.notMatch((await dig(srv.port, ['+noedns', 'test.invalid', 'A'])).raw, /EDE|OPT PSEUDOSECTION/, 'no OPT for a query without EDNS');
  const nx = await dig(srv.port, ['test.vm1.abc.xx.internal.cloudapp.net', 'A']);
  t.ok(nx.flags.includes('aa'), 'the NXDOMAIN is authoritative');
  t.same((await dig(srv.port, ['+tcp', 'a.reddog.microsoft.com', 'TXT'])).status, 'NXDOMAIN', 'over TCP too');
  const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const server = `dns://:${srv.port}`;
  t.match(metrics, `coredns_template_matches_total{server="${server}",zone="internal.cloudapp.net.",view="",class="IN",type="A"} 2`,
    'matches counted per zone, class and type');
  t.match(metrics, `coredns_template_matches_total{server="${server}",zone="reddog.microsoft.com.",view="",class="IN",type="TXT"} 1`);
  t.match(metrics, `coredns_template_template_failures_total{server="${server}",zone="broken.test.",view="",class="IN",type="TXT",section="answer",template="{{.Name}} 60 IN TXT \\"{{index .Match 2}}\\""} 1`,
    'a template that fails to execute is counted with its section and text');
  await waitFor('the errors plugin line', () => srv.output().includes('[ERROR] plugin/errors: 2 x.broken.test. TXT: template: answer:1:26: executing "answer" at <index .Match 2>: error calling index: index out of range: 2'), 5000);
  t.pass('the failure is logged by errors, as CoreDNS does');
});

t.test("every Corefile of template's README loads (what `clusterdns check` does)", async (t) => {
  const readme = readFileSync(new URL('../src/plugins/template/README.md', import.meta.url), 'utf8');
  const examples = [...readme.matchAll(/~~~ corefile\n([\s\S]*?)~~~/g)].map((m) => m[1]!);
  t.ok(examples.length >= 5, `${examples.length} examples`);
  const plugins = await loadPlugins();
  const saved = process.env.KUBERNETES_SERVICE_HOST;
  // The AKS example has kubernetes without a kubeconfig: off-cluster, check does not look for the pod's account.
  delete process.env.KUBERNETES_SERVICE_HOST;
  t.teardown(() => { if (saved !== undefined) process.env.KUBERNETES_SERVICE_HOST = saved; });
  for (const text of examples) {
    const r = await checkCorefile({ file: 'README.md', text, plugins });
    t.same(r.problems, [], text.split('\n').find((l) => l.includes('template')) ?? text.slice(0, 40));
  }
});
