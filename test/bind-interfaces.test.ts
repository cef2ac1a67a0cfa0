/**
 * `bind IFACE` in a network namespace the test creates: an interface (one end of a veth pair: the dummy
 * driver is not loaded on every host) with addresses assigned here,
 * the built CLI serving inside it, and the sockets it opened (ss) and the answers it gives (dig) on exactly
 * the interface's addresses minus `except`.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { NetnsLab, isRoot } from './helpers/netns.js';
import { tempDir } from './helpers/temp-dir.js';
import { waitFor } from './helpers/wait.js';

const CLI = new URL('../dist/src/cli.js', import.meta.url).pathname;
const PORT = 5353;

if (!isRoot() || !existsSync(CLI)) {
  t.plan(0, 'needs root (network namespaces) and the built CLI (npm run build): skipped');
} else {
  const lab = new NetnsLab('bnd');
  t.teardown(() => lab.cleanup());

  t.before(async () => {
    await lab.addNamespace('b');
    await lab.must('b', 'ip', ['link', 'add', 'dum0', 'type', 'veth', 'peer', 'name', 'dum1']);
    for (const a of ['10.77.0.1/24', '10.77.0.2/24']) await lab.must('b', 'ip', ['addr', 'add', a, 'dev', 'dum0']);
    await lab.must('b', 'ip', ['addr', 'add', 'fd00:77::1/64', 'dev', 'dum0', 'nodad']);
    // A link-local address of our own: bound as fe80::77%dum0, the zone naming the interface.
    await lab.must('b', 'ip', ['addr', 'add', 'fe80::77/64', 'dev', 'dum0', 'nodad']);
    // No kernel-made link-local addresses: their DAD would make the set of addresses depend on timing.
    for (const i of ['dum1', 'dum0']) await lab.must('b', 'ip', ['link', 'set', i, 'addrgenmode', 'none', 'up']);
  });

  /** The local addresses listening on PORT, per protocol, as ss prints them (`[v6]` without brackets). */
  const listening = async (proto: 'u' | 't') => {
    const out = await lab.must('b', 'ss', [`-Hln${proto}`, `( sport = :${PORT} )`]);
    return out.split('\n').filter((l) => l.trim()).map((l) => l.trim().split(/\s+/)[3]!.replace(/:\d+$/, '').replace(/[[\]]/g, '')).sort();
  };

  const serve = async (t: Test, bind: string) => {
    const dir = tempDir('bind-if');
    const corefile = join(dir, 'Corefile');
    writeFileSync(corefile, `.:${PORT} {\n    ${bind.replaceAll('\n', '\n    ')}\n    whoami\n}\n`);
    const child = lab.spawn('b', process.execPath, [CLI, '-conf', corefile]);
    let err = '';
    child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
    t.teardown(() => lab.kill(child));
    await waitFor(`clusterdns listening in the namespace (${err})`, async () => (await listening('t')).length > 0, 15_000, 100);
    return child;
  };

  const answers = async (server: string) => {
    const r = await lab.exec('b', 'dig', [`@${server}`, '-p', String(PORT), '+time=1', '+tries=1', 'example.org', 'A']);
    return r.code === 0 && /status: NOERROR/.test(r.stdout);
  };

  t.test('bind dum0 lo { except 10.77.0.2 127.0.0.1 }: the interfaces\' addresses, minus except', async (t) => {
    const child = await serve(t, 'bind dum0 lo {\n    except 10.77.0.2 127.0.0.1\n}');
    const want = ['10.77.0.1', '::1', 'fd00:77::1', 'fe80::77%dum0'];
    t.same(await listening('u'), want, 'UDP sockets');
    t.same(await listening('t'), want, 'TCP sockets');
    for (const a of want) t.ok(await answers(a), `answers on ${a}`);
    const ll = await lab.must('b', 'dig', ['@fe80::77%dum0', '-p', String(PORT), '+time=1', '+tries=1', 'example.org', 'A']);
    t.match(ll, /example\.org\.\s+0\s+IN\s+AAAA\s+fe80::77\n/, 'whoami writes a link-local asker without its zone');
    for (const a of ['10.77.0.2', '127.0.0.1']) t.notOk(await answers(a), `nothing on ${a} (excepted)`);
    await lab.kill(child);
  });

  t.test('bind lo: loopback only, not the dummy interface', async (t) => {
    const child = await serve(t, 'bind lo');
    t.same(await listening('u'), ['127.0.0.1', '::1']);
    t.ok(await answers('127.0.0.1'));
    t.notOk(await answers('10.77.0.1'), 'nothing on dum0');
    await lab.kill(child);
  });
}
