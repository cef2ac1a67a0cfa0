import { firstLine, type Run } from '../pkg/command.js';
import type { Logger } from '../pkg/log.js';

/**
 * The interface holding the local IPs: a dummy link like node-cache's, or `lo` where the kernel has no
 * dummy link type (no CONFIG_DUMMY, the module not loadable from a container). Addresses are /32 and
 * /128 so nothing else on the node routes through them.
 */
export class LocalInterface {
  /** The link actually used: the dummy one, or `lo` after the fallback. */
  device: string;
  /** Teardown deletes the link only when this process created it. */
  created = false;

  constructor(readonly name: string, readonly ips: readonly string[], private readonly run: Run, private readonly log: Pick<Logger, 'warn'>) {
    this.device = name;
  }

  private async ip(args: string[]): Promise<void> {
    const r = await this.run('ip', args);
    if (r.code !== 0) throw new Error(`ip ${args.join(' ')}: ${firstLine(r.stderr)}`);
  }

  /** Addresses on the device, or null when it does not exist. */
  private async addresses(): Promise<string[] | null> {
    const r = await this.run('ip', ['-j', 'addr', 'show', 'dev', this.device]);
    if (r.code !== 0) return null;
    const links = JSON.parse(r.stdout || '[]') as { addr_info?: { local?: string }[] }[];
    return links.flatMap((l) => (l.addr_info ?? []).map((a) => a.local ?? ''));
  }

  /** Creates the link and adds missing addresses; returns what it changed (empty when all was in place). */
  async ensure(): Promise<string[]> {
    const changes: string[] = [];
    let have = await this.addresses();
    if (have === null) {
      const r = await this.run('ip', ['link', 'add', this.name, 'type', 'dummy']);
      if (r.code === 0) {
        this.created = true;
        changes.push(`created dummy interface ${this.name}`);
      } else if (/Unknown device type|not supported/i.test(r.stderr)) {
        this.log.warn(`cannot create interface ${this.name}: this kernel has no dummy link type (${firstLine(r.stderr)}); using lo for the local IPs instead`);
        this.device = 'lo';
      } else {
        throw new Error(`ip link add ${this.name} type dummy: ${firstLine(r.stderr)}`);
      }
      await this.ip(['link', 'set', this.device, 'up']);
      have = (await this.addresses()) ?? [];
    }
    for (const addr of this.ips) {
      if (have.includes(addr)) continue;
      const v6 = addr.includes(':');
      await this.ip(['addr', 'add', `${addr}/${v6 ? 128 : 32}`, 'dev', this.device, ...(v6 ? ['nodad'] : [])]);
      changes.push(`added ${addr} to ${this.device}`);
    }
    return changes;
  }

  async remove(): Promise<void> {
    if (this.created) {
      await this.ip(['link', 'del', this.name]);
      this.created = false;
      return;
    }
    const have = (await this.addresses()) ?? [];
    for (const addr of this.ips) {
      if (have.includes(addr)) await this.ip(['addr', 'del', `${addr}/${addr.includes(':') ? 128 : 32}`, 'dev', this.device]);
    }
  }
}
