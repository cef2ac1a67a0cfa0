import t from 'tap';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CorefileError, SetupError, loadCorefile, parseCorefile, parseServerKey, validateCorefile, type Directive, type ParseOptions } from '../src/corefile/index.js';
import { tokenize } from '../src/corefile/lexer.js';
import { tempDir } from './helpers/temp-dir.js';

/** Compact directive form for tables: `[name, args, line, children?]`. */
type D = [string, string[], number, D[]?];
const d = (x: Directive): D => (x.children.length ? [x.name, x.args, x.line, x.children.map(d)] : [x.name, x.args, x.line]);
const shape = (text: string, opts?: ParseOptions) =>
  parseCorefile(text, 'Corefile', { env: {}, ...opts }).blocks.map((b) => ({ keys: b.keys, line: b.line, directives: b.directives.map(d) }));

t.test('lexer: tokens, quotes, escapes, comments, BOM', async (t) => {
  const cases: [string, string, [string, number][]][] = [
    ['words', 'a b\tc\n d', [['a', 1], ['b', 1], ['c', 1], ['d', 2]]],
    ['BOM skipped', '\uFEFFa', [['a', 1]]],
    ['quotes keep spaces', '"a b" c', [['a b', 1], ['c', 1]]],
    ['quote spans lines, line of its start', '"a\nb" c\nd', [['a\nb', 1], ['c', 2], ['d', 3]]],
    ['only \\" escapes', '"x\\"y\\n\\\\z"', [['x"y\\n\\\\z', 1]]],
    ['empty quoted token', '"" a', [['', 1], ['a', 1]]],
    ['quote mid-token is literal', 'a"b c"', [['a"b', 1], ['c"', 1]]],
    ['unterminated quote keeps text', '"abc', [['abc', 1]]],
    ['comment line', '# x y\na', [['a', 2]]],
    ['comment mid-token', 'foo#bar\nz', [['foo', 1], ['z', 2]]],
    // CoreDNS quirk kept: the comment flag ends with the token it cut, so the next word on the line is a token.
    ['comment mid-token, later word survives', 'foo#bar baz', [['foo', 1], ['baz', 1]]],
    ['# inside quotes is text', '"a#b"', [['a#b', 1]]],
    ['CRLF', 'a\r\nb', [['a', 1], ['b', 2]]],
  ];
  for (const [name, input, want] of cases) t.same(tokenize(input).map((x) => [x.text, x.line]), want, name);
});

const KUBEADM = `.:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus :9153
    forward . /etc/resolv.conf {
       max_concurrent 1000
    }
    cache 30
    loop
    reload
    loadbalance
}
`;

