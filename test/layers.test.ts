import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/**
 * The layer order of src/ (issue 13), read from the imports themselves: static, dynamic, type-only and
 * `createRequire` ones alike, since each is a dependency a reader must follow.
 *   pkg <- corefile <- cluster <- server <- plugins <- entry points (src/*.ts: cli.ts and what it runs first; resolve/, nodecache/)
 *   vip imports only pkg and cluster (the entry point starts it).
 */
const SRC = fileURLToPath(new URL('../src/', import.meta.url));

const ORDER = ['pkg', 'corefile', 'cluster', 'server', 'plugins', 'entry'] as const;
type Layer = (typeof ORDER)[number] | 'vip';

function layerOf(file: string): Layer | undefined {
  const rel = relative(SRC, file);
  if (!rel.includes('/') || rel.startsWith('resolve/') || rel.startsWith('nodecache/')) return 'entry';
  const top = rel.split('/')[0]!;
  return top === 'vip' || (ORDER as readonly string[]).includes(top) ? (top as Layer) : undefined;
}

function mayImport(from: Layer, to: Layer): boolean {
  if (from === to || from === 'entry') return true;
  if (from === 'vip') return to === 'pkg' || to === 'cluster';
  if (to === 'vip' || to === 'entry') return false;
  return ORDER.indexOf(to) < ORDER.indexOf(from);
}

interface Import { spec: string; line: number }

/** Every module specifier a file names: import/export declarations, import(), import types, require. */
function importsOf(file: string): Import[] {
  const sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const out: Import[] = [];
  const add = (node: ts.Node | undefined) => {
    if (node && ts.isStringLiteralLike(node)) out.push({ spec: node.text, line: sf.getLineAndCharacterOfPosition(node.getStart()).line + 1 });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) add(node.moduleSpecifier);
    else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) add(node.moduleReference.expression);
    else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) add(node.argument.literal);
    else if (ts.isCallExpression(node) && node.arguments.length >= 1) {
      const callee = node.expression;
      const isImport = callee.kind === ts.SyntaxKind.ImportKeyword;
      const isRequire = (ts.isIdentifier(callee) && callee.text === 'require') ||
        (ts.isCallExpression(callee) && ts.isIdentifier(callee.expression) && callee.expression.text === 'createRequire');
      if (isImport || isRequire) add(node.arguments[0]);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

const files = readdirSync(SRC, { recursive: true, encoding: 'utf8' })
  .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts')).map((f) => join(SRC, f)).sort();

/** Relative specifiers resolved to the .ts file they name (sources import the built `.js` name). */
function target(from: string, spec: string): string | undefined {
  if (!spec.startsWith('.')) return undefined;
  return resolve(dirname(from), spec).replace(/\.js$/, '.ts');
}

const graph = new Map<string, { to: string; line: number }[]>();
const external: { file: string; spec: string; line: number }[] = [];
for (const f of files) {
  const edges: { to: string; line: number }[] = [];
  for (const imp of importsOf(f)) {
    const to = target(f, imp.spec);
    if (to) edges.push({ to, line: imp.line });
    else external.push({ file: f, spec: imp.spec, line: imp.line });
  }
  graph.set(f, edges);
}

const where = (file: string, line: number) => `src/${relative(SRC, file)}:${line}`;

t.test('the import reader sees every kind of import', async (t) => {
  const f = join(SRC, 'server/types.ts');
  t.ok(importsOf(f).some((i) => i.spec === 'node:http'), 'import type node (import("node:http").X)');
  t.ok(importsOf(join(SRC, 'cli.ts')).some((i) => i.spec === './vip/cli.js'), 'dynamic import()');
  t.ok(files.length > 50, `${files.length} files read`);
});

t.test('every file of src/ belongs to a layer', async (t) => {
  t.same(files.filter((f) => !layerOf(f)).map((f) => relative(SRC, f)), []);
});

t.test('layer order: pkg <- corefile <- cluster <- server <- plugins <- entry points; vip on pkg and cluster', async (t) => {
  const bad: string[] = [];
  for (const [from, edges] of graph) {
    for (const { to, line } of edges) {
      const [a, b] = [layerOf(from)!, layerOf(to)];
      if (!b) bad.push(`${where(from, line)} imports ${relative(SRC, to)}, which belongs to no layer`);
      else if (!mayImport(a, b)) bad.push(`${where(from, line)}: ${a} imports ${b} (src/${relative(SRC, to)})`);
    }
  }
  t.same(bad, [], 'no import reaches up or sideways');
});

t.test('every relative import names an existing file', async (t) => {
  const missing = [...graph].flatMap(([from, edges]) => edges.filter((e) => !graph.has(e.to)).map((e) => `${where(from, e.line)} -> ${e.to}`));
  t.same(missing, []);
});

t.test('no file-level import cycles (type-only imports count)', async (t) => {
  // Tarjan's strongly connected components: any component of two or more files is a cycle.
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const strong = (v: string): void => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const { to } of graph.get(v) ?? []) {
      if (!graph.has(to)) continue;
      if (!idx.has(to)) {
        strong(to);
        low.set(v, Math.min(low.get(v)!, low.get(to)!));
      } else if (onStack.has(to)) {
        low.set(v, Math.min(low.get(v)!, idx.get(to)!));
      }
    }
    if (low.get(v) !== idx.get(v)) return;
    const scc: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      scc.push(relative(SRC, w));
    } while (w !== v);
    if (scc.length > 1 || (graph.get(v) ?? []).some((e) => e.to === v)) cycles.push(scc.sort());
  };
  for (const f of files) if (!idx.has(f)) strong(f);
  t.same(cycles, []);
});

t.test("no dependency's internal paths (lib/, dist/): they break when the package adds an exports map", async (t) => {
  const internal = external.filter(({ spec }) => {
    if (spec.startsWith('node:')) return false;
    const parts = spec.split('/');
    const sub = parts.slice(spec.startsWith('@') ? 2 : 1);
    return sub.some((p) => p === 'lib' || p === 'dist');
  }).map(({ file, spec, line }) => `${where(file, line)}: ${spec}`);
  t.same(internal, []);
});
