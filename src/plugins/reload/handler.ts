import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { logger } from '../../pkg/log.js';
import type { Next, Plugin, Query, Reply } from '../../server/types.js';

const log = logger('plugin/reload');
/** CoreDNS (caddy) prints the reload notice without a plugin prefix. */
const core = logger();

export function sha512(text: string | Buffer): string {
  return createHash('sha512').update(text).digest('hex');
}

/** The first start announces the configuration; after a reload the server announces it itself. */
let announced = false;

/**
 * Polls the Corefile's SHA512 and asks the server to reload when it changes. Polling content, not
 * fs.watch: Kubernetes updates a ConfigMap volume by swapping a `..data` symlink, after which a watch
 * on the file stays bound to the old inode and never fires again.
 */
export class Reload implements Plugin {
  readonly name = 'reload';
  private timer: NodeJS.Timeout | undefined;
  private checking = false;

  /**
   * @param hash SHA512 of the Corefile text this config was loaded from (null when it came from memory).
   * @param intervalMs the poll period, jitter already applied.
   */
  constructor(
    private readonly file: string,
    private hash: string | null,
    readonly intervalMs: number,
    private readonly requestReload: (reason: string) => void,
  ) {}

  serve(q: Query, next: Next): Reply | Promise<Reply> {
    return next(q);
  }

  start(): void {
    if (!announced && this.hash) log.info(`Running configuration SHA512 = ${this.hash}`);
    announced = true;
    this.timer = setInterval(() => void this.check(), this.intervalMs);
    this.timer.unref();
  }

  /** One poll; exported behaviour for tests. Returns true when a reload was requested. */
  async check(): Promise<boolean> {
    if (this.checking) return false;
    this.checking = true;
    try {
      let text: Buffer;
      try {
        text = await readFile(this.file);
      } catch {
        // A ConfigMap swap can leave the path missing for a moment; the next tick sees the new file.
        return false;
      }
      const h = sha512(text);
      if (h === this.hash) return false;
      // Remember it even if the reload fails: a broken file is tried once, not every tick.
      this.hash = h;
      if (!this.timer) return false;
      core.info('Reloading');
      this.requestReload(`${this.file} changed (SHA512 ${h.slice(0, 16)}...)`);
      return true;
    } finally {
      this.checking = false;
    }
  }

  close(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
