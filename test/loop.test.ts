import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { SetupError } from '../src/corefile/types.js';
import { Loop, setLoopExit } from '../src/plugins/loop/loop.js';
import { definition } from '../src/plugins/loop/setup.js';
import { loadPlugins } from '../src/plugins/registry.js';
import { DnsServer } from '../src/server/dns-server.js';
import { setLogSink } from '../src/pkg/log.js';
import type { Query, Reply, SetupContext } from '../src/server/types.js';
import { RCODE, TYPE } from '../src/server/wire/constants.js';
import { emptyMessage } from '../src/server/wire/message.js';
import { dig } from './helpers/dig.js';
import { freePort, makeQuery, startKnot } from './helpers/upstream.js';
import { sleep } from './helpers/wait.js';
import { tempDir } from './helpers/temp-dir.js';

const zone = `$ORIGIN example.com.
$TTL 300
@ SOA ns hostmaster 1 3600 600 86400 60
@ NS ns
ns A 127.0.0.1
`;

t.test('setup takes nothing', async (t) => {
  const ctx = { zones: ['cluster.local.'], servers: ['dns://:53'], shared: { resolve: async () => emptyMessage() } } as unknown as SetupContext;
  const d = (args: string[]) => ({ name: 'loop', args, children: [], file: 'Corefile', line: 9 });
  t.throws(() => definition.setup(d(['x']), ctx), /Corefile:9 .*plugin\/loop: takes no arguments/);
  t.throws(() => definition.setup({ ...d([]), children: [{ name: 'x', args: [], children: [], file: 'Corefile', line: 10 }] }, ctx), /Corefile:10 .*takes no block/);
  try { definition.setup(d(['x']), ctx); } catch (e) { t.ok(e instanceof SetupError); }
  const l = await definition.setup(d([]), ctx) as Loop;
  t.match(l.qname, /^\d+\.\d+\.cluster\.local\.$/, 'probe name under the first zone');
});

t.test('a probe seen more than twice logs CoreDNS\'s message and exits 1', async (t) => {
  const lines: string[] = [];
  t.teardown(setLogSink((l) => lines.push(l)));
  const exits: number[] = [];
  t.teardown(setLoopExit((c) => exits.push(c)));
  const l = new Loop('.', { resolve: async () => emptyMessage() }, undefined);
  t.match(l.qname, /^\d+\.\d+\.$/);
  const next = (): Reply => ({ rcode: RCODE.NOERROR });
  const probe = (): Query => Object.assign(makeQuery(l.qname, TYPE.HINFO), { remotePort: 55953 });
  t.equal((await l.serve(makeQuery('other.example.', TYPE.HINFO), next)).rcode, RCODE.NOERROR);
  t.equal((await l.serve(makeQuery(l.qname, TYPE.A), next)).rcode, RCODE.NOERROR, 'other types are not counted');
  await l.serve(probe(), next);
  await l.serve(probe(), next);
  t.same(exits, [], 'twice is fine (the probe itself plus one hop)');
  t.equal((await l.serve(probe(), next)).rcode, RCODE.SERVFAIL);
  t.same(exits, [1]);
  t.same(lines, [`[ERROR] plugin/loop: Loop (127.0.0.1:55953 -> :53) detected for zone ".", see https://coredns.io/plugins/loop#troubleshooting. Query: "HINFO ${l.qname}"`]);
});

async function serve(corefile: string, port: number): Promise<DnsServer> {
  const dir = tempDir('loop-test');
  writeFileSync(join(dir, 'Corefile'), corefile);
  const server = new DnsServer({ conf: join(dir, 'Corefile'), dnsPort: port, bind: ['127.0.0.1'], plugins: await loadPlugins() });
  await server.start();
  return server;
}

function loopDetected(lines: string[], port: number): boolean {
  const re = new RegExp(`plugin/loop: Loop \\(127\\.0\\.0\\.1:\\d+ -> :${port}\\) detected for zone "\\.", see https://coredns\\.io/plugins/loop#troubleshooting\\. Query: "HINFO \\d+\\.\\d+\\."`);
  return lines.some((l) => re.test(l));
}

async function selfForwarding(t: Test): Promise<{ server: DnsServer; port: number; lines: string[]; exit: Promise<number | string> }> {
  const lines: string[] = [];
  t.teardown(setLogSink((l) => lines.push(l)));
  let exited: (code: number) => void = () => undefined;
  const exit = new Promise<number>((r) => { exited = r; });
  t.teardown(setLoopExit((c) => exited(c)));
  const port = await freePort();
  const server = await serve(`. {\n  errors\n  loop\n  forward . 127.0.0.1:${port} {\n    read_timeout 500ms\n  }\n}\n`, port);
  t.teardown(async () => {
    // Let the copies of the probe on their way back be answered before the listeners close.
    await sleep(300);
    await server.stop();
  });
  const timeout = new Promise<string>((r) => setTimeout(() => r('no exit within 5 s'), 5000).unref());
  return { server, port, lines, exit: Promise.race([exit, timeout]) };
}

t.test('forward pointing at the server itself: the probe comes back and the process exits 1', async (t) => {
  const { server, port, lines, exit } = await selfForwarding(t);
  const loop = server.config!.blocks[0]!.plugins.find((p) => p.name === 'loop') as Loop;
  // The probe as CoreDNS sends it, over the network to our own listener.
  void dig(port, [loop.qname, 'HINFO', '+time=3']).catch(() => undefined);
  t.equal(await exit, 1);
  t.ok(loopDetected(lines, port), lines.join('\n'));
});

t.test('forward pointing at the server itself is detected at start, with no query from outside', async (t) => {
  const { port, lines, exit } = await selfForwarding(t);
  t.equal(await exit, 1);
  t.ok(loopDetected(lines, port), lines.join('\n'));
});

t.test('forward to a real upstream: no loop, no exit', async (t) => {
  const up = await startKnot({ zones: { 'example.com.': zone } });
  t.teardown(up.stop);
  const exits: number[] = [];
  t.teardown(setLoopExit((c) => exits.push(c)));
  const port = await freePort();
  const server = await serve(`. {\n  loop\n  forward . ${up.addr}\n}\n`, port);
  t.teardown(() => server.stop());
  await sleep(1500);
  t.same(exits, []);
});
