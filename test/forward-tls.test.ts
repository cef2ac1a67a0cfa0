/**
 * forward to DNS-over-TLS upstreams (`tls://`), against a real DoT server: unbound with a certificate from a
 * throwaway CA. Answers, server-name and CA verification, connection reuse and `expire`, health checks over
 * TLS, metrics; `clusterdns check` of the usual DoT Corefile.
 */
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import type { Directive } from '../src/corefile/types.js';
import type { Forward } from '../src/plugins/forward/forward.js';
import { parseForward } from '../src/plugins/forward/setup.js';
import { loadPlugins } from '../src/plugins/registry.js';
import { runCommand } from '../src/pkg/command.js';
import { checkCorefile } from '../src/server/check.js';
import { dig } from './helpers/dig.js';
import { metricValue } from './helpers/metrics.js';
import { makePki, startUnboundDot, type DotServer } from './helpers/dot.js';
import { startServer } from './helpers/server.js';
import { tempDir } from './helpers/temp-dir.js';
import { sleep, waitFor } from './helpers/wait.js';

const NAME = 'dns.test.example';
const DATA = ['www.example.com. A 192.0.2.1', 'www.example.com. AAAA 2001:db8::1', 'txt.example.com. TXT "over tls"'];

t.test('setup: tls:// upstreams, port 853, server names, tls option', async (t) => {
  const pki = await makePki([NAME]);
  t.teardown(pki.cleanup);
  const d = (args: string[], children: [string, ...string[]][] = []): Directive => ({
    name: 'forward', args, file: 'Corefile', line: 3,
    children: children.map(([name, ...a], i) => ({ name, args: a, children: [], file: 'Corefile', line: 4 + i })),
  });
  const ctx = { corefile: join(pki.dir, 'Corefile'), block: [] };
  const f = parseForward(d(['.', 'tls://1.1.1.1', 'tls://1.0.0.1:8853', 'tls://[2606:4700::1111]', '9.9.9.9'], [['tls_servername', 'cloudflare-dns.com']]), ctx);
  t.same(f.upstreams.map((u) => [u.to, u.secure]), [['1.1.1.1:853', true], ['1.0.0.1:8853', true], ['[2606:4700::1111]:853', true], ['9.9.9.9:53', false]]);
  const per = parseForward(d(['.', 'tls://9.9.9.9%dns.quad9.net', 'tls://[2620:fe::fe%dns.quad9.net]:853', 'tls://1.1.1.1%one.one.one.one:10853']), ctx);
  t.same(per.upstreams.map((u) => u.to), ['9.9.9.9:853', '[2620:fe::fe]:853', '1.1.1.1:10853'], 'per-upstream server name: tls://IP%NAME[:PORT]');
  t.same(parseForward(d(['.', 'tls://1.1.1.1', 'dns://1.1.1.1:853']), ctx).upstreams.length, 2, 'tls and plain to the same address are two upstreams');
  t.ok(parseForward(d(['.', 'tls://127.0.0.1'], [['tls', 'ca.pem']]), ctx), 'tls CA, relative to the Corefile');
  t.ok(parseForward(d(['.', 'tls://127.0.0.1'], [['tls', pki.cert, pki.key]]), ctx), 'tls CERT KEY (client certificate)');
  t.ok(parseForward(d(['.', 'tls://127.0.0.1'], [['tls', pki.cert, pki.key, pki.ca]]), ctx), 'tls CERT KEY CA');
  const bad: [string, Directive, RegExp][] = [
    ['both server names', d(['.', 'tls://9.9.9.9%dns.quad9.net'], [['tls_servername', 'x.example']]), /Corefile:3 .*both forward \('x.example'\) and proxy level \('dns.quad9.net'\)/],
    ['four tls args', d(['.', 'tls://1.1.1.1'], [['tls', 'a', 'b', 'c', 'd']]), /Corefile:4 .*tls: wrong argument count/],
    ['missing CA', d(['.', 'tls://1.1.1.1'], [['tls', 'nope.pem']]), /Corefile:4 .*could not read TLS CA .*nope.pem: ENOENT/],
    ['key does not match', d(['.', 'tls://1.1.1.1'], [['tls', pki.cert, pki.ca.replace('ca.pem', 'ca.key')]]), /Corefile:4 .*could not load TLS cert\/key/],
    ['CA not PEM', d(['.', 'tls://1.1.1.1'], [['tls', pki.key]]), /Corefile:4 .*(could not read root certs|could not load TLS CA)/],
    ['tls_servername arity', d(['.', 'tls://1.1.1.1'], [['tls_servername']]), /Corefile:4 .*tls_servername: wrong argument count/],
    ['host name', d(['.', 'tls://dns.quad9.net']), /not an IP address/],
  ];
  for (const [what, dir, re] of bad) t.throws(() => parseForward(dir, ctx), re, what);
});

t.test('clusterdns check loads the usual DoT Corefile without network', async (t) => {
  const dir = tempDir('dot-check');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const text = '. {\n    forward . tls://1.1.1.1 tls://1.0.0.1 {\n        tls_servername cloudflare-dns.com\n        health_check 5s\n    }\n    cache 30\n}\n';
  writeFileSync(join(dir, 'Corefile'), text);
  const report = await checkCorefile({ file: join(dir, 'Corefile'), plugins: await loadPlugins() });
  t.same(report.problems, []);
  t.equal(report.blocks, 1);
  const cli = new URL('../dist/src/cli.js', import.meta.url).pathname;
  if (process.getuid?.() !== 0 || !existsSync(cli)) return;
  // The built CLI in a network namespace with nothing but a down loopback: no network at all.
  const r = await runCommand('unshare', ['--net', process.execPath, cli, 'check', '-conf', join(dir, 'Corefile')]);
  t.equal(r.code, 0, `clusterdns check without any network: ${r.stdout}${r.stderr}`);
});

