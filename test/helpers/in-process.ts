/**
 * A server's whole answer path without sockets, for table tests in CoreDNS's `test.Case` style: the
 * Corefile is set up as `serve` does it and each question goes through the same entry point as a UDP
 * packet (parse, zone routing, plugin chain, rendering for the asker), so the bytes are the wire's.
 */
import type { Test } from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadPlugins } from '../../src/plugins/registry.js';
import { closePlugins, loadConfig } from '../../src/server/config.js';
import { DnsServer } from '../../src/server/dns-server.js';
import { Frames } from '../../src/server/listeners.js';
import type { Plugin } from '../../src/server/types.js';
import { CLASS, rcodeName, typeName, typeNumber } from '../../src/server/wire/constants.js';
import { decodeMessage, encodeMessage, type Message, type RR } from '../../src/server/wire/message.js';
import { tempDir } from './temp-dir.js';

export interface Answer {
  rcode: string;
  aa: boolean;
  tc: boolean;
  /** Records as dig prints them: `name ttl IN TYPE data`. */
  answer: string[];
  ns: string[];
  extra: string[];
  msg: Message;
}

export interface AskOptions {
  proto?: 'udp' | 'tcp';
  /** EDNS0 buffer size; none: no OPT record (512-byte UDP limit). */
  bufsize?: number;
  rd?: boolean;
  /** Source address the plugins see (autopath, whoami, acl-like decisions). */
  from?: string;
}

export interface InProcessServer {
  ask(name: string, type: string, opts?: AskOptions): Promise<Answer>;
  /** Directory holding the Corefile (relative paths in it resolve here). */
  dir: string;
  /** The first plugin instance named `name` (tests that look at a plugin's own state, e.g. a memo's size). */
  plugin<T extends Plugin>(name: string): T;
  close(): Promise<void>;
}

function rdata(rr: RR): string {
  const d = rr.data;
  if (Buffer.isBuffer(d)) return `\\# ${d.length} ${d.toString('hex')}`;
  if (Array.isArray(d)) return d.map((s) => JSON.stringify(s)).join(' ');
  if (typeof d === 'string') return d;
  if ('mname' in d) return `${d.mname} ${d.rname} ${d.serial} ${d.refresh} ${d.retry} ${d.expire} ${d.minimum}`;
  if ('target' in d) return `${d.priority} ${d.weight} ${d.port} ${d.target}`;
  return `${d.preference} ${d.exchange}`;
}

/** One record in dig's presentation format. */
export function rrText(rr: RR): string {
  return `${rr.name} ${rr.ttl} IN ${typeName(rr.type)} ${rdata(rr)}`;
}

/** Sets up `corefile` (written to a temp dir with `files`) and answers questions in-process. */
export async function inProcessServer(corefile: string, opts: { files?: Record<string, string> } = {}): Promise<InProcessServer> {
  const dir = tempDir('inproc');
  for (const [name, text] of Object.entries(opts.files ?? {})) writeFileSync(join(dir, name), text);
  const file = join(dir, 'Corefile');
  writeFileSync(file, corefile);
  const plugins = await loadPlugins();
  const server = new DnsServer({ conf: file, dnsPort: 53, plugins });
  const config = await loadConfig({ file, dnsPort: 53, plugins, shared: server.shared });
  server.config = config;
  for (const b of config.blocks) for (const p of b.plugins) await p.start?.();
  let id = 1;
  return {
    dir,
    async ask(name, type, o = {}) {
      const qtype = typeNumber(type);
      if (qtype === undefined) throw new Error(`unknown type ${type}`);
      const query = encodeMessage({
        id: id++ & 0xffff, qr: false, rd: o.rd ?? false, rcode: 0, question: { name, type: qtype, class: CLASS.IN },
        answer: [], authority: [], additional: [],
        edns: o.bufsize === undefined ? null : { udpSize: o.bufsize, version: 0, do: false },
      });
      const peer = { proto: o.proto ?? 'udp', address: o.from ?? '127.0.0.1', port: 40000, family: o.from?.includes(':') ? 2 : 1 } as const;
      const out = await server.handle(query, peer, config.ports[0]!);
      if (!out) throw new Error(`${name} ${type}: the server dropped the query`);
      const msg = decodeMessage(out instanceof Frames ? out.first : out);
      // A zone transfer: the answers of every message, in order, as one.
      if (out instanceof Frames) for (let r = out.rest.next(); !r.done; r = out.rest.next()) msg.answer.push(...decodeMessage(r.value).answer);
      return {
        rcode: rcodeName(msg.rcode), aa: !!msg.aa, tc: !!msg.tc, msg,
        answer: msg.answer.map(rrText), ns: msg.authority.map(rrText), extra: msg.additional.map(rrText),
      };
    },
    plugin<T extends Plugin>(name: string): T {
      const p = config.blocks.flatMap((b) => b.plugins).find((x) => x.name === name);
      if (!p) throw new Error(`no plugin ${name} in the Corefile`);
      return p as T;
    },
    close: () => closePlugins(config.blocks),
  };
}

/** CoreDNS's `test.Case`: a question and the whole expected reply, records as dig prints them. */
export interface DnsCase {
  q: string;
  type: string;
  /** Default NOERROR. */
  rcode?: string;
  an?: string[];
  ns?: string[];
  /** Checked only when given. */
  ar?: string[];
}

/**
 * Runs `cases` against `ask`, comparing each section as a set (order is the plugin's business, e.g.
 * loadbalance). `defaultNs` gives the expected authority section when a case names none.
 */
export async function checkCases(
  t: Test, ask: (q: string, type: string) => Promise<Pick<Answer, 'rcode' | 'answer' | 'ns' | 'extra'>>, cases: DnsCase[], defaultNs: (c: DnsCase) => string[] = () => [],
): Promise<void> {
  for (const c of cases) {
    const r = await ask(c.q, c.type);
    const label = `${c.q} ${c.type}`;
    const sorted = (l: string[]) => [...l].sort();
    t.equal(r.rcode, c.rcode ?? 'NOERROR', `${label}: rcode`);
    t.same(sorted(r.answer), sorted(c.an ?? []), `${label}: answer`);
    t.same(sorted(r.ns), sorted(c.ns ?? defaultNs(c)), `${label}: authority`);
    if (c.ar) t.same(sorted(r.extra), sorted(c.ar), `${label}: additional`);
  }
}
