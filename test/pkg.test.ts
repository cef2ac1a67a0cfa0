import t from 'tap';
import { SetupArgs, type ArgLine } from '../src/pkg/args.js';
import { SetupError } from '../src/pkg/config-errors.js';
import { Fall } from '../src/pkg/fall.js';
import { canonicalCidr, canonicalIP, cidrContains, cidrFamily, formatIpv6, ipv6Bytes, isCidr, writeIpv4, writeIpv6 } from '../src/pkg/ip.js';
import { cidrToReverseZones, ipFromReverseName, reverseName } from '../src/pkg/reverse.js';
import { fqdn, isSubdomain, zonesFromArgs } from '../src/pkg/zone.js';

t.test('CIDR → reverse zones', async (t) => {
  const cases: [string, string[]][] = [
    ['10.0.0.0/8', ['10.in-addr.arpa.']],
    ['10.1.2.3/16', ['1.10.in-addr.arpa.']],
    ['192.168.1.7/32', ['7.1.168.192.in-addr.arpa.']],
    ['0.0.0.0/0', ['in-addr.arpa.']],
    ['10.0.0.0/22', ['0.0.10.in-addr.arpa.', '1.0.10.in-addr.arpa.', '2.0.10.in-addr.arpa.', '3.0.10.in-addr.arpa.']],
    ['10.129.60.0/22', ['60.129.10.in-addr.arpa.', '61.129.10.in-addr.arpa.', '62.129.10.in-addr.arpa.', '63.129.10.in-addr.arpa.']],
    ['192.168.1.1/23', ['0.168.192.in-addr.arpa.', '1.168.192.in-addr.arpa.']],
    ['fd00::/8', ['d.f.ip6.arpa.']],
    ['fd00::/7', ['c.f.ip6.arpa.', 'd.f.ip6.arpa.']],
    ['2001:db8::/29', ['8', '9', 'a', 'b', 'c', 'd', 'e', 'f'].map((n) => `${n}.b.d.0.1.0.0.2.ip6.arpa.`)],
    ['2001:db8::/115', ['0', '1'].map((n) => `${n}.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.`)],
  ];
  for (const [cidr, zones] of cases) t.same(cidrToReverseZones(cidr), zones, cidr);
  t.equal(cidrToReverseZones('10.0.0.0/27').length, 32, '/27 rounds up to /32 zones');
  t.equal(cidrToReverseZones('10.0.0.0/27')[31], '31.0.0.10.in-addr.arpa.');
  t.same(cidrToReverseZones('10.9.3.0/18').slice(62), ['62.9.10.in-addr.arpa.', '63.9.10.in-addr.arpa.'], '/18 → 64 /24 zones from the network address');
  for (const bad of ['10.0.0.0', '10.0.0.0/08', 'example.org/8', 'fe80::1%eth0/64', '1.2.3.4/-1']) t.throws(() => cidrToReverseZones(bad), /invalid CIDR/, bad);
});

t.test('reverse names', async (t) => {
  const cases: [string, string][] = [
    ['10.0.0.1', '1.0.0.10.in-addr.arpa.'],
    ['192.168.200.3', '3.200.168.192.in-addr.arpa.'],
    ['2001:db8::567:89ab', 'b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.'],
    ['::1', '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa.'],
  ];
  for (const [ip, name] of cases) {
    t.equal(reverseName(ip), name, ip);
    t.equal(ipFromReverseName(name), ip, name);
  }
  t.equal(ipFromReverseName('1.0.0.10.IN-ADDR.ARPA'), '10.0.0.1', 'case-insensitive, dot optional');
  t.equal(reverseName('::ffff:1.2.3.4').slice(0, 16), '4.0.3.0.2.0.1.0.', 'v4-mapped is an IPv6 name');
  for (const partial of ['0.10.in-addr.arpa.', 'in-addr.arpa.', 'x.1.0.0.10.in-addr.arpa.', '01.0.0.10.in-addr.arpa.', '1.0.0.256.in-addr.arpa.', 'd.f.ip6.arpa.', 'example.org.']) {
    t.equal(ipFromReverseName(partial), undefined, partial);
  }
  t.throws(() => reverseName('nope'), /not an IP address/);
});


