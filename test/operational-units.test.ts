import t, { type Test } from 'tap';
import { loadConfig, closePlugins } from '../src/server/config.js';
import { SharedHttp } from '../src/server/http.js';
import { setLogSink } from '../src/pkg/log.js';
import { createRegistry } from '../src/pkg/metrics.js';
import type { Next, Query, Reply, SharedServices } from '../src/server/types.js';
import { CLASS, RCODE, TYPE } from '../src/server/wire/constants.js';
import { encodeMessage, type Message } from '../src/server/wire/message.js';
import { isParseFailure, parseQuery } from '../src/server/wire/query.js';
import { renderReply, responseLimit } from '../src/server/respond.js';
import { Errors } from '../src/plugins/errors/handler.js';
import { definition as errorsDef } from '../src/plugins/errors/setup.js';
import { Log, logMetrics } from '../src/plugins/log/handler.js';
import { COMMON_FORMAT, parseFormat } from '../src/plugins/log/format.js';
import { formatDuration, parseDuration } from '../src/pkg/duration.js';
import { Reload } from '../src/plugins/reload/handler.js';
import { Ready } from '../src/plugins/ready/handler.js';
import { loadPlugins } from '../src/plugins/registry.js';
import { writeFileSync, renameSync, symlinkSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { captureQueryLog } from './helpers/query-log.js';
import { sleep } from './helpers/wait.js';
import { tempDir } from './helpers/temp-dir.js';

const plugins = await loadPlugins();

function shared(over: Partial<SharedServices> = {}): SharedServices {
  return {
    http: new SharedHttp(), registry: createRegistry(), readiness: () => [], shuttingDown: () => false, setLameduck: () => {}, requestReload: () => {},
    resolve: () => Promise.reject(new Error('no queries in unit tests')), ...over,
  };
}

/** A Query as the server builds it, from a real encoded packet. */
function query(name: string, type: number = TYPE.A, opts: { edns?: boolean; do?: boolean; proto?: 'udp' | 'tcp'; remote?: string } = {}): Query {
  const raw = encodeMessage({
    id: 4242, qr: false, rd: true, rcode: 0, question: { name, type, class: CLASS.IN }, answer: [], authority: [], additional: [],
    edns: opts.edns || opts.do ? { udpSize: 4096, version: 0, do: !!opts.do } : null,
  });
  const pq = parseQuery(raw);
  if (isParseFailure(pq)) throw new Error(pq.reason);
  return Object.assign(pq, {
    proto: opts.proto ?? 'udp', remoteAddress: opts.remote ?? '127.0.0.1', remotePort: 5353, family: (opts.remote ?? '').includes(':') ? 2 : 1,
    server: 'dns://:53', zone: '.', start: performance.now(),
  }) as Query;
}

function captureLogs(t: Test): string[] {
  const lines: string[] = [];
  t.teardown(setLogSink((l) => lines.push(l)));
  return lines;
}


t.test('Go durations', async (t) => {
  const ok: [string, number][] = [['0', 0], ['5s', 5000], ['1m30s', 90_000], ['500ms', 500], ['1.5h', 5_400_000], ['2us', 0.002], ['-1s', -1000]];
  for (const [text, ms] of ok) t.equal(parseDuration(text), ms, text);
  for (const bad of ['', '5', 'x', '5x', '1s2', '.s']) t.throws(() => parseDuration(bad), /time: /, `'${bad}' rejected`);
  const fmt: [number, string][] = [[30_000, '30s'], [300_000, '5m0s'], [3_600_000, '1h0m0s'], [1500, '1.5s'], [500, '500ms'], [0, '0s'], [90_500, '1m30.5s']];
  for (const [ms, text] of fmt) t.equal(formatDuration(ms), text, text);
});

t.test('setup errors name the plugin, the file:line and the option', async (t) => {
  const cases: [string, RegExp][] = [
    ['errors a b', /Corefile:2 - Error during setup: plugin\/errors: wrong argument count/],
    ['errors stderr', /plugin\/errors: invalid log file: stderr/],
    ['errors {\n    consolidate 5m\n  }', /Corefile:3 .*plugin\/errors: consolidate: wrong argument count/],
    ['errors {\n    consolidate 5x ^a\n  }', /Corefile:3 .*consolidate: invalid duration '5x'/],
    ['errors {\n    consolidate 5s ( \n  }', /consolidate: bad REGEXP '\('/],
    ['errors {\n    consolidate 5s ^a loud\n  }', /unknown option in consolidate: loud/],
    ['errors {\n    consolidate 5s ^a show_first warning\n  }', /log level must come before show_first/],
    ['errors {\n    consolidate 5s ^a info error\n  }', /multiple log levels/],
    ['errors {\n    stacktrace 1\n  }', /stacktrace: takes no arguments/],
    ['errors {\n    bogus\n  }', /Corefile:3 .*plugin\/errors: unknown field 'bogus'/],
    ['log . {\n    class nope\n  }', /Corefile:3 .*plugin\/log: invalid Class: nope/],
    ['log {\n    class\n  }', /Corefile:3 .*plugin\/log: class: wrong argument count: want one or more of all/],
    ['log {\n    format x\n  }', /plugin\/log: unknown property 'format'/],
    ['health :8080 :8081', /plugin\/health: wrong argument count/],
    ['health localhost', /plugin\/health: address localhost: missing port in address/],
    ['health {\n    lameduck\n  }', /Corefile:3 .*plugin\/health: lameduck: wrong argument count/],
    ['health {\n    lameduck soon\n  }', /Corefile:3 .*plugin\/health: lameduck: invalid duration 'soon'/],
    ['health {\n    lameduck -1s\n  }', /lameduck: duration must not be negative, got '-1s'/],
    ['health {\n    lame 1s\n  }', /plugin\/health: unknown property 'lame'/],
    ['ready :1 :2', /plugin\/ready: wrong argument count/],
    ['ready 8181', /plugin\/ready: address 8181: missing port/],
    ['ready {\n    monitor sometimes\n  }', /Corefile:3 .*plugin\/ready: monitor type 'sometimes' not supported/],
    ['ready {\n    monitor\n  }', /plugin\/ready: monitor: wrong argument count/],
    ['ready {\n    watch\n  }', /plugin\/ready: unknown property 'watch'/],
    ['prometheus :1 :2', /plugin\/prometheus: wrong argument count/],
    ['prometheus localhost', /plugin\/prometheus: address localhost: missing port/],
    ['prometheus {\n    runtime_metrics yes\n  }', /runtime_metrics: takes no arguments/],
    ['prometheus {\n    tls cert.yml\n  }', /Corefile:3 .*plugin\/prometheus: tls is not supported/],
    ['prometheus {\n    exemplars\n  }', /plugin\/prometheus: unknown option: exemplars/],
    ['reload 1s', /plugin\/reload: duration must be at least 2s, got '1s'/],
    ['reload 10s 500ms', /plugin\/reload: jitter value must be 0 or greater or equal to 1s/],
    ['reload 10s 2s 3s', /plugin\/reload: wrong argument count/],
    ['reload often', /plugin\/reload: invalid duration 'often'/],
    ['reload {\n    every 1s\n  }', /plugin\/reload: takes no block/],
  ];
  for (const [directive, want] of cases) {
    const text = `.:0 {\n  ${directive}\n  whoami\n}\n`;
    await t.rejects(loadConfig({ file: 'Corefile', text, plugins, shared: shared() }), want, directive.replace(/\n\s*/g, ' '));
  }
  const good = ['errors stdout {\n    stacktrace\n    consolidate 5m ".* i/o timeout$" warning show_first\n  }', 'log . {combined} {\n    class denial error\n  }',
    'health 127.0.0.1:0 {\n    lameduck 5s\n  }', 'ready 127.0.0.1:0 {\n    monitor continuously\n  }', 'prometheus 127.0.0.1:0 {\n    runtime_metrics\n  }', 'reload 2s 0s'];
  for (const directive of good) {
    const cfg = await loadConfig({ file: 'Corefile', text: `.:0 {\n  ${directive}\n  whoami\n}\n`, plugins, shared: shared() });
    t.pass(directive.replace(/\n\s*/g, ' '));
    await closePlugins(cfg.blocks);
  }
  await t.rejects(loadConfig({ file: 'Corefile', text: '.:0 {\n  prometheus :1\n  prometheus :2\n}\n', plugins, shared: shared() }), /Corefile:3/, 'prometheus once per block');
});

t.test('errors: a throwing or rejecting plugin becomes SERVFAIL and one log line', async (t) => {
  const logs = captureLogs(t);
  const p = new Errors([], false);
  const boom: Next = () => { throw new Error('plugin/kubernetes: store exploded'); };
  const reject: Next = () => Promise.reject(new Error('read udp 127.0.0.1:53: i/o timeout'));
  const ok: Next = () => ({ rcode: 0, plugin: 'whoami' });
  t.same(p.serve(query('Svc.Example.ORG.'), boom), { rcode: RCODE.SERVFAIL });
  t.same(await p.serve(query('a.example.org.', TYPE.AAAA), reject), { rcode: RCODE.SERVFAIL });
  t.same(p.serve(query('b.example.org.'), ok), { rcode: 0, plugin: 'whoami' }, 'answers pass untouched');
  t.same(logs, [
    '[ERROR] plugin/errors: 2 svc.example.org. A: plugin/kubernetes: store exploded',
    '[ERROR] plugin/errors: 2 a.example.org. AAAA: read udp 127.0.0.1:53: i/o timeout',
  ]);
});

t.test('errors consolidate: counts per period, show_first, level; flushed on close', async (t) => {
  const logs = captureLogs(t);
  const cfg = await loadConfig({
    file: 'Corefile', plugins, shared: shared(),
    text: '.:0 {\n  errors {\n    consolidate 200ms "timeout$" warning show_first\n    consolidate 1h "^refused" info\n  }\n  whoami\n}\n',
  });
  const p = cfg.blocks[0]!.plugins.find((x) => x.name === 'errors')!;
  const fail = (msg: string): Next => () => { throw new Error(msg); };
  for (let i = 0; i < 3; i++) p.serve!(query(`t${i}.example.`), fail('read: timeout'));
  p.serve!(query('r.example.'), fail('refused by upstream'));
  p.serve!(query('r2.example.'), fail('refused again'));
  p.serve!(query('x.example.'), fail('something else'));
  t.same(logs, ['[WARNING] plugin/errors: 2 t0.example. A: read: timeout', '[ERROR] plugin/errors: 2 x.example. A: something else'], 'first shown, rest counted');
  await sleep(350);
  t.equal(logs[2], "[WARNING] plugin/errors: 3 errors like 'timeout$' occurred in last 200ms");
  p.serve!(query('t.example.'), fail('one more timeout'));
  await sleep(350);
  t.equal(logs.length, 4, 'a single error with show_first prints no summary');
  await closePlugins(cfg.blocks);
  t.equal(logs[4], "[INFO] plugin/errors: 2 errors like '^refused' occurred in last 1h0m0s", 'pending count printed on close');
  t.equal(logs.length, 5);
  t.equal(errorsDef.once, true);
});

t.test('log: CoreDNS format, classes, first matching rule, a throwing chain is logged as SERVFAIL', async (t) => {
  const out = captureQueryLog(t);
  const nodes = parseFormat(COMMON_FORMAT);
  const soa = { name: 'example.org.', type: TYPE.SOA, ttl: 5, data: { mname: 'ns.example.org.', rname: 'h.example.org.', serial: 1, refresh: 7200, retry: 1800, expire: 86400, minimum: 5 } };
  const msg = (rcode: number, answer: Message['answer'], authority: Message['authority']): Reply => ({
    rcode, plugin: 'file', msg: { id: 0, aa: true, rcode, question: null, answer, authority, additional: [] },
  });
  const answers: Record<string, Reply> = {
    'ok.example.org.': msg(0, [{ name: 'ok.example.org.', type: TYPE.A, ttl: 5, data: '10.0.0.1' }], []),
    'nx.example.org.': msg(RCODE.NXDOMAIN, [], [soa]),
    'nodata.example.org.': msg(0, [], [soa]),
    'fail.example.org.': { rcode: RCODE.SERVFAIL },
    'refused.example.org.': { rcode: RCODE.REFUSED },
  };
  const next: Next = (q) => {
    const a = answers[q.lname];
    if (!a) throw new Error('boom');
    return { ...a, msg: a.msg && { ...a.msg, question: { name: q.name, type: q.type, class: q.class } } };
  };
  // What the server does with a block's answer: render it for the asker, show the bytes to observers.
  const serve = (p: Log, q: Query, chain: Next) => {
    let reply: Reply;
    try {
      reply = chain(q) as Reply;
    } catch {
      reply = { rcode: RCODE.SERVFAIL };
    }
    p.sent(q, renderReply(q, reply, responseLimit(q, q.proto), false), reply);
  };
  const all = new Log([{ zone: '.', format: nodes, classes: new Set() }], logMetrics(createRegistry()));
  for (const n of Object.keys(answers)) serve(all, query(n, TYPE.A, { edns: true }), next);
  serve(all, query('throw.example.org.', TYPE.A, { proto: 'tcp', remote: '::1' }), next);
  t.equal(out.length, 6);
  const line = /^\[INFO\] (\S+):5353 - 4242 "A IN (\S+) (udp|tcp) (\d+) (false|true) (\d+)" ([A-Z]+) ([a-z,]+) (\d+) (\d+(?:\.\d+)?s)$/;
  const parsed = out.map((l) => line.exec(l));
  t.ok(parsed.every(Boolean), `every line in Common Log Format:\n${out.join('\n')}`);
  t.same(parsed.map((m) => [m![2], m![7], m![8]]), [
    ['ok.example.org.', 'NOERROR', 'qr,aa,rd'], ['nx.example.org.', 'NXDOMAIN', 'qr,aa,rd'], ['nodata.example.org.', 'NOERROR', 'qr,aa,rd'],
    ['fail.example.org.', 'SERVFAIL', 'qr,rd'], ['refused.example.org.', 'REFUSED', 'qr,rd'], ['throw.example.org.', 'SERVFAIL', 'qr,rd'],
  ]);
  t.same(parsed[0]!.slice(1, 7).concat(), ['127.0.0.1', 'ok.example.org.', 'udp', String(query('ok.example.org.', TYPE.A, { edns: true }).raw.length), 'false', '4096']);
  t.same([parsed[5]![1], parsed[5]![3], parsed[5]![6]], ['[::1]', 'tcp', '65535'], 'IPv6 in brackets, TCP bufsize 64k');
  // header 12 + question 16+4 + A record (pointer 2 + 10 + 4) + our OPT 11
  t.equal(parsed[0]![9], String(12 + 20 + 16 + 11), 'rsize is the size of what is sent');

  out.length = 0;
  const byClass = (classes: string[]) => new Log([{ zone: 'example.org.', format: parseFormat('{name} {/log/class} {/log/type} {rcode}'), classes: new Set(classes as never[]) }], logMetrics(createRegistry()));
  const run = (p: Log) => { for (const n of Object.keys(answers)) serve(p, query(n), next); };
  run(byClass(['denial']));
  t.same(out, ['[INFO] nx.example.org. denial NXDOMAIN NXDOMAIN', '[INFO] nodata.example.org. denial NODATA NOERROR']);
  out.length = 0;
  run(byClass(['error']));
  t.same(out, ['[INFO] fail.example.org. error SERVERERROR SERVFAIL', '[INFO] refused.example.org. error OTHERERROR REFUSED']);
  out.length = 0;
  run(byClass(['success']));
  t.same(out, ['[INFO] ok.example.org. success NOERROR NOERROR']);
  out.length = 0;
  const scoped = new Log([
    { zone: 'nx.example.org.', format: parseFormat('first {name}'), classes: new Set() },
    { zone: 'example.org.', format: parseFormat('{ {type} } A } {name} {>opcode} {local} {/nope}'), classes: new Set() },
  ], logMetrics(createRegistry()));
  serve(scoped, query('NX.example.org.'), next);
  serve(scoped, query('ok.example.org.'), next);
  serve(scoped, query('ok.example.com.'), () => ({ rcode: 0 }));
  t.same(out, ['[INFO] first nx.example.org.', '[INFO] { A } A } ok.example.org. 0 - -'], 'first matching rule wins; other names are not logged');
});

t.test('ready: until-ready remembers, continuously re-asks; shutting down fails', async (t) => {
  captureLogs(t);
  let states = [{ name: 'kubernetes', ready: false }, { name: 'hosts', ready: false }];
  let stopping = false;
  const sh = shared({ readiness: () => states, shuttingDown: () => stopping });
  const until = new Ready(':0', false, sh);
  const cont = new Ready(':0', true, sh);
  t.same(until.notReady(), ['hosts', 'kubernetes']);
  states = [{ name: 'kubernetes', ready: true }, { name: 'hosts', ready: true }];
  t.same(until.notReady(), []);
  t.same(cont.notReady(), []);
  states = [{ name: 'kubernetes', ready: false }, { name: 'hosts', ready: true }, { name: 'hosts', ready: false }];
  t.same(until.notReady(), [], 'until-ready: once ready, stays ready');
  t.same(cont.notReady(), ['hosts', 'kubernetes'], 'continuously: sorted, a name is ready only when all its instances are');
  stopping = true;
  const res = { code: 0, body: '', writeHead(c: number) { this.code = c; return this; }, end(b: string) { this.body = b; } };
  until.handle({} as never, res as never);
  t.same([res.code, res.body], [503, 'Shutting down']);
});

t.test('reload: polls the file hash, survives a ConfigMap-style symlink swap, tries a broken file once', async (t) => {
  const logs = captureLogs(t);
  const dir = tempDir('reload');
  // Kubernetes layout: Corefile -> ..data/Corefile, ..data -> ..v1 (swapped atomically by renaming a new link).
  mkdirSync(join(dir, '..v1'));
  writeFileSync(join(dir, '..v1', 'Corefile'), '.:0 {\n  whoami\n}\n');
  symlinkSync('..v1', join(dir, '..data'));
  symlinkSync('..data/Corefile', join(dir, 'Corefile'));
  const file = join(dir, 'Corefile');
  const requests: string[] = [];
  const cfg = await loadConfig({ file, text: '.:0 {\n  reload 2s\n  whoami\n}\n', plugins, shared: shared({ requestReload: (r) => requests.push(r) }) });
  const p = cfg.blocks[0]!.plugins[0] as Reload;
  t.ok(p.intervalMs >= 1500 && p.intervalMs <= 2500, `interval with jitter: ${p.intervalMs}`);
  p.start();
  t.match(logs[0], /^\[INFO\] plugin\/reload: Running configuration SHA512 = [0-9a-f]{128}$/);
  t.equal(await p.check(), false, 'unchanged');
  mkdirSync(join(dir, '..v2'));
  writeFileSync(join(dir, '..v2', 'Corefile'), '.:0 {\n  whoami\n  log\n}\n');
  symlinkSync('..v2', join(dir, '..data_tmp'));
  renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  t.equal(await p.check(), true, 'the swap is seen');
  t.equal(requests.length, 1);
  t.equal(logs[1], '[INFO] Reloading');
  t.equal(await p.check(), false, 'the same new content is not reloaded again (even when that reload failed)');
  p.close();
  t.equal(await p.check(), false, 'closed: no more reloads');
  await closePlugins(cfg.blocks);
});
