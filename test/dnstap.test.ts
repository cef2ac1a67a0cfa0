import t from 'tap';
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { connect as netConnect, createServer, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { dig } from './helpers/dig.js';
import { serveCli, type ServedCli } from './helpers/serve-cli.js';
import { startServer } from './helpers/server.js';
import { tempDir } from './helpers/temp-dir.js';
import { freePort, startBlackhole, startKnot } from './helpers/upstream.js';
import { waitFor } from './helpers/wait.js';
import { encodeDnstap, MESSAGE_TYPE } from '../src/plugins/dnstap/proto.js';
import { TapOutput } from '../src/plugins/dnstap/io.js';
import { makePki } from './helpers/dot.js';

const run = promisify(execFile);
const cli = resolve('dist/src/cli.js');
const missing = ['fstrm_capture', 'dnstap-ldns'].filter((b) => spawnSync('sh', ['-c', `command -v ${b}`]).status !== 0);
const skip = missing.length ? `${missing.join(' and ')} missing (Debian packages fstrm-bin, dnstap-ldns)`
  : !existsSync(cli) && 'dist/src/cli.js missing (run tsc -p . first)';

/** The real Frame Streams collector (fstrm-bin), writing what it receives to `file`. */
interface Capture {
  file: string;
  stop(): Promise<void>;
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', () => r()));
}

async function startCapture(dir: string, name: string, listen: { unix: string } | { port: number }): Promise<Capture> {
  const file = join(dir, `${name}.fstrm`);
  const where = 'unix' in listen ? ['-u', listen.unix] : ['-a', '127.0.0.1', '-p', String(listen.port)];
  const child = spawn('fstrm_capture', ['-t', 'protobuf:dnstap.Dnstap', ...where, '-w', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (b: Buffer) => { err += b.toString(); });
  // It says so once the socket listens and the output file is open.
  await waitFor('fstrm_capture to listen', () => {
    if (child.exitCode !== null) throw new Error(`fstrm_capture exited: ${err}`);
    return err.includes('opened output file');
  }, 10_000);
  let stopped: Promise<void> | undefined;
  const stop = () => (stopped ??= (async () => {
    const done = exited(child);
    if (child.exitCode === null) process.kill(child.pid!, 'SIGTERM');
    await done;
  })());
  return { file, stop };
}

/** SIGTERM, as a kubelet stops the pod: the server closes its outputs (queued messages, then STOP). */
async function terminate(srv: ServedCli): Promise<void> {
  const done = exited(srv.child);
  if (srv.child.exitCode === null) process.kill(srv.child.pid!, 'SIGTERM');
  await done;
}

interface Entry {
  type: string;
  identity?: string;
  version?: string;
  family?: string;
  protocol?: string;
  address?: string;
  port?: number;
  responseAddress?: string;
  responsePort?: number;
  queryTime?: string;
  responseTime?: string;
  queryMessage?: string;
  responseMessage?: string;
  /** The question name as dnstap-ldns prints the message (in either message). */
  text: string;
}

/** What dnstap-ldns (the reference decoder, dnstap-ldns package) reads from a capture file. */
async function decode(file: string): Promise<Entry[]> {
  const { stdout } = await run('dnstap-ldns', ['-r', file, '-y'], { timeout: 15_000 });
  return stdout.split(/^---$/m).filter((s) => s.trim()).map((text) => {
    const field = (name: string) => new RegExp(`^ *${name}: (.*)$`, 'm').exec(text)?.[1]?.replace(/^"(.*)"$/, '$1');
    const block = (name: string) => new RegExp(`^  ${name}: \\|\\n((?: {4}.*\\n?|\\n)*)`, 'm').exec(text)?.[1];
    const port = field('query_port');
    const rport = field('response_port');
    return {
      type: /^ {2}type: (\w+)/m.exec(text)?.[1] ?? '?', identity: field('identity'), version: field('version'),
      family: field('socket_family'), protocol: field('socket_protocol'), address: field('query_address'),
      port: port === undefined ? undefined : Number(port), responseAddress: field('response_address'),
      responsePort: rport === undefined ? undefined : Number(rport), queryTime: field('query_time'), responseTime: field('response_time'),
      queryMessage: block('query_message'), responseMessage: block('response_message'), text,
    };
  });
}

/** The payloads of a Frame Streams file (its control frames skipped): for the one field dnstap-ldns does not print. */
function payloads(file: string): Buffer[] {
  const b = readFileSync(file);
  const out: Buffer[] = [];
  for (let off = 0; off + 4 <= b.length;) {
    const len = b.readUInt32BE(off);
    off += 4;
    if (len === 0) off += 4 + b.readUInt32BE(off);
    else out.push(b.subarray(off, (off += len)));
  }
  return out;
}

/** Field `n` (length-delimited) of a protobuf message, walking only its top level. */
function bytesField(msg: Buffer, n: number): Buffer | undefined {
  for (let off = 0; off < msg.length;) {
    const varint = () => {
      let v = 0;
      for (let m = 1; ; m *= 128) {
        const byte = msg[off++]!;
        v += (byte & 0x7f) * m;
        if (byte < 0x80) return v;
      }
    };
    const key = varint();
    const wire = key & 7;
    if (wire === 0) varint();
    else if (wire === 5) off += 4;
    else if (wire === 1) off += 8;
    else {
      const len = varint();
      if (key >> 3 === n) return msg.subarray(off, off + len);
      off += len;
    }
  }
  return undefined;
}

const named = (entries: Entry[], name: string) => entries.filter((e) => e.text.includes(`;${name}\t`));

t.test('dnstap: setup errors carry file:line', async (t) => {
  const rows: [string, RegExp][] = [
    ['dnstap', /Corefile:2 - Error during setup: plugin\/dnstap: wrong argument count: want SOCKET \[full\] \[WRITEBUFFER\] \[QUEUE\], got 0/],
    ['dnstap tcp://127.0.0.1', /Corefile:2 - Error during setup: plugin\/dnstap: invalid endpoint 'tcp:\/\/127.0.0.1' \(want tcp:\/\/HOST:PORT\)/],
    ['dnstap tcp://[::1:6000', /Corefile:2 - .*invalid endpoint 'tcp:\/\/\[::1:6000'/],
    ['dnstap unix://', /Corefile:2 - .*no socket path in 'unix:\/\/'/],
    ['dnstap /tmp/x.sock ful', /Corefile:2 - .*want 'full' after the socket, got 'ful'/],
    ['dnstap /tmp/x.sock full 1025 1', /WRITEBUFFER \(MiB\) must be between 1 and 1024: 1025/],
    ['dnstap /tmp/x.sock full 1 0', /QUEUE \(x10000 messages\) must be between 1 and 4096: 0/],
    ['dnstap /tmp/x.sock full x 1', /WRITEBUFFER \(MiB\) must be between 1 and 1024: x/],
    ['dnstap listen tcp://127.0.0.1:6000', /'dnstap listen' .* is not supported/],
    ['dnstap /tmp/x.sock {\n        identitiy NAME\n    }', /Corefile:3 - Error during setup: plugin\/dnstap: unknown property 'identitiy'/],
    ['dnstap /tmp/x.sock {\n        identity\n    }', /Corefile:3 - .*identity: wrong argument count: want IDENTITY, got 0/],
    ['dnstap /tmp/x.sock {\n        version a b\n    }', /Corefile:3 - .*version: wrong argument count: want VERSION, got 2/],
    ['dnstap /tmp/x.sock {\n        extra\n    }', /Corefile:3 - .*extra: wrong argument count/],
    ['dnstap /tmp/x.sock {\n        skipverify\n    }', /Corefile:3 - .*skipverify needs a tls:\/\/ SOCKET/],
    ['dnstap /tmp/x.sock {\n        tls cert key\n    }', /Corefile:3 - .*unknown property 'tls'/],
  ];
  for (const [line, re] of rows) await t.rejects(startServer(`. {\n    ${line}\n    whoami\n}\n`), re, line);
});

t.test('dnstap: encoding round trip against dnstap-ldns for IPv6 and large times', { skip }, async (t) => {
  // A file holding one hand-made frame, as fstrm_capture writes them: START, the data frame, STOP.
  const dir = tempDir('dnstap');
  const ct = Buffer.from('protobuf:dnstap.Dnstap');
  const start = Buffer.alloc(20 + ct.length);
  start.writeUInt32BE(12 + ct.length, 4);
  start.writeUInt32BE(2, 8);
  start.writeUInt32BE(1, 12);
  start.writeUInt32BE(ct.length, 16);
  ct.copy(start, 20);
  const payload = encodeDnstap({ identity: Buffer.from('id6'), version: Buffer.from('v6') }, {
    type: MESSAGE_TYPE.CLIENT_QUERY, family: 2, protocol: 2,
    queryAddress: Buffer.from('20010db8000000000000000000000053', 'hex'), queryPort: 65535, queryTime: Date.UTC(2099, 11, 31, 23, 59, 59, 999) + 0.5,
  });
  const frame = Buffer.alloc(4 + payload.length);
  frame.writeUInt32BE(payload.length, 0);
  payload.copy(frame, 4);
  const stop = Buffer.from([0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 3]);
  writeFileSync(join(dir, 'one.fstrm'), Buffer.concat([start, frame, stop]));
  const [e] = await decode(join(dir, 'one.fstrm'));
  t.equal(e?.type, 'CLIENT_QUERY');
  t.equal(e?.identity, 'id6');
  t.equal(e?.version, 'v6');
  t.equal(e?.family, 'INET6');
  t.equal(e?.protocol, 'TCP');
  t.equal(e?.address, '2001:db8::53');
  t.equal(e?.port, 65535);
  t.match(e?.queryTime, /2099-12-31 23:59:59\.9995/, 'seconds past 2^32 and the nanoseconds as fixed32');
});

t.test('dnstap: client queries and responses reach fstrm_capture over unix (full) and tcp', { skip }, async (t) => {
  const dir = tempDir('dnstap');
  const sock = join(dir, 'tap.sock');
  const tcpPort = await freePort();
  const unix = await startCapture(dir, 'unix', { unix: sock });
  t.teardown(() => unix.stop());
  const tcp = await startCapture(dir, 'tcp', { port: tcpPort });
  t.teardown(() => tcp.stop());
  const srv = await serveCli((port) => `.:${port} {
    bind 127.0.0.1
    dnstap unix://${sock} full {
        identity tap-one
        version tap-v1
        extra "x {type} {name} {rcode}"
    }
    dnstap tcp://127.0.0.1:${tcpPort}
    whoami
}
`.replace('bind 127.0.0.1', 'bind 127.0.0.1 ::1'));
  t.teardown(() => srv.stop());
  // Both outputs connect in the background; until then messages are dropped, like CoreDNS's.
  await waitFor('both outputs to connect', () => srv.output().includes(`Connected to dnstap endpoint unix://${sock}`)
    && srv.output().includes(`Connected to dnstap endpoint tcp://127.0.0.1:${tcpPort}`), 15_000, 50);
  const udpPort = await freePort();
  const tcpSrc = await freePort();
  const a = await dig(srv.port, ['-b', `127.0.0.1#${udpPort}`, 'udp.tap.example', 'A']);
  t.equal(a.status, 'NOERROR');
  const b = await dig(srv.port, ['-b', `127.0.0.1#${tcpSrc}`, '+tcp', 'tcp.tap.example', 'TXT']);
  t.equal(b.status, 'NOERROR');
  const v6 = await dig(srv.port, ['v6.tap.example', 'AAAA'], '::1');
  t.equal(v6.status, 'NOERROR');
  await terminate(srv);
  await unix.stop();
  await tcp.stop();

  const full = await decode(unix.file);
  const udp = named(full, 'udp.tap.example.');
  t.same(udp.map((e) => e.type), ['CLIENT_QUERY', 'CLIENT_RESPONSE'], 'a query then its response');
  for (const e of udp) {
    t.equal(e.identity, 'tap-one');
    t.equal(e.version, 'tap-v1');
    t.equal(e.family, 'INET');
    t.equal(e.protocol, 'UDP');
    t.equal(e.address, '127.0.0.1');
    t.equal(e.port, udpPort, 'the asker\'s source port');
    t.ok(e.queryTime, 'query time set');
  }
  const [uq, ur] = udp;
  t.match(uq!.queryMessage, /;udp\.tap\.example\.\tIN\tA/, '`full`: the query as received');
  t.notOk(uq!.responseMessage);
  t.notOk(uq!.responseTime, 'a query has no response time');
  t.match(ur!.responseMessage, /flags: qr aa rd/, '`full`: the response as sent');
  t.match(ur!.responseMessage, /udp\.tap\.example\.\t0\tIN\tA\t127\.0\.0\.1/, 'whoami\'s answer in it');
  t.notOk(ur!.queryMessage, 'the response message carries only the response (as CoreDNS)');
  t.ok(ur!.responseTime! >= ur!.queryTime!, 'response time not before query time');
  t.equal(ur!.queryTime, uq!.queryTime, 'both carry the time the query arrived');
  t.same(named(full, 'v6.tap.example.').map((e) => [e.type, e.family, e.address]),
    [['CLIENT_QUERY', 'INET6', '::1'], ['CLIENT_RESPONSE', 'INET6', '::1']], 'an IPv6 asker: 16-byte address, INET6');
  const overTcp = named(full, 'tcp.tap.example.');
  t.same(overTcp.map((e) => [e.type, e.protocol, e.port]), [['CLIENT_QUERY', 'TCP', tcpSrc], ['CLIENT_RESPONSE', 'TCP', tcpSrc]]);

  // dnstap-ldns does not print `extra`: read it from the protobuf, response labels are `-` as in CoreDNS.
  const extras = payloads(unix.file).map((p) => bytesField(p, 3)?.toString()).filter((x) => x?.includes('udp.tap'));
  t.same(extras, ['x A udp.tap.example. -', 'x A udp.tap.example. -']);

  // The second line gets every message too, without the DNS messages (so found by the asker's port) and with the defaults.
  const plain = await decode(tcp.file);
  const ptcp = plain.filter((e) => e.port === udpPort);
  t.same(ptcp.map((e) => e.type), ['CLIENT_QUERY', 'CLIENT_RESPONSE'], 'tcp:// output: same messages');
  for (const e of ptcp) {
    t.notOk(e.queryMessage ?? e.responseMessage, 'no `full`: no DNS message');
    t.match(e.version, /^clusterdns-/, 'default version');
    t.equal(e.port, udpPort);
  }
  t.same(payloads(tcp.file).filter((p) => bytesField(p, 3)), [], 'no `extra`: field left out');
});

t.test('dnstap: forward taps its exchanges with knotd, and a query a hung upstream never answered', { skip }, async (t) => {
  const knot = await startKnot({ zones: { 'example.org.': readFileSync(new URL('../zones/example.org.zone', import.meta.url), 'utf8') } });
  t.teardown(() => knot.stop());
  const hole = await startBlackhole();
  t.teardown(() => hole.stop());
  const dir = tempDir('dnstap');
  const sock = join(dir, 'fwd.sock');
  const cap = await startCapture(dir, 'fwd', { unix: sock });
  t.teardown(() => cap.stop());
  const srv = await serveCli((port) => `.:${port} {
    bind 127.0.0.1
    dnstap ${sock} full
    forward . ${knot.addr}
}
hung.example:${port} {
    bind 127.0.0.1
    dnstap ${sock}
    forward . ${hole.addr}
}
`, { probe: ['example.org', 'SOA'] });
  t.teardown(() => srv.stop());
  await waitFor('both outputs to connect', () => srv.output().split(`Connected to dnstap endpoint unix://${sock}`).length === 3, 15_000, 50);
  const r = await dig(srv.port, ['www.example.org', 'A']);
  t.equal(r.status, 'NOERROR');
  t.equal(r.answer.length, 2, 'knotd\'s answer relayed');
  const hung = await dig(srv.port, ['x.hung.example', 'A', '+time=10']);
  t.equal(hung.status, 'SERVFAIL');
  await terminate(srv);
  await cap.stop();

  const all = await decode(cap.file);
  const www = named(all, 'www.example.org.');
  t.same(www.map((e) => e.type), ['CLIENT_QUERY', 'FORWARDER_QUERY', 'FORWARDER_RESPONSE', 'CLIENT_RESPONSE'], 'CoreDNS\'s order');
  const [, fq, fr] = www;
  for (const e of [fq!, fr!]) {
    t.equal(e.responseAddress, '127.0.0.1', 'the upstream is the response address');
    t.equal(e.responsePort, knot.port);
    t.equal(e.protocol, 'UDP');
    t.equal(e.family, 'INET');
  }
  t.match(fq!.queryMessage, /;www\.example\.org\.\tIN\tA/);
  t.match(fr!.responseMessage, /flags: qr aa/, 'knotd\'s reply, authoritative');
  t.ok(fr!.responseTime! >= fr!.queryTime!);
  // The hung block's line has no `full`: its messages are found by the upstream's port.
  const toHole = all.filter((e) => e.responsePort === hole.port);
  t.ok(toHole.length >= 1, 'a FORWARDER_QUERY per try');
  t.same([...new Set(toHole.map((e) => e.type))], ['FORWARDER_QUERY'], 'no response from a hung upstream');
  t.ok(all.some((e) => e.type === 'CLIENT_RESPONSE' && !e.responseMessage && e.protocol === 'UDP'), 'the SERVFAIL to the client');
});

/** A TLS front for fstrm_capture's TCP port (fstrm_capture speaks no TLS), presenting `cert`. */
async function tlsFront(cert: string, key: string, to: number): Promise<{ port: number; close(): void }> {
  const conns: Socket[] = [];
  const srv = createTlsServer({ cert: readFileSync(cert), key: readFileSync(key) }, (c) => {
    const up = netConnect(to, '127.0.0.1');
    conns.push(c, up);
    c.pipe(up).on('error', () => c.destroy());
    up.pipe(c).on('error', () => up.destroy());
    c.on('error', () => up.destroy());
    up.on('error', () => c.destroy());
  });
  srv.on('tlsClientError', () => undefined);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    port: (srv.address() as { port: number }).port,
    close: () => {
      for (const c of conns) c.destroy();
      srv.close();
    },
  };
}

t.test('dnstap: tls:// collectors: the certificate is verified (IP SAN), skipverify takes any', { skip }, async (t) => {
  const good = await makePki(['IP:127.0.0.1']);
  t.teardown(good.cleanup);
  const wrong = await makePki(['other.example']);
  t.teardown(wrong.cleanup);
  const dir = tempDir('dnstap');
  writeFileSync(join(dir, 'cas.pem'), readFileSync(good.ca, 'utf8') + readFileSync(wrong.ca, 'utf8'));
  const capPort = await freePort();
  const cap = await startCapture(dir, 'tls', { port: capPort });
  t.teardown(() => cap.stop());
  const a = await tlsFront(good.cert, good.key, capPort);
  t.teardown(() => a.close());
  const b = await tlsFront(wrong.cert, wrong.key, capPort);
  t.teardown(() => b.close());
  // Both test CAs trusted by the server process: only the name decides.
  process.env.NODE_EXTRA_CA_CERTS = join(dir, 'cas.pem');
  const srv = await serveCli((port) => `.:${port} {
    bind 127.0.0.1
    dnstap tls://127.0.0.1:${a.port} {
        identity good
    }
    dnstap tls://127.0.0.1:${b.port} {
        identity wrong
    }
    dnstap tls://127.0.0.1:${b.port} {
        identity skipped
        skipverify
    }
    whoami
}
`).finally(() => { delete process.env.NODE_EXTRA_CA_CERTS; });
  t.teardown(() => srv.stop());
  await waitFor('two outputs to connect', () => srv.output().split('Connected to dnstap endpoint tls://').length === 3, 15_000, 50);
  t.match(srv.output(), new RegExp(`No connection to dnstap endpoint tls://127.0.0.1:${b.port}: .*(IP|altnames)`), 'a certificate for another name is refused');
  const udpPort = await freePort();
  t.equal((await dig(srv.port, ['-b', `127.0.0.1#${udpPort}`, 'tls.tap.example', 'A'])).status, 'NOERROR');
  await terminate(srv);
  await cap.stop();
  const ids = (await decode(cap.file)).filter((e) => e.port === udpPort).map((e) => `${e.identity} ${e.type}`).sort();
  t.same(ids, ['good CLIENT_QUERY', 'good CLIENT_RESPONSE', 'skipped CLIENT_QUERY', 'skipped CLIENT_RESPONSE']);
});

t.test('dnstap: the queue is bounded: what does not fit is dropped and counted, the rest arrives', { skip }, async (t) => {
  const dir = tempDir('dnstap');
  const sock = join(dir, 'q.sock');
  const cap = await startCapture(dir, 'queue', { unix: sock });
  t.teardown(() => cap.stop());
  const lines: string[] = [];
  let dropped = 0;
  const out = new TapOutput({ proto: 'unix', path: sock }, {
    capacity: 3, writeBuffer: 1 << 20, dropped: { inc: () => { dropped++; } },
    log: { info: (m) => lines.push(m), warn: (m) => lines.push(m), error: (m) => lines.push(m) },
  });
  t.teardown(() => out.close());
  out.start();
  await waitFor('the handshake', () => lines.some((l) => l.startsWith('Connected')));
  const src = { identity: Buffer.from('q'), version: Buffer.from('v') };
  // One turn of the event loop: nothing is written before it ends, so the queue holds the first three.
  for (let i = 0; i < 10; i++) {
    out.write(encodeDnstap(src, { type: MESSAGE_TYPE.CLIENT_QUERY, family: 1, protocol: 1, queryAddress: Buffer.from([10, 0, 0, i]), queryPort: 1000 + i }));
  }
  t.equal(dropped, 7, 'seven did not fit');
  await out.close();
  t.match(lines, ['Connected to dnstap endpoint unix://' + sock, 'Dropped dnstap messages: 7'], 'the drop is logged (at close, else every 10 s)');
  await cap.stop();
  t.same((await decode(cap.file)).map((e) => e.port), [1000, 1001, 1002], 'the queued ones, then STOP on close');
});

t.test('dnstap: a reload closes the old output and the new config taps with its own identity', { skip }, async (t) => {
  const dir = tempDir('dnstap');
  const sock = join(dir, 'reload.sock');
  const cap = await startCapture(dir, 'reload', { unix: sock });
  t.teardown(() => cap.stop());
  const corefile = (port: number, id: string) => `.:${port} {\n    bind 127.0.0.1\n    reload 2s 1s\n    dnstap ${sock} full {\n        identity ${id}\n    }\n    whoami\n}\n`;
  const srv = await serveCli((port) => corefile(port, 'before'));
  t.teardown(() => srv.stop());
  const connected = () => srv.output().split(`Connected to dnstap endpoint unix://${sock}`).length - 1;
  await waitFor('the output to connect', () => connected() === 1, 15_000, 50);
  t.equal((await dig(srv.port, ['one.tap.example', 'A'])).status, 'NOERROR');
  writeFileSync(join(srv.dir, 'Corefile'), corefile(srv.port, 'after'));
  await waitFor('the reloaded output to connect', () => connected() === 2, 30_000, 100);
  t.equal((await dig(srv.port, ['two.tap.example', 'A'])).status, 'NOERROR');
  await terminate(srv);
  await cap.stop();
  const all = await decode(cap.file);
  t.same(named(all, 'one.tap.example.').map((e) => e.identity), ['before', 'before'], 'the old output wrote its messages before closing');
  t.same(named(all, 'two.tap.example.').map((e) => e.identity), ['after', 'after']);
});

t.test('dnstap: no collector leaves answers alone; the output reconnects once one listens', { skip }, async (t) => {
  const dir = tempDir('dnstap');
  const sock = join(dir, 'late.sock');
  const metricsPort = await freePort();
  const srv = await serveCli((port) => `.:${port} {
    bind 127.0.0.1
    prometheus 127.0.0.1:${metricsPort}
    dnstap ${sock} full
    whoami
}
`);
  t.teardown(() => srv.stop());
  for (let i = 0; i < 20; i++) {
    const began = performance.now();
    const r = await dig(srv.port, [`dead${i}.tap.example`, 'A']);
    t.equal(r.status, 'NOERROR', `answer ${i} with no collector`);
    t.ok(performance.now() - began < 1500, 'answered at once (dig allows 2 s)');
  }
  await waitFor('the failure to be logged', () => srv.output().includes(`[ERROR] plugin/dnstap: No connection to dnstap endpoint unix://${sock}`));
  const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const dropped = new RegExp(`^coredns_dnstap_dropped_messages_total\\{endpoint="unix://${sock}"\\} (\\d+)$`, 'm').exec(metrics)?.[1];
  t.ok(Number(dropped) >= 40, `the query and the response of each of the 20 dropped and counted (${dropped})`);

  const cap = await startCapture(dir, 'late', { unix: sock });
  t.teardown(() => cap.stop());
  await waitFor('the output to reconnect', () => srv.output().includes(`Connected to dnstap endpoint unix://${sock}`), 20_000, 100);
  const r = await dig(srv.port, ['after.tap.example', 'A']);
  t.equal(r.status, 'NOERROR');
  await terminate(srv);
  await cap.stop();
  const entries = await decode(cap.file);
  t.same(named(entries, 'after.tap.example.').map((e) => e.type), ['CLIENT_QUERY', 'CLIENT_RESPONSE'], 'taps flow after the reconnect');
  t.same(entries.filter((e) => e.text.includes('dead')), [], 'what came while nobody listened was dropped, not queued');
});

t.test('dnstap: a collector that never answers READY does not slow answers', { skip }, async (t) => {
  const dir = tempDir('dnstap');
  const sock = join(dir, 'mute.sock');
  const conns: Socket[] = [];
  const mute = createServer((c) => { conns.push(c); });
  await new Promise<void>((r) => mute.listen(sock, r));
  t.teardown(() => {
    for (const c of conns) c.destroy();
    mute.close();
  });
  const srv = await serveCli((port) => `.:${port} {\n    bind 127.0.0.1\n    dnstap ${sock}\n    whoami\n}\n`);
  t.teardown(() => srv.stop());
  await waitFor('the output to connect', () => conns.length > 0);
  for (let i = 0; i < 10; i++) {
    const began = performance.now();
    t.equal((await dig(srv.port, [`mute${i}.tap.example`, 'A'])).status, 'NOERROR');
    t.ok(performance.now() - began < 1500, 'answered at once');
  }
  // The handshake gives up after 4 s and redials.
  await waitFor('the handshake timeout to be logged', () => srv.output().includes('no ACCEPT within 4s'), 15_000, 100);
  await waitFor('a redial', () => conns.length > 1, 15_000, 100);
});

t.test('dnstap: clusterdns check loads a Corefile with dnstap (and connects nowhere)', { skip }, async (t) => {
  const dir = tempDir('dnstap');
  const file = join(dir, 'Corefile');
  writeFileSync(file, `. {\n    dnstap ${join(dir, 'nobody.sock')} full {\n        identity x\n    }\n    dnstap tcp://127.0.0.1:9 {\n        extra "{name}"\n    }\n    whoami\n}\n`);
  const r = await run(process.execPath, [cli, 'check', '-conf', file], { timeout: 30_000 });
  t.equal(r.stdout, `${file}: OK (1 server block)\n`);
  t.equal(r.stderr, '', 'no connection attempt, so no dnstap error');
  writeFileSync(file, '. {\n    dnstap tcp://nowhere\n}\n');
  const bad = await run(process.execPath, [cli, 'check', '-conf', file], { timeout: 30_000 }).then(() => undefined, (e: { stderr: string; code: number }) => e);
  t.equal(bad?.code, 1);
  t.match(bad?.stderr, new RegExp(`${file}:2 - Error during setup: plugin/dnstap: invalid endpoint 'tcp://nowhere'`));
});
