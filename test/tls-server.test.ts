/**
 * The `tls` plugin and `tls://` server blocks: DNS over TLS (RFC 7858) served on loopback, asked with
 * kdig (knot-dnsutils) and with our own `forward . tls://`; client certificates; setup errors.
 */
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import t, { type Test } from 'tap';
import { loadPlugins } from '../src/plugins/registry.js';
import { runCommand } from '../src/pkg/command.js';
import { loadConfig } from '../src/server/config.js';
import { DnsServer } from '../src/server/dns-server.js';
import { dig } from './helpers/dig.js';
import { makePki, type TestPki } from './helpers/dot.js';
import { metricValue } from './helpers/metrics.js';
import { startServer } from './helpers/server.js';
import { freePort } from './helpers/upstream.js';

const NAME = 'dns.test.example';
/** kdig (knot-dnsutils) is the DoT client; .ci/run may not install it: the cases needing it skip then. */
const KDIG = (await runCommand('kdig', ['-V']).catch(() => ({ code: 127 }))).code === 0;
const needsKdig = KDIG ? {} : { skip: 'kdig (knot-dnsutils) is not installed' };

async function serveTls(t: Test, pki: TestPki, corefile: (port: number) => string): Promise<{ server: DnsServer; port: number }> {
  const port = await freePort();
  const file = join(pki.dir, `Corefile-${port}`);
  writeFileSync(file, corefile(port));
  const server = new DnsServer({ conf: file, bind: ['127.0.0.1'], plugins: await loadPlugins() });
  await server.start();
  t.teardown(() => server.stop());
  return { server, port };
}

/** kdig over TLS; the answer section's RDATA, or the failure. */
async function kdig(port: number, args: string[]): Promise<{ ok: boolean; answers: string[]; out: string }> {
  const r = await runCommand('kdig', ['@127.0.0.1', '-p', String(port), '+tls', '+time=2', '+retry=0', ...args]);
  const answers = [...r.stdout.matchAll(/^\S+\s+\d+\s+IN\s+\S+\s+(.+)$/gm)].map((m) => m[1]!);
  return { ok: r.code === 0 && /status: NOERROR/.test(r.stdout), answers, out: r.stdout + r.stderr };
}

const hostsBlock = '    hosts {\n        192.0.2.7 www.example.org\n    }\n';

t.test('tls://.:PORT with tls CERT KEY: kdig gets answers over TLS, the certificate is ours, no UDP, no plain TCP', needsKdig, async (t) => {
  const pki = await makePki([NAME]);
  t.teardown(pki.cleanup);
  const { server, port } = await serveTls(t, pki, (p) => `tls://.:${p} {\n    tls leaf.pem leaf.key\n${hostsBlock}}\n`);
  const ok = await kdig(port, [`+tls-ca=${pki.ca}`, `+tls-hostname=${NAME}`, 'www.example.org', 'A']);
  t.ok(ok.ok, 'kdig +tls: NOERROR');
  t.same(ok.answers, ['192.0.2.7']);
  t.match(ok.out, /TLS session \(TLS1\.[23]\)/, 'kdig reports a TLS session');
  t.notOk((await kdig(port, [`+tls-ca=${pki.ca}`, '+tls-hostname=other.example', 'www.example.org', 'A'])).ok, 'another name: kdig refuses the certificate');
  await t.rejects(dig(port, ['www.example.org', 'A', '+time=1']), 'no UDP listener on a tls:// port');
  await t.rejects(dig(port, ['www.example.org', 'A', '+tcp', '+time=1']), 'plain TCP gets no DNS answer');
  t.equal(await metricValue(server.registry, 'coredns_plugin_enabled', { server: `tls://:${port}`, name: 'hosts' }), 1, 'server label tls://:PORT');
  t.same(server.config!.ports.map((p) => p.server), [`tls://:${port}`]);
});

t.test('forward . tls:// to our own tls:// server, with a client certificate (client_auth require_and_verify)', async (t) => {
  const pki = await makePki([NAME]);
  t.teardown(pki.cleanup);
  const { port } = await serveTls(t, pki, (p) => `tls://.:${p} {\n    tls leaf.pem leaf.key ca.pem {\n        client_auth require_and_verify\n    }\n${hostsBlock}}\n`);
  if (KDIG) {
    t.notOk((await kdig(port, [`+tls-ca=${pki.ca}`, `+tls-hostname=${NAME}`, 'www.example.org', 'A'])).ok, 'no client certificate: refused');
    const withCert = await kdig(port, [`+tls-ca=${pki.ca}`, `+tls-hostname=${NAME}`, `+tls-certfile=${pki.cert}`, `+tls-keyfile=${pki.key}`, 'www.example.org', 'A']);
    t.same(withCert.answers, ['192.0.2.7'], 'kdig with a client certificate the CA signed');
  }
  const front = await startServer(`. {\n  forward . tls://127.0.0.1:${port} {\n    tls ${pki.cert} ${pki.key} ${pki.ca}\n    tls_servername ${NAME}\n  }\n}\n`);
  t.teardown(front.stop);
  t.same((await dig(front.port, ['www.example.org', 'A'])).answer.map((r) => r.data), ['192.0.2.7'], 'clusterdns to clusterdns over TLS');
  const noCert = await startServer(`. {\n  forward . tls://127.0.0.1:${port} {\n    tls ${pki.ca}\n    tls_servername ${NAME}\n    max_fails 0\n  }\n}\n`);
  t.teardown(noCert.stop);
  t.equal((await dig(noCert.port, ['www.example.org', 'A'])).status, 'SERVFAIL', 'forward without a client certificate: refused, SERVFAIL');
});

