import * as k8s from '@kubernetes/client-node';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { LineCounter, parseAllDocuments, type Document } from 'yaml';

/**
 * Offline validation of manifests against the Kubernetes API schemas, as `kubectl apply --validate=strict`
 * would do server-side: types, formats, enums and required fields from the OpenAPI schemas compiled into
 * `kubernetes-models` (and its prometheus-operator CRD models), plus unknown fields, which those schemas
 * let through, checked against the field lists of `@kubernetes/client-node`'s generated models.
 */

export interface Manifest {
  /** Path relative to the repository, e.g. `deploy/deployment.yaml`. */
  file: string;
  doc: Document;
  lines: LineCounter;
  object: { apiVersion: string; kind: string; metadata: { name: string; [k: string]: unknown }; [k: string]: unknown };
}

/** Every YAML document under `dir` (recursively), with what is needed to report `file:line`. */
export function loadManifests(dir: string, root = process.cwd()): Manifest[] {
  const out: Manifest[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...loadManifests(path, root));
    if (!entry.isFile() || !/\.ya?ml$/.test(entry.name)) continue;
    const lines = new LineCounter();
    const file = relative(root, path);
    for (const doc of parseAllDocuments(readFileSync(path, 'utf8'), { lineCounter: lines })) {
      if (doc.errors.length) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join('; ')}`);
      const object = doc.toJS() as Manifest['object'] | null;
      if (object) out.push({ file, doc, lines, object });
    }
  }
  return out;
}

/** `file:line` of the node at a JSON pointer (`/spec/template/...`), or of the closest existing parent. */
export function where(m: Manifest, pointer: string): string {
  const path = pointer.split('/').slice(1).map((p) => (/^\d+$/.test(p) ? Number(p) : p.replace(/~1/g, '/').replace(/~0/g, '~')));
  for (let n = path.length; n >= 0; n--) {
    const node = m.doc.getIn(path.slice(0, n), true) as { range?: [number, number, number] } | undefined;
    if (node?.range) return `${m.file}:${m.lines.linePos(node.range[0]).line}`;
  }
  return m.file;
}

type ModelClass = new (data: unknown) => { validate(): void };

/** The kubernetes-models class for an apiVersion/kind; CRDs of prometheus-operator come from their own package. */
async function modelFor(apiVersion: string, kind: string): Promise<ModelClass | undefined> {
  const group = apiVersion.includes('/') ? apiVersion.split('/')[0] : '';
  const pkg = group === 'monitoring.coreos.com' ? '@kubernetes-models/prometheus-operator' : 'kubernetes-models';
  try {
    const mod = (await import(`${pkg}/${apiVersion}/${kind}`)) as Record<string, ModelClass>;
    return mod[kind];
  } catch {
    return undefined;
  }
}

interface Attribute { name: string; baseName: string; type: string }
type Generated = { getAttributeTypeMap(): Attribute[] };
const generated = k8s as unknown as Record<string, Generated | undefined>;

/** Fields of `value` that the generated model `type` (e.g. `V1Deployment`, `Array<V1Container>`) does not declare. */
function unknownFields(value: unknown, type: string, pointer: string, out: string[]): void {
  if (value === null || value === undefined) return;
  const array = /^Array<(.+)>$/.exec(type);
  if (array) {
    if (Array.isArray(value)) value.forEach((v, i) => unknownFields(v, array[1]!, `${pointer}/${i}`, out));
    return;
  }
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map) {
    if (typeof value === 'object') for (const [k, v] of Object.entries(value)) unknownFields(v, map[1]!, `${pointer}/${k}`, out);
    return;
  }
  const model = generated[type];
  if (!model?.getAttributeTypeMap || typeof value !== 'object' || Array.isArray(value)) return;
  const attrs = new Map(model.getAttributeTypeMap().map((a) => [a.baseName, a.type]));
  for (const [k, v] of Object.entries(value)) {
    const t = attrs.get(k);
    if (t === undefined) out.push(`${pointer}/${k}`);
    else unknownFields(v, t, `${pointer}/${k}`, out);
  }
}

/** Problems of one manifest, each `file:line: message`; empty when the API server would accept it. */
export async function validateManifest(m: Manifest): Promise<string[]> {
  const { apiVersion, kind } = m.object;
  const Model = await modelFor(apiVersion, kind);
  if (!Model) return [`${m.file}: no schema for ${apiVersion} ${kind}`];
  const problems: string[] = [];
  try {
    new Model(m.object).validate();
  } catch (e) {
    const err = e as Error & { errors?: { instancePath: string; message?: string }[] };
    for (const d of err.errors ?? [{ instancePath: '', message: err.message }]) {
      problems.push(`${where(m, d.instancePath)}: ${kind} ${m.object.metadata.name}: ${d.instancePath || '/'} ${d.message}`);
    }
  }
  // client-node names core and built-in group models V1Deployment, V1ClusterRole, ...; CRDs have none.
  const version = apiVersion.split('/').pop()!;
  const type = `${version[0]!.toUpperCase()}${version.slice(1)}${kind}`;
  if (generated[type]) {
    const unknown: string[] = [];
    unknownFields(m.object, type, '', unknown);
    for (const p of unknown) problems.push(`${where(m, p)}: ${kind} ${m.object.metadata.name}: unknown field "${p.slice(1).replace(/\//g, '.')}"`);
  }
  return problems;
}