t.test('DoT to unbound: answers, verification of name and CA, reuse, expire, health over TLS', async (t) => {
  const pki = await makePki([NAME]);
  t.teardown(pki.cleanup);
  let unbound: DotServer = await startUnboundDot(pki, DATA);
  t.teardown(() => unbound.stop());
  const to = `127.0.0.1:${unbound.port}`;
  const serve = async (upstream: string, opts: string[]) => {
    const srv = await startServer(`. {\n  forward . ${upstream} {\n${opts.map((o) => `    ${o}\n`).join('')}  }\n}\n`, { files: {} });
    t.teardown(srv.stop);
    return srv;
  };

  const srv = await serve(`tls://${to}`, [`tls ${pki.ca}`, `tls_servername ${NAME}`]);
  const a = await dig(srv.port, ['www.example.com', 'A']);
  t.equal(a.status, 'NOERROR');
  t.same(a.answer.map((r) => r.data), ['192.0.2.1'], 'UDP asker, answer over TLS');
  t.ok(a.flags.includes('ra'));
  t.same((await dig(srv.port, ['www.example.com', 'AAAA', '+tcp'])).answer.map((r) => r.data), ['2001:db8::1'], 'TCP asker');
  t.same((await dig(srv.port, ['txt.example.com', 'TXT'])).answer.map((r) => r.data), ['"over tls"']);
  t.equal((await dig(srv.port, ['nope.example.com', 'A'])).status, 'NXDOMAIN');

  // Reuse: one connection carries sequential queries; the histogram counts each under to=IP:PORT.
  for (let i = 0; i < 10; i++) t.equal((await dig(srv.port, [`www.example.com`, 'A'])).status, 'NOERROR');
  const conns = await unbound.connections();
  t.equal(conns.length, 1, `one TLS connection for 14 sequential queries (ss: ${conns.map((c) => c.local).join(' ')})`);
  t.equal(await metricValue(srv.server.registry, 'coredns_proxy_request_duration_seconds', { to, rcode: 'NOERROR' }), 13, 'NOERROR tries counted by to');
  t.equal(await metricValue(srv.server.registry, 'coredns_proxy_request_duration_seconds', { to, rcode: 'NXDOMAIN' }), 1);
  await sleep(1200);
  t.equal((await dig(srv.port, ['www.example.com', 'A'])).status, 'NOERROR');
  t.same((await unbound.connections()).map((c) => c.local), conns.map((c) => c.local), 'idle 1.2 s < expire 10s: the same connection');
  await srv.stop();

  const short = await serve(`tls://${to}`, [`tls ${pki.ca}`, `tls_servername ${NAME}`, 'expire 500ms']);
  t.equal((await dig(short.port, ['www.example.com', 'A'])).status, 'NOERROR');
  const before = (await unbound.connections()).map((c) => c.local);
  t.equal(before.length, 1);
  await sleep(1200);
  t.equal((await dig(short.port, ['www.example.com', 'A'])).status, 'NOERROR');
  const after = (await waitFor('the expired connection closed', async () => {
    const now = await unbound.connections();
    return now.length === 1 && now;
  })).map((c) => c.local);
  t.not(after[0], before[0], 'idle past expire 500ms: a new connection (another local port)');
  await short.stop();

  const perName = await serve(`tls://127.0.0.1%${NAME}:${unbound.port}`, [`tls ${pki.ca}`]);
  t.same((await dig(perName.port, ['www.example.com', 'A'])).answer.map((r) => r.data), ['192.0.2.1'], 'tls://IP%NAME:PORT');
  await perName.stop();

  // Verification: the wrong name, no name (the certificate does not name the IP), or the system roots: SERVFAIL.
  for (const [what, opts] of [
    ['wrong tls_servername', [`tls ${pki.ca}`, 'tls_servername other.example']],
    ['no tls_servername: the IP is checked', [`tls ${pki.ca}`]],
    ['system roots do not know the test CA', [`tls_servername ${NAME}`]],
  ] as const) {
    const bad = await serve(`tls://${to}`, [...opts, 'max_fails 0']);
    const r = await dig(bad.port, ['www.example.com', 'A']);
    t.equal(r.status, 'SERVFAIL', what);
    t.equal(r.answer.length, 0, what);
    await bad.stop();
  }

  // Upstream down: the query fails, health checks (over TLS) fail and count; back up: the checks succeed.
  const hc = await serve(`tls://${to}`, [`tls ${pki.ca}`, `tls_servername ${NAME}`, 'health_check 100ms']);
  t.equal((await dig(hc.port, ['www.example.com', 'A'])).status, 'NOERROR');
  await unbound.stop();
  t.equal((await dig(hc.port, ['www.example.com', 'A'])).status, 'SERVFAIL', 'unbound stopped: SERVFAIL');
  const fwd = hc.server.config!.blocks[0]!.plugins.find((p) => p.name === 'forward') as Forward;
  const up = fwd.config.upstreams[0]!;
  await waitFor('the upstream marked down (fails > max_fails 2)', () => up.down(2), 10_000);
  t.ok(await metricValue(hc.server.registry, 'coredns_proxy_healthcheck_failures_total', { proxy_name: 'forward', to }) >= 3, 'failed checks counted by to');
  unbound = await startUnboundDot(pki, DATA, unbound.port);
  // unbound serves only TLS on this port: a probe over plain TCP or UDP would never succeed.
  await waitFor('a health check over TLS to succeed', () => up.fails === 0, 10_000);
  t.notOk(up.down(2), 'healthy again');
  t.same((await dig(hc.port, ['www.example.com', 'A'])).answer.map((r) => r.data), ['192.0.2.1'], 'answers again');
});
