import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface DigRR { name: string; ttl: number; class: string; type: string; data: string }

export interface DigResult {
  status: string;
  flags: string[];
  answer: DigRR[];
  authority: DigRR[];
  additional: DigRR[];
  /** EDNS udp size dig saw in the reply's OPT, if any. */
  ednsUdp?: number;
  raw: string;
}

function parseRR(line: string): DigRR {
  const [name, ttl, klass, type, ...data] = line.split(/\s+/);
  return { name: name!, ttl: Number(ttl), class: klass!, type: type!, data: data.join(' ') };
}

/** Parses dig's default output (sections, status, flags). */
export function parseDig(out: string): DigResult {
  const status = /status: ([A-Z]+)/.exec(out)?.[1] ?? 'NONE';
  const flags = (/;; flags: ([a-z ]*);/.exec(out)?.[1] ?? '').trim().split(/\s+/).filter(Boolean);
  const ednsUdp = /; EDNS: version: \d+, flags:[^;]*; udp: (\d+)/.exec(out)?.[1];
  const section = (title: string): DigRR[] => {
    const m = new RegExp(`;; ${title} SECTION:\\n([\\s\\S]*?)(?:\\n\\n|$)`).exec(out);
    return m ? m[1]!.split('\n').filter((l) => l && !l.startsWith(';')).map(parseRR) : [];
  };
  return {
    status, flags, answer: section('ANSWER'), authority: section('AUTHORITY'), additional: section('ADDITIONAL'),
    ednsUdp: ednsUdp ? Number(ednsUdp) : undefined, raw: out,
  };
}

/** Runs the real `dig` against 127.0.0.1:port. `args` are dig arguments: name, type, +options. */
export async function dig(port: number, args: string[], server = '127.0.0.1'): Promise<DigResult> {
  const { stdout } = await run('dig', [`@${server}`, '-p', String(port), '+time=2', '+tries=1', ...args], { timeout: 15_000 });
  return parseDig(stdout);
}

/** Short form: the answer's RDATA strings, sorted. */
export async function digShort(port: number, args: string[]): Promise<string[]> {
  const { stdout } = await run('dig', ['@127.0.0.1', '-p', String(port), '+time=2', '+tries=1', '+short', ...args], { timeout: 15_000 });
  return stdout.split('\n').filter(Boolean).sort();
}

/** One record as `name ttl CLASS TYPE data`, the form in-process tables use (helpers/in-process rrText). */
export function digRRText(rr: DigRR): string {
  return `${rr.name} ${rr.ttl} ${rr.class} ${rr.type} ${rr.data}`;
}

/**
 * A real dig query shaped like helpers/in-process's Answer (without the decoded message), so one
 * `DnsCase` table runs in-process and over the wire: `(q, type) => digAnswer(port, q, type)`.
 */
export async function digAnswer(port: number, name: string, type: string, args: string[] = []) {
  const r = await dig(port, [name, type, ...args]);
  return {
    rcode: r.status, aa: r.flags.includes('aa'), tc: r.flags.includes('tc'), flags: r.flags,
    answer: r.answer.map(digRRText), ns: r.authority.map(digRRText), extra: r.additional.map(digRRText),
  };
}