t.test('parser: Corefile text → blocks', async (t) => {
  const cases: { name: string; text: string; env?: NodeJS.ProcessEnv; want: ReturnType<typeof shape> }[] = [
    {
      name: 'kubeadm default',
      text: KUBEADM,
      want: [
        {
          keys: ['.:53'],
          line: 1,
          directives: [
            ['errors', [], 2],
            ['health', [], 3, [['lameduck', ['5s'], 4]]],
            ['ready', [], 6],
            [
              'kubernetes',
              ['cluster.local', 'in-addr.arpa', 'ip6.arpa'],
              7,
              [['pods', ['insecure'], 8], ['fallthrough', ['in-addr.arpa', 'ip6.arpa'], 9], ['ttl', ['30'], 10]],
            ],
            ['prometheus', [':9153'], 12],
            ['forward', ['.', '/etc/resolv.conf'], 13, [['max_concurrent', ['1000'], 14]]],
            ['cache', ['30'], 16],
            ['loop', [], 17],
            ['reload', [], 18],
            ['loadbalance', [], 19],
          ],
        },
      ],
    },
    {
      name: 'several blocks, keys by space and comma, trailing comma continues',
      text: 'a.org b.org {\n log\n}\nc.org, d.org,\n  e.org {\n whoami\n}\n',
      want: [
        { keys: ['a.org', 'b.org'], line: 1, directives: [['log', [], 2]] },
        { keys: ['c.org', 'd.org', 'e.org'], line: 4, directives: [['whoami', [], 6]] },
      ],
    },
    {
      name: 'opening brace on the next line',
      text: 'example.org\n{\n log\n}',
      want: [{ keys: ['example.org'], line: 1, directives: [['log', [], 3]] }],
    },
    {
      name: 'braceless single block',
      text: '.:1053\nwhoami\nforward . 1.1.1.1 {\n max_fails 3\n}\nlog',
      want: [{ keys: ['.:1053'], line: 1, directives: [['whoami', [], 2], ['forward', ['.', '1.1.1.1'], 3, [['max_fails', ['3'], 4]]], ['log', [], 6]] }],
    },
    {
      name: 'keys only',
      text: 'example.org:53',
      want: [{ keys: ['example.org:53'], line: 1, directives: [] }],
    },
    {
      name: 'nested block on one line, hosts entries, deeper nesting',
      text: '. {\n forward . 1.2.3.4 { max_fails 3 }\n hosts {\n  1.2.3.4 a.b\n  fallthrough\n }\n x {\n  y 1 {\n   z 2\n  }\n  w\n }\n}',
      want: [
        {
          keys: ['.'],
          line: 1,
          directives: [
            ['forward', ['.', '1.2.3.4'], 2, [['max_fails', ['3'], 2]]],
            ['hosts', [], 3, [['1.2.3.4', ['a.b'], 4], ['fallthrough', [], 5]]],
            ['x', [], 7, [['y', ['1'], 8, [['z', ['2'], 9]]], ['w', [], 11]]],
          ],
        },
      ],
    },
    {
      name: 'empty nested block',
      text: '. {\n forward . 1.1.1.1 {\n }\n}',
      want: [{ keys: ['.'], line: 1, directives: [['forward', ['.', '1.1.1.1'], 2]] }],
    },
    {
      name: 'comments anywhere, even mid-token',
      text: '# head\n.:53 { # open\n log#no-space\n errors stdout#x\n cache 30 # ttl\n}',
      want: [{ keys: ['.:53'], line: 2, directives: [['log', [], 3], ['errors', ['stdout'], 4], ['cache', ['30'], 5]] }],
    },
    {
      name: 'quoted argument spanning lines; the next line is a new directive',
      text: '. {\n template "a\nb" c\n log\n}',
      want: [{ keys: ['.'], line: 1, directives: [['template', ['a\nb', 'c'], 2], ['log', [], 4]] }],
    },
    {
      name: 'env vars in keys, names and args; unset → empty',
      text: '{$ZONE}:{%PORT%} {\n {$PLUGIN} a{$UNSET}b {$UNSET}\n}',
      env: { ZONE: 'cluster.local', PORT: '1053', PLUGIN: 'log' },
      want: [{ keys: ['cluster.local:1053'], line: 1, directives: [['log', ['ab', ''], 2]] }],
    },
    {
      name: 'empty env var key is skipped next to another key',
      text: '{$NONE} example.org {\n log\n}',
      want: [{ keys: ['example.org'], line: 1, directives: [['log', [], 2]] }],
    },
    {
      name: 'snippets: defined, imported in blocks and nested blocks, lines of the definition',
      text: '(common) {\n errors\n log\n}\n(fwd) {\n max_fails 2\n}\na.org {\n import common\n forward . 1.1.1.1 {\n  import fwd\n }\n}\nb.org {\n import common\n}',
      want: [
        { keys: ['a.org'], line: 8, directives: [['errors', [], 2], ['log', [], 3], ['forward', ['.', '1.1.1.1'], 10, [['max_fails', ['2'], 6]]]] },
        { keys: ['b.org'], line: 14, directives: [['errors', [], 2], ['log', [], 3]] },
      ],
    },
    {
      name: 'snippet imported twice in a row stays two directives',
      text: '(one) {\n log\n}\n. {\n import one\n import one\n}',
      want: [{ keys: ['.'], line: 4, directives: [['log', [], 2], ['log', [], 2]] }],
    },
    {
      name: 'snippet with a whole server block, name from env',
      text: '(blk) {\n x.org {\n  log\n }\n}\nimport {$S}',
      env: { S: 'blk' },
      want: [{ keys: ['x.org'], line: 2, directives: [['log', [], 3]] }],
    },
  ];
  for (const c of cases) t.same(shape(c.text, { env: c.env ?? {} }), c.want, c.name);
});

