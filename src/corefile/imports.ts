/** File access for `import PATTERN`: Go filepath.Glob semantics restricted to what CoreDNS allows. */
import { lstatSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, parse, resolve, sep } from 'node:path';

/** CoreDNS refuses patterns with several wildcards or a character class: they could take too long (coredns#2096). */
export function globProblem(pattern: string): string | undefined {
  const count = (c: string) => pattern.split(c).length - 1;
  if (count('*') > 1 || count('?') > 1 || (pattern.includes('[') && pattern.includes(']'))) {
    return `Glob pattern may only contain one wildcard (*), but has others: ${pattern}`;
  }
  return undefined;
}

export function hasWildcard(pattern: string): boolean {
  return pattern.includes('*') || pattern.includes('?');
}

/** Existing paths matching `pattern`, sorted per directory like Go's Glob; `*` and `?` never match `/` but do match a leading dot. */
export function globFiles(pattern: string): string[] {
  const abs = resolve(pattern);
  const root = parse(abs).root;
  let paths = [root];
  for (const segment of abs.slice(root.length).split(sep).filter((s) => s !== '')) {
    if (!hasWildcard(segment)) {
      paths = paths.map((p) => join(p, segment));
      continue;
    }
    const re = segmentRegExp(segment);
    const next: string[] = [];
    for (const dir of paths) {
      for (const name of listDir(dir).sort()) if (re.test(name)) next.push(join(dir, name));
    }
    paths = next;
  }
  return paths.filter(exists);
}

export function readImportFile(path: string): string {
  if (statSync(path).isDirectory()) throw new Error('is a directory');
  return readFileSync(path, 'utf8');
}

function segmentRegExp(segment: string): RegExp {
  const body = [...segment]
    .map((c) => (c === '*' ? '[^/]*' : c === '?' ? '[^/]' : c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${body}$`, 'u');
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}
