import { readFileSync } from 'node:fs';
import { matchZone } from '../../pkg/zone.js';
import type { KubernetesPlugin } from './handler.js';

/** Search domains of the server's own resolv.conf: CoreDNS appends them after the cluster ones. */
export function hostSearchDomains(file = '/etc/resolv.conf'): string[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  let search: string[] = [];
  for (const line of text.split('\n')) {
    const [key, ...args] = line.replace(/[#;].*$/, '').trim().split(/\s+/);
    if (key === 'search' || key === 'domain') search = args.filter((d) => d && d !== '.');
  }
  return search.map((d) => d.toLowerCase().replace(/\.?$/, '.'));
}

/**
 * The asking pod's search path, as kubelet wrote it into its resolv.conf: `<ns>.svc.<zone>`, `svc.<zone>`,
 * `<zone>`, the host's search domains, then "" for the name as is. Needs `pods verified` (the pod is found
 * by its IP); undefined when it is not a known pod or the name is not in a cluster zone (CoreDNS's AutoPath).
 */
export function kubernetesSearchPath(k: KubernetesPlugin, remoteAddress: string, lname: string, hostSearch: string[]): string[] | undefined {
  if (k.opts.pods !== 'verified') return undefined;
  const zone = matchZone(lname, k.opts.zones);
  if (!zone) return undefined;
  const pod = k.store.podsByAddress(remoteAddress)[0];
  if (!pod) return undefined;
  const suffix = zone === '.' ? '' : zone;
  const cluster = [`${pod.namespace}.svc.${suffix}`, `svc.${suffix}`, zone === '.' ? '.' : zone];
  return [...cluster, ...hostSearch.filter((d) => !cluster.includes(d)), ''];
}