t.test('parser: errors carry file:line', async (t) => {
  const cases: [string, string, string][] = [
    ['unclosed server block', '.:53 {\n errors\n', "Corefile:2 - Error during parsing: Unexpected EOF, expecting '}' to close the server block opened at line 1"],
    ['unclosed nested block', '. {\n forward . 1.1.1.1 {\n  max_fails 3', "Corefile:3 - Error during parsing: Unexpected EOF, expecting '}' to close the block opened at line 2"],
    ['nested } closes the nested block first', '. {\n forward . 1.1.1.1 {\n  max_fails 3\n}', "Corefile:4 - Error during parsing: Unexpected EOF, expecting '}' to close the server block opened at line 1"],
    ['} on the directive line', '. { errors }', "Corefile:1 - Error during parsing: Unexpected '}' because no matching opening brace"],
    ['extra }', '. {\n log\n}\n}', "Corefile:4 - Error during parsing: Unexpected '}' because no matching opening brace"],
    ['} in braceless block', '.\nlog\n}', "Corefile:3 - Error during parsing: Unexpected '}' because no matching opening brace"],
    ['{ starting a nested line', '. {\n hosts {\n  {\n }\n}', "Corefile:3 - Error during parsing: Unexpected '{': a block opens at the end of a directive line"],
    ['extra comma', 'a.org, {\n}', "Corefile:1 - Error during parsing: Expected another address but had '{' - check for extra comma"],
    ['trailing comma at EOF', 'a.org,', 'Corefile:1 - Error during parsing: Unexpected EOF'],
    ['block without key', '{\n log\n}', "Corefile:1 - Error during parsing: Server block has no key before '{' (is an environment variable in the key unset?)"],
    ['unset env key', '{$NOPE} {\n log\n}', "Corefile:1 - Error during parsing: Server block has no key before '{' (is an environment variable in the key unset?)"],
    ['missing snippet', '. {\n import nothing\n}', 'Corefile:2 - Error during parsing: File to import not found: nothing'],
    ['import without argument', '. {\n import\n log\n}', "Corefile:2 - Error during parsing: Wrong argument count or unexpected line ending after 'import'"],
    ['import with two arguments', '. {\n import a b\n}', 'Corefile:2 - Error during parsing: Import takes only one argument (glob pattern or file)'],
    ['import of empty env', '. {\n import {$NOPE}\n}', 'Corefile:2 - Error during parsing: Import requires a non-empty filepath'],
    ['snippet redeclared', '(a) {\n}\n(a) {\n}', 'Corefile:3 - Error during parsing: redeclaration of previously declared snippet a'],
    ['snippet without brace', '(a)\nlog', "Corefile:2 - Error during parsing: Unexpected token 'log', expecting '{'"],
    ['unclosed snippet', '(a) {\n log', "Corefile:2 - Error during parsing: Unexpected EOF, expecting '}' to close snippet (a) opened at line 1"],
    ['snippet importing itself', '(a) {\n import a\n}\n. {\n import a\n}', 'Corefile:2 - Error during parsing: import cycle: (a) -> (a)'],
    ['snippets importing each other', '(a) {\n import b\n}\n(b) {\n import a\n}\n. {\n import a\n}', 'Corefile:5 - Error during parsing: import cycle: (a) -> (b) -> (a)'],
    ['several wildcards', '. {\n import /x/*/*.conf\n}', 'Corefile:2 - Error during parsing: Glob pattern may only contain one wildcard (*), but has others: /x/*/*.conf'],
  ];
  for (const [name, text, message] of cases) {
    t.throws(() => parseCorefile(text, 'Corefile', { env: {} }), { name: 'Error', message }, name);
  }
  const err = t.throws(() => parseCorefile('. {', 'Corefile', { env: {} })) as CorefileError;
  t.ok(err instanceof CorefileError);
  t.match(err, { file: 'Corefile', line: 1 });
});

