/** Slim cluster objects for the VIP renderer tests: a ClusterIP Service with one http port and its slice. */
import type { Endpoint, EndpointSlice, Service, ServicePort } from '../../src/cluster/types.js';

export function svc(name: string, o: Partial<Service> & { ports?: ServicePort[] } = {}): Service {
  return {
    namespace: 'default', name, type: 'ClusterIP', clusterIPs: ['10.96.0.10'], headless: false,
    ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080 }], externalIPs: [], loadBalancerIPs: [], loadBalancerIngress: [],
    loadBalancerSourceRanges: [], sessionAffinity: 'None', sessionAffinityTimeout: 10800,
    externalTrafficPolicy: 'Cluster', internalTrafficPolicy: 'Cluster', labels: {}, ...o,
  };
}

export function ep(ip: string, o: Partial<Endpoint> = {}): Endpoint {
  return { addresses: [ip], rawAddresses: [ip], ready: true, serving: true, terminating: false, nodeName: 'other', ...o };
}

export function slice(service: string, endpoints: Endpoint[], o: Partial<EndpointSlice> = {}): EndpointSlice {
  return {
    namespace: 'default', name: `${service}-abc`, service, addressType: 'IPv4', endpoints,
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }], labels: { 'kubernetes.io/service-name': service }, ...o,
  };
}
