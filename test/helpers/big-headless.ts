/**
 * Manifests of a headless Service with many ready endpoints (EndpointSlices of 100, as the controller
 * cuts them), each with two named TCP ports: the largest answers a tenant can make the server build.
 * Endpoint i has address 10.(100 + i/65536).(i/256 % 256).(i % 256), so its label is that IP dashed.
 */
export function bigHeadlessManifest(name: string, namespace: string, endpoints: number): string {
  const docs = [
    `apiVersion: v1\nkind: Service\nmetadata: {name: ${name}, namespace: ${namespace}}\nspec:\n  clusterIP: None\n` +
    '  ports: [{name: http, port: 80}, {name: https, port: 443}]',
  ];
  for (let s = 0; s * 100 < endpoints; s++) {
    const eps: string[] = [];
    for (let i = s * 100; i < Math.min(endpoints, s * 100 + 100); i++) {
      eps.push(`  - addresses: [10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}]\n    conditions: {ready: true}`);
    }
    docs.push(`apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: ${name}-${s}\n  namespace: ${namespace}\n` +
      `  labels: {kubernetes.io/service-name: ${name}}\naddressType: IPv4\n` +
      `ports: [{name: http, port: 8080, protocol: TCP}, {name: https, port: 8443, protocol: TCP}]\nendpoints:\n${eps.join('\n')}`);
  }
  return docs.join('\n---\n') + '\n';
}