t.test('snippet fan-out is capped at 10000 expansions', async (t) => {
  // 4 levels of 10 imports each: 11110 expansions, no cycle.
  const levels = ['(l0) {\n log\n}'];
  for (let i = 1; i <= 4; i++) levels.push(`(l${i}) {\n${` import l${i - 1}\n`.repeat(10)}}`);
  const text = levels.join('\n') + '\n. {\n import l4\n}';
  t.throws(() => parseCorefile(text, 'Corefile', { env: {} }), /maximum snippet import depth \(10000\) exceeded/);
});

t.test('file import fan-out is capped at 100000 expansions', async (t) => {
  // Level n imports 10 files of level n-1 (distinct paths, no cycle); level 0 is empty: 111110 imports in all.
  const opts: ParseOptions = {
    env: {},
    glob: (p) => Array.from({ length: 10 }, (_, i) => p.replace('*', String(i))),
    readFile: (p) => {
      const level = Number(/\/l(\d)\//.exec(p)![1]);
      return level === 0 ? '' : `import /l${level - 1}/*`;
    },
  };
  t.throws(() => parseCorefile('. {\n import /l5/*\n}', 'Corefile', opts), /maximum file import depth \(100000\) exceeded/);
});

t.test('imports from files: relative paths, globs, nesting, errors', async (t) => {
  const dir = tempDir('corefile');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'conf.d'));
  mkdirSync(join(dir, 'sub'));
  mkdirSync(join(dir, 'adir.conf'), { recursive: true });
  writeFileSync(join(dir, 'conf.d', 'b.conf'), 'b.org {\n whoami\n}\n');
  writeFileSync(join(dir, 'conf.d', 'a.conf'), 'a.org {\n import ../sub/plugins\n}\n');
  writeFileSync(join(dir, 'conf.d', 'notes.txt'), 'garbage {');
  writeFileSync(join(dir, 'sub', 'plugins'), 'errors\nlog\n');
  writeFileSync(join(dir, 'self'), 'import self\n');
  writeFileSync(join(dir, 'ping'), 'import pong\n');
  writeFileSync(join(dir, 'pong'), 'import ping\n');
  writeFileSync(join(dir, 'Corefile'), '. {\n import sub/plugins\n}\nimport conf.d/*.conf\n');
  writeFileSync(join(dir, 'bom'), '\uFEFFx.org {\n log\n}');

  const warnings: string[] = [];
  const cf = loadCorefile(join(dir, 'Corefile'), { env: {}, warn: (m) => warnings.push(m) });
  t.same(
    cf.blocks.map((b) => [b.keys, b.file, b.line, b.directives.map((x) => [x.name, x.file, x.line])]),
    [
      [['.'], join(dir, 'Corefile'), 1, [['errors', join(dir, 'sub', 'plugins'), 1], ['log', join(dir, 'sub', 'plugins'), 2]]],
      [['a.org'], join(dir, 'conf.d', 'a.conf'), 1, [['errors', join(dir, 'sub', 'plugins'), 1], ['log', join(dir, 'sub', 'plugins'), 2]]],
      [['b.org'], join(dir, 'conf.d', 'b.conf'), 1, [['whoami', join(dir, 'conf.d', 'b.conf'), 2]]],
    ],
    'files import relative to the importing file; glob matches sorted',
  );
  t.same(warnings, []);

  const opts = { env: { DIR: dir }, warn: (m: string) => warnings.push(m) };
  const parse = (text: string) => parseCorefile(text, join(dir, 'Corefile'), opts);
  t.same(parse('import nothing/*.conf\n. {\n log\n}').blocks.map((b) => b.keys), [['.']], 'empty glob is not an error');
  t.same(warnings, [`${join(dir, 'Corefile')}:1 - No files matching import glob pattern: nothing/*.conf`]);
  t.same(parse('import {$DIR}/bom').blocks.map((b) => b.keys), [['x.org']], 'absolute path from env; BOM in imported file');
  t.same(parse('import b?m').blocks.map((b) => b.keys), [['x.org']], '? wildcard');

  const errors: [string, string][] = [
    ['. {\n import missing.conf\n}', `${join(dir, 'Corefile')}:2 - Error during parsing: File to import not found: missing.conf`],
    ['import *.conf', `${join(dir, 'Corefile')}:1 - Error during parsing: Could not import ${join(dir, 'adir.conf')}: is a directory`],
    ['import self', `${join(dir, 'self')}:1 - Error during parsing: import cycle: ${join(dir, 'self')} -> ${join(dir, 'self')}`],
    ['import ping', `${join(dir, 'pong')}:1 - Error during parsing: import cycle: ${join(dir, 'ping')} -> ${join(dir, 'pong')} -> ${join(dir, 'ping')}`],
    ['import Corefile', `${join(dir, 'Corefile')}:1 - Error during parsing: import cycle: ${join(dir, 'Corefile')} -> ${join(dir, 'Corefile')}`],
    ['import conf.d/*.txt', `${join(dir, 'conf.d', 'notes.txt')}:1 - Error during parsing: Unexpected EOF, expecting '}' to close the server block opened at line 1`],
  ];
  for (const [text, message] of errors) t.throws(() => parse(text), { message }, text);

  const fake = parseCorefile('import x/*.conf', '/etc/coredns/Corefile', {
    env: {},
    glob: (p) => (p === '/etc/coredns/x/*.conf' ? ['/etc/coredns/x/1.conf'] : []),
    readFile: (p) => (p === '/etc/coredns/x/1.conf' ? 'y.org {\n log\n}' : ''),
  });
  t.same(fake.blocks.map((b) => [b.keys, b.file]), [[['y.org'], '/etc/coredns/x/1.conf']], 'injected glob and readFile');
});

