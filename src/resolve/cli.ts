/**
 * `clusterdns resolve NAME`: walks a name through the search path exactly as glibc or musl would,
 * asking the server at every step and printing what each query cost.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { reverseName } from '../pkg/reverse.js';
import { rcodeName, RCODE, TYPE, typeName, typeNumber } from '../server/wire/constants.js';
import type { Message, RR } from '../server/wire/message.js';
import { bool, commandLine, describeFlags, parseFlags, text, UsageError, value } from '../pkg/flags.js';
import { ask, parseServer, type Server } from './client.js';
import { parseResolvConf } from './resolv-conf.js';
import { decide, searchOrder, type Outcome, type Stub } from './stub.js';

const SYNOPSIS = 'Usage: clusterdns resolve NAME [-type A|AAAA|SRV|PTR|ANY] [-resolv-conf FILE] [-server IP[:PORT]] [-stub glibc|musl]\n';
const usage = () => `${SYNOPSIS}\nFlags:\n${describeFlags(RESOLVE_FLAGS)}`;

function rdataText(rr: RR): string {
  const d = rr.data as unknown;
  if (typeof d === 'string') return d;
  if (Array.isArray(d)) return d.map((s) => JSON.stringify(s)).join(' ');
  if (Buffer.isBuffer(d)) return `\\# ${d.length} ${d.toString('hex')}`;
  return Object.values(d as object).join(' ');
}

function outcome(m: Message, type: number): Outcome {
  if (m.rcode === RCODE.NXDOMAIN) return 'nxdomain';
  if (m.rcode === RCODE.SERVFAIL) return 'servfail';
  if (m.rcode !== RCODE.NOERROR) return 'other';
  return m.answer.some((rr) => rr.type === type || type === TYPE.ANY) ? 'answer' : 'nodata';
}

export interface Step { name: string; type: string; rcode: string; answers: string[]; viaTcp: boolean; truncated: boolean }
export interface Resolution { steps: Step[]; found: boolean; name?: string; answers: string[] }

/** The whole walk, returned as data (tests compare it with what real stubs sent). */
export async function resolveLikeStub(name: string, opts: { types: number[]; conf: ReturnType<typeof parseResolvConf>; server: Server; stub: Stub; addressLookup: boolean }): Promise<Resolution> {
  const steps: Step[] = [];
  for (const candidate of searchOrder(name, opts.conf, opts.stub, opts.addressLookup)) {
    const outcomes: Outcome[] = [];
    const answers: string[] = [];
    const replies = await Promise.all(opts.types.map((type) => ask(opts.server, candidate, type, {
      timeoutMs: opts.conf.timeoutSec * 1000, tcpFallback: opts.stub === 'glibc',
    }).then((r) => ({ type, ...r }))));
    for (const { type, msg, viaTcp } of replies) {
      const o = outcome(msg, type);
      outcomes.push(o);
      const texts = msg.answer.map((rr) => `${rr.name} ${rr.ttl} ${typeName(rr.type)} ${rdataText(rr)}`);
      steps.push({ name: candidate, type: typeName(type), rcode: rcodeName(msg.rcode), answers: texts, viaTcp, truncated: !!msg.tc && !viaTcp });
      answers.push(...msg.answer.filter((rr) => rr.type === type || type === TYPE.ANY).map(rdataText));
    }
    const d = decide(opts.stub, outcomes);
    if (d.stop) return { steps, found: d.found, name: d.found ? candidate : undefined, answers: d.found ? answers : [] };
  }
  return { steps, found: false, answers: [] };
}

const RESOLVE_FLAGS = {
  type: value('Query type: A|AAAA|SRV|PTR|ANY (default: A and AAAA, as getaddrinfo asks)', (v, flag) => {
    const t = typeNumber(v);
    if (t === undefined) throw new UsageError(`${flag}: unknown type '${v}'`);
    return t;
  }, { arg: 'T' }),
  'resolv-conf': text('Search path, ndots and servers as the pod sees them', { arg: 'FILE', default: '/etc/resolv.conf' }),
  server: text('Server to ask (default: the first nameserver of the resolv.conf)', { arg: 'IP[:PORT]' }),
  stub: value('Stub resolver to imitate: glibc or musl', (v, flag): Stub => {
    if (v !== 'glibc' && v !== 'musl') throw new UsageError(`${flag} must be glibc or musl`);
    return v;
  }, { arg: 'NAME', default: 'glibc' as Stub, shown: '"glibc"' }),
  help: bool('Show this help', { aliases: ['h'] }),
};

export async function runResolve(argv: string[]): Promise<number> {
  const parsed = commandLine('clusterdns resolve', usage, () => {
    // The name may come before the flags (`resolve NAME -type A`), as the README writes it.
    const { values, args } = parseFlags(RESOLVE_FLAGS, argv, { interspersed: true });
    if (!values.help && args.length !== 1) throw new UsageError(args.length ? `one NAME expected, got: ${args.join(' ')}` : 'NAME missing');
    return { ...values, name: args[0]! };
  });
  if (typeof parsed === 'number') return parsed;
  const f = parsed;
  const { stub, type, 'resolv-conf': confFile } = f;
  let name = f.name;
  if (type === TYPE.PTR && isIP(name)) name = reverseName(name);
  let conf;
  try {
    conf = parseResolvConf(readFileSync(confFile, 'utf8'));
  } catch (e) {
    process.stderr.write(`cannot read ${confFile}: ${(e as Error).message}\n`);
    return 2;
  }
  const server = parseServer(f.server ?? conf.nameservers[0]!);
  const addressLookup = type === undefined;
  const types = addressLookup ? [TYPE.A, TYPE.AAAA] : [type!];
  process.stdout.write(`${stub}: search ${conf.search.join(' ') || '(none)'}; ndots:${conf.ndots}; server ${server.host}:${server.port}\n`);
  let res: Resolution;
  try {
    res = await resolveLikeStub(name, { types, conf, server, stub, addressLookup });
  } catch (e) {
    process.stdout.write(`error: ${(e as Error).message}\n`);
    return 1;
  }
  res.steps.forEach((s, i) => {
    const what = s.answers.length ? s.answers.join('; ') : '(no answer records)';
    process.stdout.write(`${String(i + 1).padStart(3)}. ${s.name} ${s.type} -> ${s.rcode}${s.truncated ? ' TC' : ''}${s.viaTcp ? ' (tcp)' : ''} ${what}\n`);
  });
  const cost = `${res.steps.length} ${res.steps.length === 1 ? 'query' : 'queries'}`;
  if (res.found) {
    process.stdout.write(`result: ${name} -> ${res.answers.join(', ')} (as ${res.name}) after ${cost}\n`);
    return 0;
  }
  process.stdout.write(`result: ${name}: not found after ${cost}\n`);
  return 1;
}