t.test('client_auth require and verify_if_given; reload swaps the certificate', needsKdig, async (t) => {
  const pki = await makePki([NAME]);
  const other = await makePki(['other.test.example']);
  t.teardown(pki.cleanup);
  t.teardown(other.cleanup);
  const { server, port } = await serveTls(t, pki, (p) => `tls://.:${p} {\n    tls leaf.pem leaf.key ca.pem {\n        client_auth verify_if_given\n    }\n${hostsBlock}}\n`);
  const ask = (extra: string[], name = NAME, ca = pki.ca) => kdig(port, [`+tls-ca=${ca}`, `+tls-hostname=${name}`, ...extra, 'www.example.org', 'A']);
  t.ok((await ask([])).ok, 'verify_if_given: no certificate is fine');
  t.ok((await ask([`+tls-certfile=${pki.cert}`, `+tls-keyfile=${pki.key}`])).ok, 'verify_if_given: a verified certificate is fine');
  t.notOk((await ask([`+tls-certfile=${other.cert}`, `+tls-keyfile=${other.key}`])).ok, 'verify_if_given: a certificate of another CA is refused');
  writeFileSync(server.opts.conf, `tls://.:${port} {\n    tls ${other.cert} ${other.key} {\n        client_auth require\n    }\n${hostsBlock}}\n`);
  t.ok(await server.reload(), 'reload');
  t.notOk((await ask([], 'other.test.example', other.ca)).ok, 'require: no certificate is refused');
  const anyCert = await ask([`+tls-certfile=${pki.cert}`, `+tls-keyfile=${pki.key}`], 'other.test.example', other.ca);
  t.ok(anyCert.ok, 'the new certificate serves; require takes any certificate', { out: anyCert.out });
  t.notOk((await ask([`+tls-certfile=${pki.cert}`, `+tls-keyfile=${pki.key}`])).ok, 'the old certificate is gone');
});

t.test('a connection that never finishes its handshake is closed after timeouts read', async (t) => {
  const pki = await makePki([NAME]);
  t.teardown(pki.cleanup);
  const { port } = await serveTls(t, pki, (p) => `tls://.:${p} {\n    tls leaf.pem leaf.key\n    timeouts {\n        read 1s\n    }\n${hostsBlock}}\n`);
  const start = performance.now();
  const sock = net.connect(port, '127.0.0.1');
  sock.on('error', () => undefined);
  await new Promise<void>((r) => sock.once('close', () => r()));
  const ms = performance.now() - start;
  t.ok(ms >= 900 && ms < 8000, `closed by the server after ${Math.round(ms)} ms (read 1s)`);
});

t.test('a tls:// block without tls serves plain DNS over TCP (CoreDNS); setup errors', async (t) => {
  const pki = await makePki([NAME]);
  t.teardown(pki.cleanup);
  const { port } = await serveTls(t, pki, (p) => `tls://.:${p} {\n${hostsBlock}}\n`);
  t.same((await dig(port, ['www.example.org', 'A', '+tcp'])).answer.map((r) => r.data), ['192.0.2.7'], 'TCP, unencrypted');
  await t.rejects(dig(port, ['www.example.org', 'A', '+time=1']), 'still no UDP');

  const plugins = await loadPlugins();
  const shared = new DnsServer({ conf: join(pki.dir, 'Corefile'), plugins }).shared;
  const load = (text: string) => loadConfig({ file: join(pki.dir, 'Corefile'), text, plugins, shared });
  const bad: [string, string, RegExp][] = [
    ['acme', 'tls://.:853 {\n    tls {\n        acme dns.example.org\n    }\n}\n', /Corefile:2 - Error during setup: plugin\/tls: automatic certificates/],
    ['one arg', 'tls://.:853 {\n    tls leaf.pem\n}\n', /Corefile:2 .*plugin\/tls: wrong argument count: want CERT KEY \[CA\], got 1/],
    ['missing file', 'tls://.:853 {\n    tls nope.pem leaf.key\n}\n', /Corefile:2 .*could not read TLS cert .*nope.pem/],
    ['client_auth', 'tls://.:853 {\n    tls leaf.pem leaf.key {\n        client_auth maybe\n    }\n}\n', /Corefile:3 .*unknown authentication type 'maybe'/],
    ['option', 'tls://.:853 {\n    tls leaf.pem leaf.key {\n        ciphers x\n    }\n}\n', /Corefile:3 .*unknown option 'ciphers'/],
    ['twice', 'tls://.:853 {\n    tls leaf.pem leaf.key\n    tls leaf.pem leaf.key\n}\n', /Corefile:3 .*only be used once/],
    ['dns and tls on one port', 'tls://.:8853 {\n    tls leaf.pem leaf.key\n}\nexample.org:8853 {\n    whoami\n}\n', /Corefile:4 .*cannot serve dns:\/\/example.org.:8853 - port 8853 is already served as tls:\/\/:8853/],
    ['https', 'https://. {\n    whoami\n}\n', /https:\/\/ servers are not supported, only dns:\/\/ and tls:\/\//],
  ];
  for (const [what, text, re] of bad) await t.rejects(load(text), re, what);
  const ok = await load('tls://. tls://example.org:8853 {\n    tls leaf.pem leaf.key {\n        keylog keys.log\n    }\n    whoami\n}\n');
  t.same(ok.ports.map((p) => p.server), ['tls://:853', 'tls://:8853'], 'tls:// keys: 853 by default');
  t.equal(ok.ports[0]!.tls?.clientAuth, 'nocert');
});
