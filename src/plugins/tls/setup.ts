import { appendFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { SetupArgs } from '../../pkg/args.js';
import { logger } from '../../pkg/log.js';
import { tlsFromArgs } from '../../pkg/tls.js';
import type { ClientAuth, TlsListen } from '../../server/listeners.js';
import type { Plugin, PluginDefinition } from '../../server/types.js';

const log = logger('plugin/tls');

/**
 * `tls CERT KEY [CA]`: the certificate a `tls://` server block serves DNS over TLS with (RFC 7858). The
 * server reads `listen` when it opens the block's port; queries never pass through this plugin.
 */
export class Tls implements Plugin {
  readonly name = 'tls';
  constructor(readonly listen: TlsListen) {}
}

const CLIENT_AUTH: readonly ClientAuth[] = ['nocert', 'request', 'require', 'verify_if_given', 'require_and_verify'];

export const definition: PluginDefinition = {
  name: 'tls',
  once: true,
  setup(d, ctx) {
    const a = new SetupArgs('tls');
    if (!d.args.length) throw a.error(d, 'automatic certificates (tls { acme ... }) are not supported: give tls CERT KEY [CA]');
    const args = a.count(d, 2, 3, 'CERT KEY [CA]');
    let clientAuth: ClientAuth = 'nocert';
    let keylogFile: string | undefined;
    for (const c of d.children) {
      a.once(c);
      a.noBlock(c);
      switch (c.name) {
        case 'client_auth': {
          const [mode] = a.count(c, 1, 1, CLIENT_AUTH.join('|'));
          if (!CLIENT_AUTH.includes(mode as ClientAuth)) throw a.error(c, `unknown authentication type '${mode}'`);
          clientAuth = mode as ClientAuth;
          break;
        }
        case 'keylog': {
          const [file] = a.count(c, 1, 1, 'FILE');
          keylogFile = isAbsolute(file!) ? file! : resolve(dirname(ctx.corefile), file!);
          try {
            appendFileSync(keylogFile, '', { mode: 0o600 });
          } catch (e) {
            throw a.error(c, `unable to write TLS Key Log to "${keylogFile}": ${(e as Error).message}`);
          }
          break;
        }
        default:
          throw a.error(c, `unknown option '${c.name}'`);
      }
    }
    let material;
    try {
      material = tlsFromArgs(args, dirname(ctx.corefile));
    } catch (e) {
      throw a.error(d, (e as Error).message);
    }
    if (keylogFile && !ctx.shared.checkOnly) log.warn(`Writing TLS Key Log to "${keylogFile}"`);
    const file = keylogFile;
    return new Tls({
      // Without a CA, no list of acceptable issuers goes to clients (Go's nil ClientCAs): a client then offers
      // whatever certificate it has, which `require` takes; Node's own roots still verify it.
      options: { ...material.options, ca: material.ca }, clientAuth,
      keylog: file ? (line) => { try { appendFileSync(file, line); } catch { /* best effort, like a debug aid */ } } : undefined,
    });
  },
};
