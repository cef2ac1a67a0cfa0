import { createHash } from 'node:crypto';
import { lstat, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { Composer, LineCounter, Parser } from 'yaml';
import { ConvertError, endpointsToSlices, toEndpointSlice, toNamespace, toPod, toService } from './convert.js';
import type { ClusterSource } from './source.js';
import type { ClusterStore } from './store.js';
import type { EndpointSlice, Namespace, Pod, Service, Snapshot } from './types.js';

export interface ManifestOptions {
  /** Poll interval; ConfigMap volumes change by swapping a symlink, which no single-file watch sees. */
  intervalMs?: number;
  /** Problems with a document or file (already carrying file and document index). */
  warn?: (msg: string) => void;
}

/** Objects one document produced; kept so that a document that turns bad keeps serving its last good objects. */
interface DocObjects {
  services: Service[];
  slices: EndpointSlice[];
  namespaces: Namespace[];
  pods: Pod[];
}

const NAME_LABEL = 'kubernetes.io/metadata.name';

const emptyDoc = (): DocObjects => ({ services: [], slices: [], namespaces: [], pods: [] });

/** Kinds that carry nothing DNS or the VIP programmer reads (Deployments, ConfigMaps, ...) are skipped silently. */
function convertItem(item: unknown, into: DocObjects): void {
  if (typeof item !== 'object' || item === null || Array.isArray(item)) {
    throw new ConvertError('document', '', `want a Kubernetes object, got ${JSON.stringify(item)}`);
  }
  const o = item as Record<string, unknown>;
  const kind = o.kind, apiVersion = o.apiVersion;
  if (typeof kind !== 'string') throw new ConvertError('object', 'kind', 'missing');
  switch (kind) {
    case 'Service':
      into.services.push(toService(o));
      return;
    case 'EndpointSlice':
      if (apiVersion !== 'discovery.k8s.io/v1') {
        throw new ConvertError('EndpointSlice', 'apiVersion', `want discovery.k8s.io/v1, got ${JSON.stringify(apiVersion)}`);
      }
      into.slices.push(toEndpointSlice(o));
      return;
    case 'Endpoints':
      into.slices.push(...endpointsToSlices(o));
      return;
    case 'Namespace':
      into.namespaces.push(toNamespace(o));
      return;
    case 'Pod': {
      const p = toPod(o);
      if (p) into.pods.push(p);
      return;
    }
    case 'List':
      if (!Array.isArray(o.items)) throw new ConvertError('List', 'items', 'want a list');
      o.items.forEach((it, i) => {
        try {
          convertItem(it, into);
        } catch (e) {
          throw new ConvertError(`items[${i}]`, '', (e as Error).message);
        }
      });
      return;
  }
}

type Doc = { js: unknown; line?: number } | { error: string; line?: number };

/**
 * Aliases are legal YAML (`labels: *common`), but nested ones expand exponentially ("billion laughs"). The
 * yaml library counts each alias use times the nodes it brings in; past this a document is an error.
 */
export const MAX_ALIAS_EXPANSION = 10_000;
/** A file is read whole and its JSON parsed in one call: bigger files are refused (last good objects stay). */
export const MAX_FILE_BYTES = 64 << 20;
/** Parsing gives the event loop back this often, so queries and probes are answered during a large load. */
const SLICE_MS = 20;

/**
 * The documents of one file, one at a time (the caller yields to the event loop between them). JSON goes
 * through JSON.parse: the YAML parser builds a full syntax tree, which for a 10k-Service snapshot meant
 * seconds per change and a gigabyte of heap.
 */
function* documents(file: string, text: string): Generator<Doc> {
  if (/\.json$/i.test(file) || /^\s*[[{]/.test(text)) {
    try {
      yield { js: JSON.parse(text), line: 1 };
      return;
    } catch {
      // Not strict JSON (flow-style YAML, or a syntax error): the YAML parser, a JSON superset, says where.
    }
  }
  // Streamed document by document; lines are found by binary search over the newlines the parser saw.
  const lines = new LineCounter();
  const lineOf = (offset: number | undefined) => (offset === undefined ? undefined : lines.linePos(offset).line);
  const composer = new Composer({ prettyErrors: false });
  for (const doc of composer.compose(new Parser(lines.addNewLine).parse(text))) {
    const err = doc.errors[0];
    if (err) {
      yield { error: err.message.split('\n')[0]!, line: lineOf(err.pos?.[0]) };
      continue;
    }
    try {
      yield { js: doc.toJS({ maxAliasCount: MAX_ALIAS_EXPANSION }), line: lineOf(doc.range?.[0]) };
    } catch (e) {
      // Excessive alias expansion, an alias before its anchor: this document is bad, the others are not.
      yield { error: (e as Error).message, line: lineOf(doc.range?.[0]) };
    }
  }
}

async function listFiles(path: string): Promise<string[]> {
  const st = await stat(path);
  if (!st.isDirectory()) return [path];
  const out: string[] = [];
  for (const name of (await readdir(path)).sort()) {
    // `..data` and `..2024_...` are the ConfigMap volume's own bookkeeping: the real files link into them.
    if (name.startsWith('.') || !/\.(ya?ml|json)$/i.test(name)) continue;
    const full = join(path, name);
    // A dangling link is a swap in progress: listed, so that its unreadable content keeps the last good objects.
    const st = await stat(full).catch(() => null);
    if (st ? st.isFile() : (await lstat(full).catch(() => null))?.isSymbolicLink()) out.push(full);
  }
  return out;
}

/**
 * The embedded default source: a YAML file (multi-document or `kind: List`) or a directory of
 * `*.yaml|*.yml|*.json`, polled by content hash. Namespaces that objects use but no document declares
 * are created implicitly. A bad document is reported (file, document index, field) and skipped; what it
 * produced the last time it was good keeps serving.
 */
export class ManifestSource implements ClusterSource {
  readonly description: string;
  private readonly intervalMs: number;
  private readonly warn: (msg: string) => void;
  private timer: NodeJS.Timeout | null = null;
  private lastHash = '';
  private lastStamp = '';
  private lastGood = new Map<string, DocObjects>();
  private running: Promise<boolean> | null = null;
  private store: ClusterStore | null = null;
  /** Problems found by the most recent load, as reported. */
  problems: string[] = [];

  constructor(readonly path: string, opts: ManifestOptions = {}) {
    this.description = `manifests ${path}`;
    this.intervalMs = opts.intervalMs ?? 1000;
    this.warn = opts.warn ?? (() => {});
  }

  async start(store: ClusterStore): Promise<void> {
    this.store = store;
    await this.poll();
    this.timer = setInterval(() => void this.poll(), this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
    this.store = null;
  }

  /** Reads PATH and applies it if its content changed; true when the store was updated. */
  poll(): Promise<boolean> {
    if (!this.running) {
      this.running = this.load().catch((e: Error) => {
        // Whatever a file holds must never take the process down: report it, keep serving the last good data.
        const msg = `loading ${this.path} failed: ${e.message}; keeping the last good objects`;
        this.warn(msg);
        this.problems = [msg];
        this.lastHash = '';
        return false;
      }).finally(() => { this.running = null; });
    }
    return this.running;
  }

  private async load(): Promise<boolean> {
    const store = this.store;
    if (!store) return false;
    let files: { file: string; text: string | null; tooBig?: number }[];
    try {
      const names = await listFiles(this.path);
      // Reading and hashing megabytes every second costs the query path CPU: compare stat() first and
      // read only when a file was replaced (inode: ConfigMap swaps), resized or touched.
      const stamps = await Promise.all(names.map((f) => stat(f).then((st) => `${f}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`, () => `${f}:gone`)));
      const stamp = stamps.join('|');
      if (stamp === this.lastStamp && store.synced) return false;
      this.lastStamp = stamp;
      files = await Promise.all(names.map(async (file) => {
        const size = await stat(file).then((st) => st.size, () => 0);
        if (size > MAX_FILE_BYTES) return { file, text: null, tooBig: size };
        return { file, text: await readFile(file, 'utf8').catch(() => null) };
      }));
    } catch (e) {
      const msg = `cannot read ${this.path}: ${(e as Error).message}; keeping the last good objects`;
      if (this.problems[0] !== msg) this.warn(msg);
      this.problems = [msg];
      return false;
    }
    const hash = createHash('sha256');
    for (const f of files) hash.update(f.file).update('\0').update(f.text ?? '\u0001unreadable').update('\0');
    const digest = hash.digest('hex');
    if (digest === this.lastHash && store.synced) return false;
    this.lastHash = digest;

    const problems: string[] = [];
    const good = new Map<string, DocObjects>();
    const keep = (prefix: string) => {
      for (const [k, v] of this.lastGood) if (k.startsWith(prefix)) good.set(k, v);
    };
    let slice = performance.now();
    for (const { file, text, tooBig } of files) {
      if (text === null) {
        problems.push(tooBig
          ? `${file}: ${tooBig} bytes, more than the ${MAX_FILE_BYTES} a manifest file may hold; keeping its last good objects`
          : `${file}: cannot read; keeping its last good objects`);
        keep(`${file}#`);
        continue;
      }
      let i = -1;
      for (const doc of documents(file, text)) {
        i++;
        if (performance.now() - slice > SLICE_MS) {
          await nextTurn();
          slice = performance.now();
          if (this.store !== store) return false;
        }
        const key = `${file}#${i}`;
        const where = `${file}: document ${i + 1}`;
        const at = (line: number | undefined) => (line === undefined ? '' : ` (line ${line})`);
        if ('error' in doc) {
          problems.push(`${where}${at(doc.line)}: ${doc.error}`);
          if (this.lastGood.has(key)) good.set(key, this.lastGood.get(key)!);
          continue;
        }
        if (doc.js === null || doc.js === undefined) continue;
        const objs = emptyDoc();
        try {
          convertItem(doc.js, objs);
          good.set(key, objs);
        } catch (e) {
          problems.push(`${where}${at(doc.line)}: ${(e as Error).message}`);
          if (this.lastGood.has(key)) good.set(key, this.lastGood.get(key)!);
        }
      }
    }
    this.lastGood = good;
    const snap = this.snapshot(good, problems);
    for (const p of problems) if (!this.problems.includes(p)) this.warn(p);
    this.problems = problems;
    store.replace(snap);
    store.synced = true;
    return true;
  }

  private snapshot(docs: Map<string, DocObjects>, problems: string[]): Snapshot {
    const services = new Map<string, Service>();
    const slices = new Map<string, EndpointSlice>();
    const namespaces = new Map<string, Namespace>();
    const pods = new Map<string, Pod>();
    const put = <T extends { name: string }>(m: Map<string, T>, key: string, o: T, what: string) => {
      if (m.has(key)) problems.push(`duplicate ${what} ${key}: the later document wins`);
      m.set(key, o);
    };
    for (const d of docs.values()) {
      // The API server labels every namespace with its name; selectors (namespace_labels) rely on it.
      for (const n of d.namespaces) put(namespaces, n.name, { ...n, labels: { ...n.labels, [NAME_LABEL]: n.name } }, 'Namespace');
      for (const s of d.services) put(services, `${s.namespace}/${s.name}`, s, 'Service');
      for (const s of d.slices) put(slices, `${s.namespace}/${s.name}`, s, 'EndpointSlice');
      for (const p of d.pods) put(pods, `${p.namespace}/${p.name}`, p, 'Pod');
    }
    const used = [...services.values(), ...slices.values(), ...pods.values()].map((o) => o.namespace);
    for (const ns of used) if (!namespaces.has(ns)) namespaces.set(ns, { name: ns, labels: { [NAME_LABEL]: ns } });
    return {
      services: [...services.values()], slices: [...slices.values()], namespaces: [...namespaces.values()], pods: [...pods.values()],
    };
  }
}
