import type { FamilyModel, ServicePortModel } from './model.js';

/**
 * Pure: `conntrack -D` argument lists that drop UDP flows the new rules would not route the same way.
 * A UDP "connection" lives as long as the client keeps sending (nf_conntrack_udp_timeout_stream, 120 s), so
 * without this a resolver reusing its source port keeps talking to a removed endpoint (kubernetes#19029).
 * - a UDP port that was deleted, or went from no endpoints to some: every flow to its VIPs and NodePort
 *   (flows created while it had no rules were never DNATed and would bypass the new ones);
 * - an endpoint removed from a UDP port: flows DNATed to it.
 * The first sync after start has no previous state and deletes nothing: the rules left by the previous run
 * still route existing flows correctly.
 */
export function conntrackCleanup(prev: FamilyModel | undefined, next: FamilyModel, changed?: ReadonlySet<string>): string[][] {
  if (!prev) return [];
  // `changed`: the services `next` was rebuilt for (buildModel's reuse); the others' ports are the same objects.
  const removed = changed ? prev.ports.filter((p) => changed.has(p.service)) : prev.ports;
  const added = changed ? next.ports.filter((p) => changed.has(p.service)) : next.ports;
  const nextPorts = new Map(added.map((p) => [portKey(p), p]));
  const out = new Map<string, string[]>();
  const add = (args: string[]) => out.set(args.join(' '), args);

  for (const old of removed) {
    if (old.proto !== 'udp') continue;
    const cur = nextPorts.get(portKey(old));
    if (!cur) {
      if (old.hasEndpoints) flushPort(old, add);
      continue;
    }
    const still = new Set(cur.reachable.map((e) => e.ip));
    for (const ep of old.reachable) {
      if (still.has(ep.ip)) continue;
      for (const vip of vips(old)) add(['-D', '-p', 'udp', '--orig-dst', vip, '--orig-port-dst', String(old.port), '--dst-nat', ep.ip]);
      if (old.nodePort) add(['-D', '-p', 'udp', '--orig-port-dst', String(old.nodePort), '--dst-nat', ep.ip]);
    }
  }
  const prevKeys = new Map(removed.map((p) => [portKey(p), p]));
  for (const cur of added) {
    if (cur.proto !== 'udp' || !cur.hasEndpoints) continue;
    const old = prevKeys.get(portKey(cur));
    if (!old || !old.hasEndpoints) flushPort(cur, add);
  }
  return [...out.keys()].sort().map((k) => out.get(k)!);
}

function portKey(p: ServicePortModel): string {
  return `${p.spn}/${p.proto}`;
}

function vips(p: ServicePortModel): string[] {
  return [p.clusterIP, ...p.externalIPs, ...p.loadBalancerIPs];
}

function flushPort(p: ServicePortModel, add: (args: string[]) => void): void {
  for (const vip of vips(p)) add(['-D', '-p', 'udp', '--orig-dst', vip, '--orig-port-dst', String(p.port)]);
  if (p.nodePort) add(['-D', '-p', 'udp', '--orig-port-dst', String(p.nodePort)]);
}
