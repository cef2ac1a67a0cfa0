import { spawn, type ChildProcess } from 'node:child_process';
import { runCommand, type CommandResult } from '../../src/pkg/command.js';

/**
 * Network namespaces for data-path tests: everything a test creates lives in namespaces it owns
 * (names carry the PID and a per-lab tag, so parallel test files never collide), veth pairs are created
 * directly inside them, and cleanup() kills the started processes by PID and deletes the namespaces.
 * Nothing touches the host's interfaces, routes, iptables or resolv.conf.
 */
export class NetnsLab {
  private readonly namespaces: string[] = [];
  private readonly children = new Set<ChildProcess>();
  readonly prefix: string;

  constructor(tag: string) {
    this.prefix = `${tag}${process.pid}`;
  }

  /** Full name of a namespace of this lab. */
  ns(name: string): string {
    return `${this.prefix}-${name}`;
  }

  async addNamespace(name: string, sysctls: Record<string, string> = {}): Promise<string> {
    const ns = this.ns(name);
    await must('ip', ['netns', 'add', ns]);
    this.namespaces.push(ns);
    await must('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    for (const [k, v] of Object.entries(sysctls)) await this.must(name, 'sysctl', ['-qw', `${k}=${v}`]);
    return ns;
  }

  /**
   * A veth pair between two lab namespaces with addresses (`10.0.1.1/24`, IPv6 works too). Interface
   * names are short (15-byte kernel limit) and only need to be unique inside each namespace.
   */
  async link(a: { ns: string; ifname: string; addr?: string[] }, b: { ns: string; ifname: string; addr?: string[] }): Promise<void> {
    await must('ip', ['-n', this.ns(a.ns), 'link', 'add', a.ifname, 'type', 'veth', 'peer', 'name', b.ifname, 'netns', this.ns(b.ns)]);
    for (const end of [a, b]) {
      for (const addr of end.addr ?? []) {
        await must('ip', ['-n', this.ns(end.ns), 'addr', 'add', addr, 'dev', end.ifname, ...(addr.includes(':') ? ['nodad'] : [])]);
      }
      await must('ip', ['-n', this.ns(end.ns), 'link', 'set', end.ifname, 'up']);
    }
  }

  async route(name: string, ...args: string[]): Promise<void> {
    await must('ip', ['-n', this.ns(name), ...(args.some((a) => a.includes(':')) ? ['-6'] : []), 'route', 'add', ...args]);
  }

  /** Runs a command inside a lab namespace to completion. */
  exec(name: string, cmd: string, args: string[], input?: string): Promise<CommandResult> {
    return runCommand('ip', ['netns', 'exec', this.ns(name), cmd, ...args], input);
  }

  /** Like exec, but a non-zero exit is an error carrying the command and its stderr. */
  async must(name: string, cmd: string, args: string[], input?: string): Promise<string> {
    const r = await this.exec(name, cmd, args, input);
    if (r.code !== 0) throw new Error(`[${name}] ${cmd} ${args.join(' ')}: exit ${r.code}: ${r.stderr.trim()}`);
    return r.stdout;
  }

  /** Starts a long-running process inside a namespace (`ip netns exec` execs, so its PID is the program's). */
  spawn(name: string, cmd: string, args: string[]): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.ns(name), cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.children.add(child);
    child.on('exit', () => this.children.delete(child));
    return child;
  }

  /** Stops one started process by PID and waits for it to exit (SIGKILL after `graceMs`). */
  async kill(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 3000): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    process.kill(child.pid, signal);
    const timer = setTimeout(() => child.pid !== undefined && child.exitCode === null && process.kill(child.pid, 'SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }

  async cleanup(): Promise<void> {
    await Promise.all([...this.children].map((c) => this.kill(c)));
    for (const ns of this.namespaces.splice(0).reverse()) await runCommand('ip', ['netns', 'del', ns]);
  }
}

async function must(cmd: string, args: string[]): Promise<void> {
  const r = await runCommand(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.code}: ${r.stderr.trim()}`);
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}
