import t from 'tap';
import { listAddresses } from '../src/plugins/bind/setup.js';
import { loadPlugins } from '../src/plugins/registry.js';
import { loadConfig } from '../src/server/config.js';
import { DnsServer } from '../src/server/dns-server.js';
import { inProcessServer } from './helpers/in-process.js';

/* whoami answers and bind's listen addresses, in-process (no sockets). */

t.test('whoami: the asker\'s address, port and transport in the additional section', async (t) => {
  const srv = await inProcessServer('. {\n    whoami\n}\n');
  t.teardown(() => srv.close());
  const cases: [from: string, proto: 'udp' | 'tcp', type: string, extra: string[]][] = [
    ['10.1.2.3', 'udp', 'A', ['example.org. 0 IN A 10.1.2.3', '_udp.example.org. 0 IN SRV 0 0 40000 .']],
    ['fd00::1', 'tcp', 'MX', ['example.org. 0 IN AAAA fd00::1', '_tcp.example.org. 0 IN SRV 0 0 40000 .']],
    ['::ffff:10.0.0.1', 'udp', 'TXT', ['example.org. 0 IN A 10.0.0.1', '_udp.example.org. 0 IN SRV 0 0 40000 .']],
  ];
  for (const [from, proto, type, extra] of cases) {
    const r = await srv.ask('example.org.', type, { from, proto });
    t.equal(r.rcode, 'NOERROR', `${from} ${proto} ${type}: rcode`);
    t.ok(r.aa, `${from}: authoritative`);
    t.same(r.answer, [], `${from}: empty answer`);
    t.same(r.extra, extra, `${from} ${proto}: additional`);
  }
  t.same((await srv.ask('.', 'NS')).extra, ['. 0 IN A 127.0.0.1', '_udp. 0 IN SRV 0 0 40000 .'], 'the root: no double dot');
});

t.test('bind: addresses of every bind line, minus except; interface names', async (t) => {
  const plugins = await loadPlugins();
  const server = new DnsServer({ conf: '/nonexistent/Corefile', plugins });
  const bindOf = async (block: string) => {
    const config = await loadConfig({ file: 'Corefile', text: `.:1053 {\n${block}\n    whoami\n}\n`, plugins, shared: server.shared });
    return config.ports.map((p) => p.bind);
  };
  t.same(await bindOf('    bind 127.0.0.1 ::1'), [['127.0.0.1', '::1']]);
  t.same(await bindOf('    bind 127.0.0.1\n    bind ::1'), [['127.0.0.1', '::1']], 'two bind lines add up');
  t.same(await bindOf('    bind 127.0.0.1 ::1 {\n        except ::1\n    }'), [['127.0.0.1']], 'except');
  await t.rejects(bindOf('    bind 127.0.0.1 {\n        except 127.0.0.1\n    }'), /Corefile:2 - Error during setup: plugin\/bind: no address left to listen on \(127.0.0.1 except 127.0.0.1\)/);
  await t.rejects(bindOf('    bind nosuchif0'), /Corefile:2 - Error during setup: plugin\/bind: not a valid IP address or interface name: 'nosuchif0'/);
  await t.rejects(bindOf('    bind 127.0.0.1 {\n        except\n    }'), /Corefile:3 .*at least one address or interface must be given to except/);
  await t.rejects(bindOf('    bind 127.0.0.1 {\n        listen ::1\n    }'), /Corefile:3 .*invalid option 'listen'/);
  await t.rejects(bindOf('    bind'), /Corefile:2 .*at least one address or interface name is expected/);
  const lo = (await bindOf('    bind lo'))[0]!;
  t.ok(lo.includes('127.0.0.1'), `bind lo: the loopback interface's addresses (${lo.join(' ')})`);
  t.same(await bindOf('    bind lo {\n        except lo\n    }').catch((e: Error) => e.message), 'Corefile:2 - Error during setup: plugin/bind: no address left to listen on (lo except lo)');
  const shared = await loadConfig({
    file: 'Corefile', plugins, shared: server.shared,
    text: 'a.example:1053 {\n    bind 127.0.0.1\n    whoami\n}\nb.example:1053 {\n    whoami\n}\n',
  });
  t.same(shared.ports.map((p) => p.bind), [[]], 'a block without bind on the same port: every address');
});

t.test('bind: an interface name stands for all its addresses (listAddresses, CoreDNS listIP)', async (t) => {
  const v4 = (address: string) => ({ address, family: 'IPv4' as const, netmask: '', mac: '', internal: false, cidr: null });
  const v6 = (address: string, scopeid = 0) => ({ address, family: 'IPv6' as const, netmask: '', mac: '', internal: false, cidr: null, scopeid });
  const ifaces = { eth0: [v4('10.0.0.5'), v6('fd00::5'), v6('fe80::1', 2)], lo: [v4('127.0.0.1'), v6('::1')] };
  const exists = (n: string) => n === 'eth0' || n === 'lo' || n === 'dummy9';
  const cases: [string[], string[] | string][] = [
    [['1.2.3.4'], ['1.2.3.4']],
    [['1.2.3.4', 'lo'], ['1.2.3.4', '127.0.0.1', '::1']],
    [['eth0'], ['10.0.0.5', 'fd00::5', 'fe80::1%eth0']],
    [['dummy9'], []],
    [['::1', 'noone'], 'noone'],
    [['1.2.3.invalid'], '1.2.3.invalid'],
  ];
  for (const [args, want] of cases) t.same(listAddresses(args, ifaces, exists), want, args.join(' '));
});
