/**
 * A pod's search path as kubelet writes it into its resolv.conf: `<ns>.svc.<zone>`, `svc.<zone>`, `<zone>`,
 * then the host's search domains and "" for the name as is (CoreDNS's kubernetes AutoPath).
 */
export function podSearchPath(namespace: string, zone: string, hostSearch: string[]): string[] {
  const suffix = zone === '.' ? '' : zone;
  const cluster = [`${namespace}.svc.${suffix}`, `svc.${suffix}`, zone === '.' ? '.' : zone];
  return [...cluster, ...hostSearch.filter((d) => !cluster.includes(d)), ''];
}
