import { readFileSync } from 'node:fs';

/**
 * The search domains of a resolv.conf (the last `search` or `domain` line wins, resolv.conf(5)) as
 * lower-case FQDNs, the root left out; [] when the file cannot be read. CoreDNS's autopath and
 * kubernetes plugins append the server's own ones to a client's search path.
 */
export function searchDomains(file = '/etc/resolv.conf'): string[] {
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
