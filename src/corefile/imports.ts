/** File access for `import PATTERN`: Go filepath.Glob semantics restricted to what CoreDNS allows. */
import { closeSync, fstatSync, lstatSync, openSync, readdirSync, readFileSync } from 'node:fs';
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

/** Largest Corefile or imported file; the kubeadm Corefile is under 1 KB. */
export const MAX_FILE_BYTES = 1 << 20;

/**
 * Reads a Corefile or an imported file: a regular file of at most MAX_FILE_BYTES. `import /dev/zero` (or a
 * FIFO, or a glob that catches a log file) fails at once instead of reading forever.
 */
export function readConfigFile(path: string): string {
  const fd = openSync(path, 'r');
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) throw new Error('is a directory');
    if (!st.isFile()) throw new Error('not a regular file');
    if (st.size > MAX_FILE_BYTES) throw new Error(`${st.size} bytes, more than the ${MAX_FILE_BYTES} a Corefile may hold`);
    const text = readFileSync(fd, 'utf8');
    if (text.length > MAX_FILE_BYTES) throw new Error(`grew past the ${MAX_FILE_BYTES} bytes a Corefile may hold while read`);
    return text;
  } finally {
    closeSync(fd);
  }
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
