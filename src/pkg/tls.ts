/** TLS material from a Corefile's `tls [CERT KEY] [CA]` arguments (CoreDNS plugin/pkg/tls NewTLSConfigFromArgs). */
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import tls from 'node:tls';

/** What a TLS client or server needs besides the peer's name: our certificate (optional) and the trusted roots. */
export interface TlsMaterial {
  cert?: Buffer;
  key?: Buffer;
  /** Roots that verify the other end; absent = the system's (CoreDNS: Go's system pool). */
  ca?: Buffer;
  /** What `context` was built from (a TLS server takes these, and takes them again on reload). */
  options: tls.SecureContextOptions;
  /** Built once at setup, so a bad PEM or a key that does not match its certificate fails there. */
  context: tls.SecureContext;
}

/**
 * The system's roots where Node can read them (22.15+), else Node's bundled Mozilla store. Go uses the
 * system pool only; Node's bundle is added too so a minimal image without ca-certificates still verifies
 * public resolvers.
 */
function systemRoots(): string[] | undefined {
  const get = (tls as { getCACertificates?: (which: string) => string[] }).getCACertificates;
  if (!get) return undefined;
  return [...new Set([...get('system'), ...get('bundled')])];
}

/**
 * `args` as CoreDNS reads them: none = no certificate, system roots; `CA`; `CERT KEY` (system roots);
 * `CERT KEY CA`. Relative paths resolve against `base` (the Corefile's directory). Throws an Error saying
 * which file failed and why.
 */
export function tlsFromArgs(args: readonly string[], base: string): TlsMaterial {
  if (args.length > 3) throw new Error(`maximum of three arguments allowed for TLS config, found ${args.length}`);
  const read = (path: string, what: string) => {
    const full = isAbsolute(path) ? path : resolve(base, path);
    try {
      return readFileSync(full);
    } catch (e) {
      throw new Error(`could not read TLS ${what} ${full}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  };
  const m: Omit<TlsMaterial, 'context' | 'options'> = {};
  if (args.length === 1) m.ca = read(args[0]!, 'CA');
  if (args.length >= 2) {
    m.cert = read(args[0]!, 'cert');
    m.key = read(args[1]!, 'key');
  }
  if (args.length === 3) m.ca = read(args[2]!, 'CA');
  const options: tls.SecureContextOptions = { cert: m.cert, key: m.key, ca: m.ca ?? systemRoots(), minVersion: 'TLSv1.2' };
  let context: tls.SecureContext;
  try {
    context = tls.createSecureContext(options);
  } catch (e) {
    throw new Error(`could not load TLS ${m.cert ? 'cert/key' : 'CA'}: ${(e as Error).message}`);
  }
  if (m.ca && !/-----BEGIN CERTIFICATE-----/.test(m.ca.toString('latin1'))) throw new Error(`could not read root certs: no PEM certificate in ${args.at(-1)}`);
  return { ...m, options, context };
}
