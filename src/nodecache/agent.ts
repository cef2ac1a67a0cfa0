import type { Logger } from '../pkg/log.js';
import { XtablesLockError, type RuleBackend } from './apply.js';
import type { LocalInterface } from './link.js';
import type { NodecacheMetrics } from './metrics.js';
import type { Rule } from './rules.js';

export interface AgentOptions {
  /** Null with -setupinterface=false. */
  link: LocalInterface | null;
  /** Null with -setupiptables=false. */
  backend: RuleBackend | null;
  rules: readonly Rule[];
  syncIntervalMs: number;
  log: Logger;
  metrics?: NodecacheMetrics;
}

/**
 * node-cache's networking half: the interface first (the server binds the local IPs), the rules only
 * once the server answers (so traffic is never diverted to a cache that failed to start), then a check
 * every sync interval that puts back whatever someone removed, and the teardown.
 */
export class NodecacheAgent {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | null = null;

  constructor(private readonly o: AgentOptions) {}

  private failed(type: string, msg: string): void {
    this.o.log.error(msg);
    this.o.metrics?.setupErrors.inc({ errortype: type });
    this.o.metrics?.lastError.set(Date.now() / 1000);
  }

  /** Creates the interface and adds the local IPs; false when that failed (logged and counted). */
  async setupInterface(): Promise<boolean> {
    const link = this.o.link;
    if (!link) return true;
    try {
      for (const change of await link.ensure()) this.o.log.info(change);
      return true;
    } catch (e) {
      this.failed(link.created ? 'interface_check' : 'interface_add', `interface ${link.name}: ${(e as Error).message}`);
      return false;
    }
  }

  async setupRules(): Promise<boolean> {
    const b = this.o.backend;
    if (!b) return true;
    try {
      const r = await b.ensure(this.o.rules);
      if (r.added) this.o.log.info(`${b.mode}: added ${r.added} rule${r.added === 1 ? '' : 's'} (${r.present} of ${this.o.rules.length} were in place)`);
      if (r.removed) this.o.log.info(`${b.mode}: removed ${r.removed} stale or duplicate rule${r.removed === 1 ? '' : 's'}`);
      this.o.metrics?.rules.set({ mode: b.mode }, this.o.rules.length);
      if (r.added) this.o.metrics?.repaired.inc({ mode: b.mode }, r.added);
      return true;
    } catch (e) {
      const lock = e instanceof XtablesLockError;
      this.failed(lock ? 'iptables_lock' : b.mode, `${b.mode} rules${lock ? ` (retrying in ${this.o.syncIntervalMs / 1000}s)` : ''}: ${(e as Error).message}`);
      this.o.metrics?.rules.set({ mode: b.mode }, 0);
      return false;
    }
  }

  /** One periodic pass; passes never overlap. */
  sync(): Promise<void> {
    this.running ??= (async () => {
      await this.setupInterface();
      await this.setupRules();
    })().finally(() => { this.running = null; });
    return this.running;
  }

  start(): void {
    this.timer = setInterval(() => void this.sync(), this.o.syncIntervalMs);
    this.timer.unref();
  }

  /** Stops the periodic checks (waiting for one in progress). */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  async removeRules(): Promise<void> {
    try {
      await this.o.backend?.remove();
    } catch (e) {
      this.o.log.error(`removing ${this.o.backend!.mode} rules: ${(e as Error).message}`);
    }
  }

  async removeInterface(): Promise<void> {
    try {
      await this.o.link?.remove();
    } catch (e) {
      this.o.log.error(`removing interface ${this.o.link!.name}: ${(e as Error).message}`);
    }
  }
}
