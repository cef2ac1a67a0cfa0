import { randomBytes } from 'node:crypto';
import { logger } from '../../pkg/log.js';
import type { Next, Plugin, Query, Reply, SharedServices } from '../../server/types.js';
import { RCODE, TYPE } from '../../server/wire/constants.js';
import { isSubdomain } from '../../pkg/zone.js';

const log = logger('plugin/loop');

let exit: (code: number) => void = (code) => process.exit(code);

/** Tests replace the process exit that follows a detected loop. */
export function setLoopExit(fn: (code: number) => void): () => void {
  const prev = exit;
  exit = fn;
  return () => { exit = prev; };
}

/** A random non-negative 62-bit integer in decimal, as CoreDNS's secureRandIntString. */
function randomLabel(): string {
  return (randomBytes(8).readBigUInt64BE() >> 2n).toString();
}

/** How long start-up probing goes on, and the pause after a failed probe (CoreDNS setup.go). */
const PROBE_FOR_MS = 30_000;
const RETRY_MS = 1000;
/** After one probe went through, copies still circling in a loop are counted this much longer. */
const LINGER_MS = 2000;

/**
 * Sends `HINFO <random>.<random>.<zone>` once at start; a forwarding loop brings it back through this
 * block, and a third sighting ends the process (in Kubernetes: CrashLoopBackOff, an obvious signal).
 */
export class Loop implements Plugin {
  readonly name = 'loop';
  readonly qname: string;
  private seen = 0;
  private disabled = false;
  private detected = false;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(readonly zone: string, private readonly shared: Pick<SharedServices, 'resolve'>, private readonly server: string | undefined) {
    this.qname = `${randomLabel()}.${randomLabel()}.${zone === '.' ? '' : zone}`;
  }

  serve(q: Query, next: Next): Reply | Promise<Reply> {
    if (q.type !== TYPE.HINFO) return next(q);
    // Only reached when the exit is replaced (tests): copies still circling are stopped here.
    if (this.detected && q.lname === this.qname) return { rcode: RCODE.SERVFAIL, plugin: this.name };
    if (this.disabled || !isSubdomain(q.lname, this.zone)) return next(q);
    if (q.lname === this.qname) this.seen++;
    if (this.seen > 2) {
      const listen = q.server.replace(/^dns:\/\//, '');
      log.error(`Loop (${q.remoteAddress}:${q.remotePort} -> ${listen}) detected for zone "${this.zone}", see https://coredns.io/plugins/loop#troubleshooting. Query: "HINFO ${this.qname}"`);
      this.detected = true;
      exit(1);
      return { rcode: RCODE.SERVFAIL, plugin: this.name };
    }
    return next(q);
  }

  /** Probes in the background: start() must not hold up the server (its own listeners answer the probe). */
  start(): void {
    const deadline = Date.now() + PROBE_FOR_MS;
    const probe = async (): Promise<void> => {
      if (this.closed) return;
      try {
        await this.shared.resolve({ name: this.qname, type: TYPE.HINFO, server: this.server });
      } catch {
        this.seen = 0;
        if (Date.now() < deadline) this.schedule(() => void probe(), RETRY_MS);
        else this.disabled = true;
        return;
      }
      this.schedule(() => { this.disabled = true; }, LINGER_MS);
    };
    void probe();
  }

  private schedule(fn: () => void, ms: number): void {
    this.timer = setTimeout(fn, ms);
    this.timer.unref();
  }

  close(): void {
    this.closed = true;
    this.disabled = true;
    clearTimeout(this.timer);
  }
}
