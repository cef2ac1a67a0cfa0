import t from 'tap';
import { parseResolvConf } from '../src/resolve/resolv-conf.js';
import { decide, searchOrder } from '../src/resolve/stub.js';
import { parseServer } from '../src/resolve/client.js';

const pod = parseResolvConf(`# written by kubelet
search default.svc.cluster.local svc.cluster.local cluster.local
nameserver 10.96.0.10
options ndots:5 timeout:2 attempts:3
`);

t.test('resolv.conf as the stubs read it', async (t) => {
  t.same(pod, { nameservers: ['10.96.0.10'], search: ['default.svc.cluster.local', 'svc.cluster.local', 'cluster.local'], ndots: 5, timeoutSec: 2, attempts: 3 });
  t.same(parseResolvConf('domain a.example\nsearch b.example c.example\n').search, ['b.example', 'c.example'], 'the last of domain/search wins');
  t.same(parseResolvConf('search b.example\ndomain a.example\n').search, ['a.example']);
  t.same(parseResolvConf('').nameservers, ['127.0.0.1'], 'no nameserver means the local one');
  t.equal(parseResolvConf('options ndots:99').ndots, 15, 'ndots is capped at 15');
  t.same(parseResolvConf('nameserver 1.1.1.1\nnameserver 2.2.2.2\nnameserver 3.3.3.3\nnameserver 4.4.4.4').nameservers.length, 3, 'at most three nameservers');
});

t.test('search order: glibc and musl, below and at ndots, trailing dot', async (t) => {
  const cases: [string, 'glibc' | 'musl', boolean, string[]][] = [
    ['redis', 'glibc', true, ['redis.default.svc.cluster.local.', 'redis.svc.cluster.local.', 'redis.cluster.local.', 'redis.']],
    ['redis', 'musl', true, ['redis.default.svc.cluster.local.', 'redis.svc.cluster.local.', 'redis.cluster.local.', 'redis.']],
    ['a.b.c.d.example.com', 'glibc', true, ['a.b.c.d.example.com.', 'a.b.c.d.example.com.default.svc.cluster.local.', 'a.b.c.d.example.com.svc.cluster.local.', 'a.b.c.d.example.com.cluster.local.']],
    ['a.b.c.d.example.com', 'musl', true, ['a.b.c.d.example.com.']],
    ['redis.default.svc.cluster.local.', 'glibc', true, ['redis.default.svc.cluster.local.']],
    ['redis.default.svc.cluster.local.', 'musl', true, ['redis.default.svc.cluster.local.']],
    ['_http._tcp.web', 'glibc', false, ['_http._tcp.web.default.svc.cluster.local.', '_http._tcp.web.svc.cluster.local.', '_http._tcp.web.cluster.local.', '_http._tcp.web.']],
    ['_http._tcp.web', 'musl', false, ['_http._tcp.web.'], ],
  ];
  for (const [name, stub, addr, want] of cases) t.same(searchOrder(name, pod, stub, addr), want, `${stub} ${name}${addr ? '' : ' (res_search)'}`);
});

t.test('when a result ends the search', async (t) => {
  const rows: [string, 'glibc' | 'musl', Parameters<typeof decide>[1], { stop: boolean; found: boolean }][] = [
    ['both answer', 'glibc', ['answer', 'answer'], { stop: true, found: true }],
    ['A only, AAAA NXDOMAIN: glibc uses A', 'glibc', ['answer', 'nxdomain'], { stop: true, found: true }],
    ['A only, AAAA NXDOMAIN: musl takes the name as missing', 'musl', ['answer', 'nxdomain'], { stop: false, found: false }],
    ['NODATA: glibc searches on', 'glibc', ['nodata', 'nodata'], { stop: false, found: false }],
    ['NODATA: musl stops', 'musl', ['nodata', 'nodata'], { stop: true, found: false }],
    ['SERVFAIL: glibc searches on', 'glibc', ['servfail', 'servfail'], { stop: false, found: false }],
    ['SERVFAIL: musl stops', 'musl', ['servfail', 'nxdomain'], { stop: true, found: false }],
    ['REFUSED: glibc stops', 'glibc', ['other', 'other'], { stop: true, found: false }],
    ['NXDOMAIN: both search on', 'musl', ['nxdomain', 'nxdomain'], { stop: false, found: false }],
  ];
  for (const [what, stub, outcomes, want] of rows) t.same(decide(stub, outcomes), want, what);
});

t.test('--server forms', async (t) => {
  t.same(parseServer('127.0.0.1'), { host: '127.0.0.1', port: 53 });
  t.same(parseServer('127.0.0.1:1053'), { host: '127.0.0.1', port: 1053 });
  t.same(parseServer('[::1]:1053'), { host: '::1', port: 1053 });
  t.same(parseServer('::1'), { host: '::1', port: 53 });
});