t.test('server keys', async (t) => {
  const cases: [string, number | null, { scheme: string; zones: string[]; port: number | null }][] = [
    ['.', null, { scheme: 'dns', zones: ['.'], port: null }],
    ['.', 1053, { scheme: 'dns', zones: ['.'], port: 1053 }],
    ['.:53', null, { scheme: 'dns', zones: ['.'], port: 53 }],
    ['Cluster.Local', null, { scheme: 'dns', zones: ['cluster.local.'], port: null }],
    ['example.org.:1053', 53, { scheme: 'dns', zones: ['example.org.'], port: 1053 }],
    ['dns://example.org', 53, { scheme: 'dns', zones: ['example.org.'], port: 53 }],
    ['tls://.', 53, { scheme: 'tls', zones: ['.'], port: 853 }],
    ['quic://.', 53, { scheme: 'quic', zones: ['.'], port: 853 }],
    ['grpc://.', 53, { scheme: 'grpc', zones: ['.'], port: 443 }],
    ['https://.', 1053, { scheme: 'https', zones: ['.'], port: 443 }],
    ['https3://example.org:8443', null, { scheme: 'https3', zones: ['example.org.'], port: 8443 }],
    ['10.0.0.0/8', null, { scheme: 'dns', zones: ['10.in-addr.arpa.'], port: null }],
    ['10.0.0.0/8:53', null, { scheme: 'dns', zones: ['10.in-addr.arpa.'], port: 53 }],
    ['10.0.0.0/15', null, { scheme: 'dns', zones: ['0.10.in-addr.arpa.', '1.10.in-addr.arpa.'], port: null }],
    ['10.0.0.0/22', null, { scheme: 'dns', zones: ['0.0.10.in-addr.arpa.', '1.0.10.in-addr.arpa.', '2.0.10.in-addr.arpa.', '3.0.10.in-addr.arpa.'], port: null }],
    ['fd00::/8', null, { scheme: 'dns', zones: ['d.f.ip6.arpa.'], port: null }],
    ['fd00::/8:1053', null, { scheme: 'dns', zones: ['d.f.ip6.arpa.'], port: 1053 }],
    ['2001:db8::/31', null, { scheme: 'dns', zones: ['8.b.d.0.1.0.0.2.ip6.arpa.', '9.b.d.0.1.0.0.2.ip6.arpa.'], port: null }],
  ];
  for (const [key, dnsPort, want] of cases) t.same(parseServerKey(key, dnsPort), { ...want, key }, key);

  const bad: [string, RegExp][] = [
    ['.:', /expecting data after last colon/],
    [':53', /zone is not a valid domain name: $/],
    ['a..b', /zone is not a valid domain name: a\.\.b/],
    ['x'.repeat(64) + '.org', /zone is not a valid domain name/],
    [('a'.repeat(60) + '.').repeat(5), /specified zone is too long: 305 > 255/],
    ['example.org:99999', /invalid port 99999/],
    ['example.org:abc', /a port must be numeric/],
    ['[fd00::]/8', /without brackets/],
    ['a.org,b.org', /separate keys with a space/],
    ['foo://example.org', /unknown scheme 'foo:\/\/'/],
    ['::/0', /invalid CIDR ::\/0/],
    ['0::/0', /invalid CIDR/],
    ['10.0.0.0/33', /invalid CIDR 10\.0\.0\.0\/33/],
  ];
  for (const [key, re] of bad) t.throws(() => parseServerKey(key), re, key);
});

