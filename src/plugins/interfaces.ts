import type { RR } from '../server/wire/message.js';
import type { Plugin, Query } from '../server/types.js';

/*
 * What plugins ask of each other, as CoreDNS's small interfaces (k8s_external.Externaler,
 * autopath.AutoPather): a plugin finds a peer of its block by name and uses it only through these, so
 * no plugin depends on another's concrete class.
 */

/**
 * One address k8s_external answers for a name, with the port and owner name its SRV record would carry
 * (CoreDNS's msg.Service).
 */
export interface ExternalEntry {
  /** An IP, or (with `cname`) the hostname a LoadBalancer publishes instead of one: lower case, no trailing dot. */
  host: string;
  cname?: true;
  /** -1: no port (a portless endpoint slice, a Service without ports), so no SRV record. */
  port: number;
  /** Absolute owner name of the SRV target / PTR, below the k8s_external zone. */
  target: string;
  /** The cluster plugin's TTL: CoreDNS gives SRV and CNAME records this one, not k8s_external's. */
  ttl: number;
}

/** Offered by the plugin holding the cluster data (kubernetes) to k8s_external. */
export interface Externaler {
  /**
   * The entries for `lname` (lower-case, below `zone`, neither the apex nor `<apex>.<zone>`) and the rcode
   * when there are none: CoreDNS's External(). `headless`: endpoint addresses of headless services too.
   */
  external(lname: string, zone: string, headless: boolean): { entries: ExternalEntry[]; rcode: number };
  /** Names `<svc>.<ns>.<zone>` of the services holding external IP `ip` (PTR). */
  externalReverse(ip: string, zone: string): string[];
  /** This server's own names and external addresses below `zone` (NS glue): CoreDNS's ExternalAddress(). */
  externalAddress(zone: string, headless: boolean): { name: string; ip: string }[];
  /** Serial for the zone's SOA: changes whenever the cluster data does. */
  externalSerial(): number;
  /**
   * Every name below `zone` that external() has entries for (`<svc>.<ns>`, `_port._proto.<svc>.<ns>`, with
   * `headless` the endpoints' names), for a zone transfer; none until the cluster data is synced.
   */
  externalNames(zone: string, headless: boolean): string[] | undefined;
}

/** Offered by plugins serving whole zones (file, kubernetes, k8s_external) to `transfer`: CoreDNS's transfer.Transferer. */
export interface Transferer {
  /**
   * The records of `zone` (lower-case, exactly one of this plugin's zones) for AXFR, in groups as they are made:
   * the SOA first and last, NS and glue next. `serial` (an IXFR's, 0 for AXFR): when the zone is not older,
   * just the SOA. Undefined when this plugin is not authoritative for `zone` (ErrNotAuthoritative). Throws a
   * PluginError when the zone cannot be transferred now (cluster data not synced yet): SERVFAIL.
   */
  transfer(zone: string, serial: number): Iterable<RR[]> | undefined;
  /**
   * Calls `changed(zone)` whenever one of the plugin's zones gets a new serial (file reload, cluster change), so
   * that `transfer` sends NOTIFY; returns the unsubscribe. Absent: no notifies (k8s_external, as in CoreDNS).
   */
  onZoneChange?(changed: (zone: string) => void): () => void;
}

/** Offered by a plugin that knows a client's DNS search path (kubernetes, with `pods verified`). */
export interface AutoPather {
  /** The asking client's search path, then '' for the name as is; undefined when unknown (autopath passes the query on). */
  autoPath(q: Query): string[] | undefined;
  /** Why this instance cannot give search paths as configured, checked when the Corefile is set up. */
  autoPathProblem(): string | undefined;
}

/** One exchange of a forwarder with an upstream, as dnstap's FORWARDER_QUERY and FORWARDER_RESPONSE show it. */
export interface ForwardExchange {
  /** The upstream's IP and port. */
  host: string;
  port: number;
  transport: 'udp' | 'tcp';
  /** performance.now() when the query was sent. */
  start: number;
  /** The query as sent (the asker's ID). */
  query: Buffer;
  /** The upstream's reply with the asker's ID; undefined when none came (timeout, refused connection). */
  reply?: Buffer;
}

/** Offered by dnstap to plugins that tap their own traffic (forward): CoreDNS's Dnstap.TapMessage. */
export interface Tapper {
  /** Sends a FORWARDER_QUERY and, when there is a reply, a FORWARDER_RESPONSE for the relaying of `q`. */
  tapForward(q: Query, x: ForwardExchange): void;
}

export function isTapper(p: Plugin | undefined): p is Plugin & Tapper {
  return typeof (p as Partial<Tapper> | undefined)?.tapForward === 'function';
}

export function isExternaler(p: Plugin | undefined): p is Plugin & Externaler {
  return typeof (p as Partial<Externaler> | undefined)?.external === 'function';
}

export function isAutoPather(p: Plugin | undefined): p is Plugin & AutoPather {
  return typeof (p as Partial<AutoPather> | undefined)?.autoPath === 'function';
}

export function isTransferer(p: Plugin | undefined): p is Plugin & Transferer {
  return typeof (p as Partial<Transferer> | undefined)?.transfer === 'function';
}