t.test('cidrContains', async (t) => {
  t.ok(cidrContains('10.0.1.0/24', '10.0.1.1'));
  t.notOk(cidrContains('10.0.1.0/24', '10.0.2.1'));
  t.ok(cidrContains('fd00::/64', 'fd00::1'));
  t.notOk(cidrContains('fd00::/64', '10.0.0.1'));
  t.ok(cidrContains('0.0.0.0/0', '1.2.3.4'));
});


t.test('IPv6 text <-> bytes', async (t) => {
  const cases: [string, string][] = [
    ['fd00::1', 'fd00::1'], ['::', '::'], ['::1', '::1'], ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['FD00:0:0:0:0:0:0:A', 'fd00::a'], ['::ffff:10.1.2.3', '::ffff:a01:203'], ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
  ];
  for (const [input, out] of cases) t.equal(formatIpv6(ipv6Bytes(input)!), out, input);
  for (const bad of ['1::2::3', 'g::1', '1:2:3:4:5:6:7:8:9', '1:2:3']) t.equal(ipv6Bytes(bad), undefined, bad);
});


t.test('IPv6: more forms, in place, agrees with the WHATWG URL parser', async (t) => {
  for (const bad of ['', ':', ':::', '1:', ':1', '1::2:', '12345::', '::1.2.3', '::1.2.3.256', '::1.2.3.4.5', 'fe80::1%eth0', '1::2:3:4:5:6:7:8', '1.2.3.4', '::a.2.3.4']) {
    t.equal(ipv6Bytes(bad), undefined, `'${bad}' refused`);
  }
  const out = Buffer.alloc(20, 0xee);
  t.ok(writeIpv6('fd00::2', out, 2));
  t.same([...out.subarray(0, 2), ...out.subarray(18)], [0xee, 0xee, 0xee, 0xee], 'writes exactly 16 bytes at the offset');
  t.equal(formatIpv6(out, 2), 'fd00::2');
  // Random addresses with random zero runs, written in the long form: the canonical text must match Node's URL.
  let seed = 7;
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
  for (let i = 0; i < 500; i++) {
    const groups = Array.from({ length: 8 }, () => (rnd(3) === 0 ? 0 : rnd(0x10000)));
    const text = groups.map((g) => g.toString(16)).join(':');
    t.equal(canonicalIP(text), new URL(`http://[${text}]/`).hostname.slice(1, -1), text);
  }
});

t.test('IPv4 written in place', async (t) => {
  const out = Buffer.alloc(6, 0xee);
  t.ok(writeIpv4('10.96.0.255', out, 1));
  t.same([...out], [0xee, 10, 96, 0, 255, 0xee]);
  for (const bad of ['', '1.2.3', '1.2.3.4.5', '256.1.1.1', '1..2.3', '1.2.3.4 ', 'a.b.c.d', '1234.1.1.1']) t.notOk(writeIpv4(bad, out, 0), `'${bad}' refused`);
});

t.test('IP text and CIDRs', async (t) => {
  t.equal(canonicalIP('10.0.0.1'), '10.0.0.1');
  t.equal(canonicalIP('FD00:0::1'), 'fd00::1');
  t.equal(canonicalIP('fe80::1%eth0'), undefined, 'a zone is not a plain address');
  t.equal(canonicalIP('nope'), undefined);
  t.equal(canonicalCidr('fd00:0::/064'), 'fd00::/64');
  t.equal(canonicalCidr('10.0.0.1/8'), '10.0.0.1/8', 'host bits kept');
  for (const bad of ['10.0.0.0', '10.0.0.0/33', 'fd00::/129', 'x/8', '/8', '10.0.0.0/8/8']) t.equal(canonicalCidr(bad), undefined, bad);
  t.ok(isCidr('10.0.0.0/8'));
  t.notOk(isCidr('10.0.0.0/08'), 'no leading zeros in a zone CIDR');
  t.equal(cidrFamily('fd00::/8'), 6);
  t.equal(cidrFamily('10.0.0.0/8'), 4);
  t.ok(cidrContains('10.0.0.1', '10.0.0.1'), 'a bare address is a full-length prefix');
  t.notOk(cidrContains('10.0.0.1', '10.0.0.2'));
  t.ok(cidrContains('::ffff:0:0/96', '::ffff:1.2.3.4'));
});

