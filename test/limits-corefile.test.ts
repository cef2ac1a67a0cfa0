import t from 'tap';
import { writeFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseCorefile, CorefileError } from '../src/corefile/index.js';
import { MAX_TOKENS } from '../src/corefile/parser.js';
import { dig } from './helpers/dig.js';
import { startServer } from './helpers/server.js';

/** Corefiles that expand without bound: nested snippets, imports of devices. Each gets a clear error, fast. */

/** ~2.7 KB: eight levels of snippets, each importing the one below ten times (10^8 directives if expanded). */
function snippetBomb(): string {
  const out = ['(s0) {\n  whoami\n}'];
  for (let l = 1; l <= 8; l++) out.push(`(s${l}) {\n${Array(10).fill(`  import s${l - 1}`).join('\n')}\n}`);
  return `${out.join('\n')}\n.:53 {\n  import s8\n}\n`;
}

t.test('nested snippet imports: a clear error naming file:line, in bounded time and memory', async (t) => {
  const text = snippetBomb();
  t.ok(text.length < 3000, `${text.length} bytes`);
  const rss = process.memoryUsage().rss;
  const t0 = performance.now();
  const err = (() => { try { parseCorefile(text, '/etc/coredns/Corefile'); } catch (e) { return e; } return undefined; })();
  const ms = performance.now() - t0;
  t.type(err, CorefileError);
  t.match((err as Error).message, new RegExp(`^/etc/coredns/Corefile:\\d+ - .*(maximum snippet import depth|grows past ${MAX_TOKENS} tokens)`));
  t.ok(ms < 2000, `failed after ${ms.toFixed(0)} ms (was 18 s)`);
  t.ok(process.memoryUsage().rss - rss < 100 << 20, `RSS grew ${((process.memoryUsage().rss - rss) >> 20)} MB (was 658 MB)`);
});

t.test('import of a device or an oversized file: refused at once', async (t) => {
  for (const [path, why] of [['/dev/zero', /not a regular file/], ['/dev/null', /not a regular file/]] as const) {
    const t0 = performance.now();
    t.throws(() => parseCorefile(`.:53 {\n  whoami\n  import ${path}\n}\n`, '/tmp/Corefile'), { message: new RegExp(`^/tmp/Corefile:3 - .*Could not import ${path}: .*`) });
    t.throws(() => parseCorefile(`import ${path}\n`, '/tmp/Corefile'), why);
    t.ok(performance.now() - t0 < 500, `${path}: ${(performance.now() - t0).toFixed(0)} ms`);
  }
});

t.test('a reload with an expanding Corefile fails with file:line while DNS keeps answering', async (t) => {
  const s = await startServer(`example.org {\n  whoami\n}\n`);
  t.teardown(() => s.stop());
  writeFileSync(s.corefile, snippetBomb().replace('.:53', 'example.org'));
  const h = monitorEventLoopDelay({ resolution: 10 });
  h.enable();
  const answering = dig(s.port, ['example.org']);
  const t0 = performance.now();
  const ok = await s.server.reload();
  t.comment(`reload failed after ${(performance.now() - t0).toFixed(0)} ms`);
  h.disable();
  t.equal(ok, false, 'the reload is refused');
  t.equal((await answering).status, 'NOERROR', 'a query sent during the reload is answered');
  t.ok(h.max / 1e6 < 1000, `longest event-loop stall during the reload ${(h.max / 1e6).toFixed(0)} ms`);
  t.equal((await dig(s.port, ['example.org'])).status, 'NOERROR', 'the last good config keeps serving');
});
