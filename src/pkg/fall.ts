/** Where a plugin passes a miss on to the next plugin (CoreDNS plugin/pkg/fall). */
import { isSubdomain, zonesFromArgs } from './zone.js';

export class Fall {
  /** No `fallthrough` line: every miss is answered. */
  static readonly never = new Fall(null);
  /** `fallthrough` alone: every miss passes on. */
  static readonly always = new Fall(['.']);

  private constructor(
    /** Zones whose misses pass on (lower-case FQDNs); null when none do. */
    readonly zones: readonly string[] | null,
  ) {}

  /** `fallthrough [ZONES...]`: a CIDR stands for its reverse zones; throws `invalid CIDR ...` on a bad one. */
  static fromArgs(args: readonly string[]): Fall {
    return args.length === 0 ? Fall.always : new Fall(zonesFromArgs(args));
  }

  /** Whether a miss for `name` (lower-case FQDN) passes on. */
  through(name: string): boolean {
    return this.zones !== null && this.zones.some((z) => isSubdomain(name, z));
  }
}