t.test('zones: fqdn, subdomains, zone arguments', async (t) => {
  t.equal(fqdn('Foo.Bar'), 'foo.bar.');
  t.equal(fqdn(''), '.');
  t.ok(isSubdomain('a.b.', 'b.'));
  t.ok(isSubdomain('b.', 'b.'));
  t.notOk(isSubdomain('ab.', 'b.'));
  t.ok(isSubdomain('x.', '.'));
  t.same(zonesFromArgs(['Cluster.Local', '10.0.0.0/8', 'cluster.local.', 'fd00::/7']),
    ['cluster.local.', '10.in-addr.arpa.', 'c.f.ip6.arpa.', 'd.f.ip6.arpa.']);
  t.throws(() => zonesFromArgs(['::/0']), /invalid CIDR ::\/0/);
});

t.test('fallthrough: none, all, zones, CIDRs as reverse zones', async (t) => {
  t.notOk(Fall.never.through('a.example.org.'));
  t.ok(Fall.fromArgs([]).through('anything.'));
  const f = Fall.fromArgs(['example.org', '10.0.0.0/8']);
  t.same(f.zones, ['example.org.', '10.in-addr.arpa.']);
  const cases: [string, boolean][] = [
    ['a.example.org.', true], ['example.org.', true], ['example.net.', false],
    ['1.0.0.10.in-addr.arpa.', true], ['1.0.0.11.in-addr.arpa.', false], ['10.0.0.0/8.', false],
  ];
  for (const [name, want] of cases) t.equal(f.through(name), want, name);
});

t.test('setup arguments: counts, once, ttl, durations, file:line', async (t) => {
  const at = (name: string, args: string[] = [], line = 7, children: unknown[] = []): ArgLine => ({ name, args, children, file: 'Corefile', line });
  const a = new SetupArgs('demo');
  t.same(a.count(at('opt', ['x']), 1), ['x']);
  t.throws(() => a.count(at('opt', []), 1, 2, 'NAME [NAME]'), { message: 'Corefile:7 - Error during setup: plugin/demo: opt: wrong argument count: want NAME [NAME], got 0' });
  t.throws(() => a.count(at('demo', ['x']), 0), { message: "Corefile:7 - Error during setup: plugin/demo: takes no arguments, got 'x'" });
  t.throws(() => a.noBlock(at('opt', [], 9, [{}])), /Corefile:9 .*plugin\/demo: opt: takes no block/);
  a.once(at('ttl'));
  t.ok(a.has('ttl'));
  const twice = t.throws(() => a.once(at('ttl', [], 8))) as SetupError;
  t.ok(twice instanceof SetupError);
  t.equal(twice.line, 8);
  t.match(twice.message, /'ttl' given more than once/);
  t.equal(a.ttl(at('ttl', ['30']), 0, 3600), 30);
  for (const bad of ['x', '-1', '3601', '1.5']) t.throws(() => a.ttl(at('ttl', [bad]), 0, 3600), { message: `Corefile:7 - Error during setup: plugin/demo: ttl must be in range [0, 3600]: ${bad}` }, bad);
  t.throws(() => a.ttl(at('ttl', []), 0, 3600), /ttl: wrong argument count: want SECONDS, got 0/);
  t.equal(a.duration(at('reload'), '1m30s'), 90_000);
  t.throws(() => a.duration(at('reload'), '5x'), /reload: invalid duration '5x'/);
  t.throws(() => a.duration(at('reload'), '-1s'), /reload: duration must not be negative, got '-1s'/);
  t.throws(() => a.duration(at('reload'), '1s', 2000), /reload: duration must be at least 2s, got '1s'/);
  t.equal(a.uint(at('max'), '12'), 12);
  for (const bad of [undefined, '-1', 'x', '1.5', '11']) t.throws(() => a.uint(at('max'), bad, 10), /max: want a whole number from 0 to 10, got/, String(bad));
});