t.test('validate: unknown directive, once-only, keys, duplicates', async (t) => {
  const ONCE = new Set(['kubernetes', 'cache', 'errors', 'hosts', 'prometheus', 'loop', 'health', 'ready']);
  const KNOWN = new Set([...ONCE, 'log', 'forward', 'whoami', 'reload', 'loadbalance']);
  const registry = { known: (n: string) => KNOWN.has(n), once: (n: string) => ONCE.has(n) };
  const check = (text: string, dnsPort?: number) => validateCorefile(parseCorefile(text, 'Corefile', { env: {} }), registry, dnsPort);

  t.doesNotThrow(() => check(KUBEADM), 'kubeadm default');
  const cases: [string, string, number | undefined, string, typeof CorefileError | typeof SetupError][] = [
    ['unknown directive', '. {\n log\n nope 1\n}', undefined, "Corefile:3 - Error during parsing: Unknown directive 'nope'", CorefileError],
    ['unknown even when bad keys come first', 'a..b {\n nope\n}', undefined, "Corefile:2 - Error during parsing: Unknown directive 'nope'", CorefileError],
    ['bad key', 'a.org {\n log\n}\nb..org {\n log\n}', undefined, 'Corefile:4 - Error during parsing: zone is not a valid domain name: b..org', CorefileError],
    ['once-only twice', '. {\n cache 30\n log\n cache 10\n}', undefined, 'Corefile:4 - Error during setup: plugin/cache: this plugin can only be used once per Server Block', SetupError],
    ['duplicate zone', 'example.org {\n log\n}\nexample.org:53 {\n log\n}', undefined, 'Corefile:4 - Error during parsing: cannot serve dns://example.org.:53 - it is already defined', CorefileError],
    ['duplicate in one block', 'a.org A.ORG. {\n log\n}', undefined, 'Corefile:1 - Error during parsing: cannot serve dns://a.org.:53 - it is already defined', CorefileError],
    ['duplicate via -dns.port', '. {\n log\n}\n.:1053 {\n log\n}', 1053, 'Corefile:4 - Error during parsing: cannot serve dns://.:1053 - it is already defined', CorefileError],
    ['CIDR overlapping a reverse zone', '10.0.0.0/24 {\n log\n}\n0.0.10.in-addr.arpa {\n log\n}', undefined, 'Corefile:4 - Error during parsing: cannot serve dns://0.0.10.in-addr.arpa.:53 - it is already defined', CorefileError],
  ];
  for (const [name, text, port, message, cls] of cases) {
    const err = t.throws(() => check(text, port), { message }, name);
    t.ok(err instanceof cls, `${name}: ${cls.name}`);
  }
  t.doesNotThrow(() => check('. {\n log\n}\n.:1053 {\n log\n}\ntls://. {\n log\n}'), 'same zone on other port or scheme');
  t.doesNotThrow(() => check('. {\n log\n log\n forward . 1.1.1.1\n}'), 'repeatable plugins');
  t.doesNotThrow(() => check('a.org {\n cache\n}\nb.org {\n cache\n}'), 'once per block, not per file');
});
