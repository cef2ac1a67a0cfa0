import t from 'tap';
import { startServer } from './helpers/server.js';
import { dig } from './helpers/dig.js';
import { startRecorder } from './helpers/recording-upstream.js';

t.test('bufsize: the query relayed upstream carries the lowered EDNS size, never a raised one', async (t) => {
  const rec = await startRecorder();
  t.teardown(() => rec.stop());
  const srv = await startServer(`. {\n    bufsize 1100\n    forward . ${rec.addr}\n}\n`);
  t.teardown(() => srv.stop());
  const rows: [args: string[], want: number | null][] = [
    [['+bufsize=4096'], 1100],
    [['+bufsize=1232'], 1100],
    [['+bufsize=800'], 800],
    [['+noedns'], null],
  ];
  for (const [args, want] of rows) {
    const before = rec.queries.length;
    const r = await dig(srv.port, ['example.org', 'A', ...args]);
    t.equal(r.status, 'NOERROR', `${args}: answered`);
    t.equal(rec.queries.length, before + 1, `${args}: one query upstream`);
    t.equal(rec.queries.at(-1)!.edns?.udpSize ?? null, want, `${args}: upstream sees ${want}`);
  }
});

t.test('bufsize: the response to the client fits the lowered size (TC beyond it)', async (t) => {
  // 40 addresses for one name: about 700 bytes, above 512 and below 1232.
  const hosts = Array.from({ length: 40 }, (_, i) => `        192.0.2.${i + 1} big.example.org`).join('\n');
  const block = (extra: string) => `example.org {\n${extra}    hosts {\n${hosts}\n    }\n}\n`;
  const limited = await startServer(block('    bufsize 512\n'));
  t.teardown(() => limited.stop());
  const plain = await startServer(block(''));
  t.teardown(() => plain.stop());
  const a = await dig(limited.port, ['big.example.org', 'A', '+bufsize=1232', '+ignore']);
  t.ok(a.flags.includes('tc'), 'bufsize 512: truncated');
  t.ok(a.answer.length < 40, `bufsize 512: ${a.answer.length} of 40 records fit`);
  const b = await dig(plain.port, ['big.example.org', 'A', '+bufsize=1232', '+ignore']);
  t.notOk(b.flags.includes('tc'), 'without bufsize: whole answer');
  t.equal(b.answer.length, 40);
  const tcp = await dig(limited.port, ['big.example.org', 'A', '+bufsize=1232', '+tcp']);
  t.equal(tcp.answer.length, 40, 'TCP is not limited');
});

t.test('bufsize: bad config', async (t) => {
  const rows: [string, RegExp][] = [
    ['bufsize 511', /Corefile:2 - Error during setup: plugin\/bufsize: SIZE must be a whole number from 512 to 4096, got '511'/],
    ['bufsize 4097', /SIZE must be a whole number from 512 to 4096, got '4097'/],
    ['bufsize big', /SIZE must be a whole number from 512 to 4096, got 'big'/],
    ['bufsize 1232 4096', /Corefile:2 - Error during setup: plugin\/bufsize: wrong argument count: want \[SIZE\], got 2/],
    ['bufsize {\n        x\n    }', /plugin\/bufsize: takes no block/],
  ];
  for (const [line, re] of rows) await t.rejects(startServer(`. {\n    ${line}\n    whoami\n}\n`), re, line);
  const ok = await startServer('. {\n    bufsize\n    whoami\n}\n');
  t.teardown(() => ok.stop());
  const r = await dig(ok.port, ['example.org', 'A']);
  t.equal(r.status, 'NOERROR', 'bufsize alone (1232) loads');
});
