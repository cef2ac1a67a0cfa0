/** Zone names as plugins match them: absolute lower-case FQDNs, CIDR arguments turned into reverse zones. */
import { isCidr } from './ip.js';
import { cidrToReverseZones } from './reverse.js';

/** Makes a user-written name absolute and lower-case: "Foo.Bar" -> "foo.bar.". */
export function fqdn(name: string): string {
  if (name === '' || name === '.') return '.';
  const lower = name.toLowerCase();
  return lower.endsWith('.') ? lower : lower + '.';
}

/** True when `name` equals `zone` or lies below it (both lower-case FQDNs). */
export function isSubdomain(name: string, zone: string): boolean {
  if (zone === '.') return true;
  return name === zone || (name.endsWith(zone) && name[name.length - zone.length - 1] === '.');
}

/**
 * Zone arguments of a plugin (`kubernetes cluster.local 10.0.0.0/8`) as zones, duplicates dropped: a CIDR
 * stands for its reverse zones (CoreDNS plugin.Host.NormalizeExact). Throws `invalid CIDR ...` on a bad one.
 */
export function zonesFromArgs(args: readonly string[]): string[] {
  return [...new Set(args.flatMap((a) => (isCidr(a) ? cidrToReverseZones(a) : [fqdn(a)])))];
}

/** The longest of `zones` that holds `name` (CoreDNS plugin.Zones.Matches); undefined when none does. */
export function matchZone(name: string, zones: readonly string[]): string | undefined {
  let best: string | undefined;
  for (const z of zones) if ((best === undefined || z.length > best.length) && isSubdomain(name, z)) best = z;
  return best;
}
