/**
 * A CoreDNS ConfigMap as `kubectl get configmap coredns -n kube-system -o yaml` (or `-o json`) prints it,
 * read as the Corefile it holds, so that `clusterdns check` reports problems at the line of the file the
 * operator has in front of them.
 */
import { isMap, isScalar, LineCounter, parseDocument, Scalar } from 'yaml';

/** The key CoreDNS's Deployment mounts as /etc/coredns/Corefile (kubeadm and CoreDNS's reference manifests). */
export const COREFILE_KEY = 'Corefile';

export interface ConfigMapCorefile {
  /** `namespace/name` of the ConfigMap. */
  name: string;
  /**
   * The Corefile, its lines aligned with the ConfigMap file when the value is a literal block (`|`), as
   * kubectl prints it: blank lines stand in for everything above the block, so parse errors carry the
   * ConfigMap file's own line numbers.
   */
  text: string;
  /** File name for errors: the ConfigMap file itself when lines are aligned, else `FILE#Corefile` (lines of the value). */
  file: string;
  /** 1-based lines of the ConfigMap file that hold the Corefile, when aligned. */
  lines?: [number, number];
}

/**
 * The Corefile of a ConfigMap document, `undefined` when `text` is not a ConfigMap (a plain Corefile is
 * neither YAML nor JSON of kind ConfigMap). Throws when it is a ConfigMap without a usable Corefile.
 */
export function corefileFromConfigMap(text: string, file: string): ConfigMapCorefile | undefined {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter });
  if (doc.errors.length || !isMap(doc.contents) || doc.get('kind') !== 'ConfigMap') return undefined;
  const meta = doc.get('metadata');
  const name = isMap(meta) ? `${meta.get('namespace') ?? 'default'}/${meta.get('name') ?? '?'}` : '?';
  const data = doc.get('data');
  const node = isMap(data) ? data.get(COREFILE_KEY, true) : undefined;
  if (!isScalar(node) || typeof node.value !== 'string') {
    const keys = isMap(data) ? data.items.map((p) => String(isScalar(p.key) ? p.key.value : p.key)) : [];
    const at = isMap(data) && data.range ? `:${lineCounter.linePos(data.range[0]).line}` : '';
    throw new Error(`${file}${at}: ConfigMap ${name} has no data.${COREFILE_KEY} (keys: ${keys.join(', ') || 'none'})`);
  }
  const value = node.value;
  if (node.type === Scalar.BLOCK_LITERAL && node.range) {
    // The block's content starts on the line after its `|` header, one value line per file line.
    const first = lineCounter.linePos(node.range[0]).line + 1;
    const count = value.split('\n').length - (value.endsWith('\n') ? 1 : 0);
    return { name, text: '\n'.repeat(first - 1) + value, file, lines: [first, first + count - 1] };
  }
  // Quoted or folded values (kubectl writes a quoted string when a line has trailing blanks): no line-for-line map.
  return { name, text: value, file: `${file}#${COREFILE_KEY}` };
}
