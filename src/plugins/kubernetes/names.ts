import { canonicalIP } from '../../pkg/ip.js';

/**
 * Cluster names, parsed right to left the way CoreDNS does (plugin/kubernetes/parse.go):
 *   [_port._proto | endpoint].service.namespace.(svc|pod).<zone>
 * All inputs are lower-case absolute names; everything here is pure.
 */
export interface RecordRequest {
  /** '' for the apex and the bare `svc.` / `pod.` names (NODATA when asked for data). */
  podOrSvc: '' | 'svc' | 'pod';
  namespace: string;
  service: string;
  /** Endpoint label (or, under `pod`, an ignored extra label). */
  endpoint: string;
  /** Port name and protocol with the leading `_` stripped; '' matches any. */
  port: string;
  protocol: string;
}

/** `base` of `name` relative to `zone` ('' at the apex), or null when name is not inside zone. */
export function trimZone(name: string, zone: string): string | null {
  if (name === zone) return '';
  if (zone === '.') return name.slice(0, -1);
  if (!name.endsWith('.' + zone)) return null;
  return name.slice(0, name.length - zone.length - 1);
}

const strip = (l: string) => (l.startsWith('_') ? l.slice(1) : l);

/**
 * Parses `name` below `zone`; null means "not a cluster name" (NXDOMAIN): a first label other than
 * svc/pod, or three or more labels left of the service.
 */
export function parseRequest(name: string, zone: string): RecordRequest | null {
  const r: RecordRequest = { podOrSvc: '', namespace: '', service: '', endpoint: '', port: '', protocol: '' };
  const base = trimZone(name, zone);
  if (base === null) return null;
  if (base === '' || base === 'svc' || base === 'pod') return r;
  const segs = base.split('.');
  let last = segs.length - 1;
  const kind = segs[last]!;
  if (kind !== 'svc' && kind !== 'pod') return null;
  r.podOrSvc = kind;
  if (--last < 0) return r;
  r.namespace = segs[last]!;
  return serviceLabels(segs, last - 1, r, false);
}

/**
 * k8s_external's names: `[endpoint | _port._proto].service.namespace.<zone>`, without the `svc` label,
 * read with the same right-to-left walk (CoreDNS external.go, which also strips a leading `_` from an
 * endpoint label). An empty `service` means the namespace alone was asked; null: too many labels, or
 * not below `zone`.
 */
export function parseExternalRequest(name: string, zone: string): RecordRequest | null {
  const base = trimZone(name, zone);
  if (!base) return null;
  const segs = base.split('.');
  const r: RecordRequest = { podOrSvc: 'svc', namespace: segs.at(-1)!, service: '', endpoint: '', port: '', protocol: '' };
  return serviceLabels(segs, segs.length - 2, r, true);
}

/** From `segs[last]` leftwards: the service, then one endpoint label or `_port._proto`; null when more remain. */
function serviceLabels(segs: string[], last: number, r: RecordRequest, stripEndpoint: boolean): RecordRequest | null {
  if (last < 0) return r;
  r.service = segs[last]!;
  if (--last < 0) return r;
  if (last === 0) {
    r.endpoint = stripEndpoint ? strip(segs[0]!) : segs[0]!;
  } else if (last === 1) {
    r.protocol = strip(segs[1]!);
    r.port = strip(segs[0]!);
  } else {
    return null;
  }
  return r;
}

/** `join('ns.dns', 'cluster.local.')` → `ns.dns.cluster.local.`; the root zone adds nothing. */
export function join(label: string, zone: string): string {
  return zone === '.' ? `${label}.` : `${label}.${zone}`;
}

/**
 * The label an endpoint answers to: its hostname, else (with endpoint_pod_names) the target pod's
 * name if shorter than 64 characters, else the address as written with `.`/`:` replaced by `-`
 * (a trailing `-` gets a `0`, as `fd00::` would otherwise end in a dash).
 */
export function endpointLabel(rawAddress: string, hostname: string | undefined, podName: string | undefined, podNames: boolean): string {
  if (hostname) return hostname;
  if (podNames && podName && podName.length < 64) return podName;
  if (rawAddress.includes('.')) return rawAddress.replaceAll('.', '-');
  const dashed = rawAddress.replaceAll(':', '-');
  return dashed.endsWith('-') ? dashed + '0' : dashed;
}

/**
 * Pod label → canonical IP: exactly three `-` and no `--` reads as IPv4, anything else as IPv6 with
 * `-` for `:`. Undefined when that is not an address.
 */
export function podLabelToIP(label: string): string | undefined {
  const dashes = label.split('-').length - 1;
  const text = dashes === 3 && !label.includes('--') ? label.replaceAll('-', '.') : label.replaceAll('-', ':');
  return canonicalIP(text);
}

/** True for names in the reverse trees (a name in a reverse zone never answers A/AAAA). */
export function isReverse(name: string): boolean {
  return name === 'in-addr.arpa.' || name === 'ip6.arpa.' || name.endsWith('.in-addr.arpa.') || name.endsWith('.ip6.arpa.');
}
