import t from 'tap';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { SUPPORTED_LINES } from '../src/runtime.js';

/** What the package and the images ship, and that the declared runtime, licence and dependencies are true. */
const run = promisify(execFile);
const ROOT = new URL('../', import.meta.url).pathname;
const read = (f: string) => readFileSync(join(ROOT, f), 'utf8');
const pkg = JSON.parse(read('package.json'));

function files(dir: string, ext: RegExp): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' }).filter((f) => ext.test(f)).map((f) => join(dir, f));
}

t.test('LICENSE holds the Apache-2.0 text the package declares', async (t) => {
  t.equal(pkg.license, 'Apache-2.0');
  const text = read('LICENSE');
  t.match(text, /^\s*Apache License\s+Version 2\.0, January 2004/);
  t.match(text, /END OF TERMS AND CONDITIONS/);
});

t.test('every runtime dependency is imported by src/, every dev dependency by the tests or the build', async (t) => {
  const src = files('src', /\.ts$/).map(read).join('\n');
  const dev = [...files('test', /\.ts$/), ...files('bench', /\.ts$/)].map(read).join('\n');
  const imports = (text: string, name: string) => new RegExp(`(from |import\\(|require\\)\\()'${name}(/[^']*)?'`).test(text);
  for (const name of Object.keys(pkg.dependencies)) t.ok(imports(src, name), `${name} imported by src/`);
  t.notOk('dns2' in pkg.dependencies, 'dns2 only checks our wire format in the tests');
  const tooling = ['typescript', 'tap', '@types/node'];
  // Some are imported by a computed name (test/helpers/k8s-schema.ts): a quoted mention is enough.
  const mentioned = (name: string) => new RegExp(`['"\`]${name}(/[^'"\`]*)?['"\`]`).test(dev);
  for (const name of Object.keys(pkg.devDependencies)) t.ok(tooling.includes(name) || mentioned(name), `${name} used by test/ or bench/`);
});

t.test('runtime: engines, .node-version and the supported lines agree', async (t) => {
  const production = read('.node-version').trim();
  t.match(production, /^\d+\.\d+\.\d+$/);
  t.equal(Number(production.split('.')[0]), SUPPORTED_LINES[0], 'the production line is the first supported line');
  const ranges = (pkg.engines.node as string).split('||').map((r) => r.trim());
  t.same(ranges.map((r) => Number(/^\^(\d+)\./.exec(r)?.[1])).sort(), [...SUPPORTED_LINES].sort(), `engines ${pkg.engines.node}`);
  t.ok(ranges.includes('^22.12.0'), 'Node 22 from 22.12 (dgram/net reusePort)');
});

t.test('scripts: no build on install, a build before pack, start builds a fresh clone', async (t) => {
  t.notOk(pkg.scripts.prepare, 'no prepare: npm ci --omit=dev has no tsc');
  t.match(pkg.scripts.prepack, /tsc -p tsconfig\.build\.json/);
  t.match(pkg.scripts.prestart, /test -f dist\/src\/cli\.js \|\| tsc/);
  t.match(pkg.scripts.pretest, /tsc/);
  const build = JSON.parse(read('tsconfig.build.json').replace(/^\s*\/\/.*$/gm, ''));
  t.same(build.include, ['src']);
  t.equal(build.compilerOptions.sourceMap, false, 'no source maps without their sources');
});

t.test('npm pack ships the built src/ and the licence, nothing else', { skip: !existsSync(join(ROOT, 'dist/src/cli.js')) && 'dist/src missing (run tsc -p . first)' }, async (t) => {
  // --ignore-scripts: prepack would rebuild dist/src under the feet of the tests running beside this one.
  const { stdout } = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, maxBuffer: 16 << 20 });
  const packed: string[] = JSON.parse(stdout)[0].files.map((f: { path: string }) => f.path);
  const extra = packed.filter((p) => !/^dist\/src\/.+\.js$/.test(p) && !['LICENSE', 'README.md', 'package.json'].includes(p));
  t.same(extra, [], 'only dist/src/**/*.js, LICENSE, README.md, package.json');
  for (const f of ['LICENSE', 'README.md', 'package.json', pkg.bin.clusterdns]) t.ok(packed.includes(f), `ships ${f}`);
  const missing = files('src', /(?<!\.d)\.ts$/).map((f) => `dist/${relative(ROOT, join(ROOT, f)).replace(/\.ts$/, '.js')}`).filter((f) => !packed.includes(f));
  t.same(missing, [], 'every module of src/ is built and shipped');
});

t.test('Dockerfile: every image from one multi-stage file on the production line; .dockerignore', async (t) => {
  const dockerfile = read('Dockerfile');
  t.equal(/^ARG NODE_VERSION=(\S+)$/m.exec(dockerfile)?.[1], read('.node-version').trim(), 'base image on .node-version');
  const stages = [...dockerfile.matchAll(/^FROM (\S+) AS (\S+)$/gm)].map((m) => [m[1], m[2]]);
  t.same(stages, [['node:${NODE_VERSION}-slim', 'build'], ['node:${NODE_VERSION}-slim', 'runtime'], ['runtime', 'vip'], ['vip', 'nodecache'], ['runtime', 'dns']],
    'build, runtime, then the vip, nodecache and dns images (dns last: the default target)');
  t.equal(dockerfile.match(/^FROM /gm)?.length, stages.length, 'every FROM is a named stage');
  t.match(dockerfile, /RUN npx tsc -p tsconfig\.build\.json && npm prune --omit=dev/);
  t.notMatch(dockerfile, /--ignore-scripts/, 'nothing to skip: no prepare script');
  // Every COPY from the context names a file the .dockerignore lets through.
  const ignore = read('.dockerignore').split('\n').filter((l) => l && !l.startsWith('#'));
  t.equal(ignore[0], '*', 'allow-list');
  const allowed = ignore.filter((l) => l.startsWith('!')).map((l) => l.slice(1).replace(/\/$/, ''));
  for (const m of dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)) {
    for (const f of m[1]!.split(' ')) t.ok(allowed.includes(f), `COPY ${f} is in the build context`);
  }
});
