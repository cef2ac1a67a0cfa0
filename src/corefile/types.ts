/** The Corefile syntax tree. The parser knows no plugin: every directive is a name, its arguments and an optional block. */

export interface Directive {
  name: string;
  args: string[];
  /** Lines of a `{ ... }` block opened at the end of the directive line; nested blocks nest here. */
  children: Directive[];
  file: string;
  line: number;
}

export interface ServerBlock {
  /** Keys as written after env/import expansion, e.g. `cluster.local:53`, `dns://.:1053`, `10.0.0.0/24`. */
  keys: string[];
  directives: Directive[];
  file: string;
  line: number;
}

export interface Corefile {
  file: string;
  blocks: ServerBlock[];
}

/** A parsed server-block key: one key can stand for several zones (CIDR keys expand to reverse zones). */
export interface ServerAddress {
  scheme: 'dns' | 'tls' | 'grpc' | 'https' | 'quic' | 'https3';
  /** Lower-case FQDN zones, e.g. `cluster.local.`, `0.10.in-addr.arpa.`, `.`. */
  zones: string[];
  /** Port as written, or null when the key names none (then `-dns.port` / scheme default applies). */
  port: number | null;
  key: string;
}

export { CorefileError, SetupError } from '../pkg/config-errors.js';
