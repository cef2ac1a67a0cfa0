import t, { type Test } from 'tap';
import { createSocket } from 'node:dgram';
import { resolve } from 'node:path';
import { TYPE } from '../src/server/wire/constants.js';
import { encodeMessage, type Message } from '../src/server/wire/message.js';
import { decodeBoth } from './helpers/second-decoder.js';
import { startServer } from './helpers/server.js';

/** Every message our codec writes, read back by dns2 (an independent decoder) and compared with ours. */

function same(t: Test, what: string, wire: Buffer): void {
  const { ours, theirs } = decodeBoth(wire);
  t.same(theirs.errors, [], `${what}: dns2 decodes every record`);
  const { errors: _, ...rest } = theirs;
  t.same(rest, ours, `${what}: dns2 reads what we read`);
}

const base = (over: Partial<Message>): Message =>
  ({ id: 7, qr: true, rd: true, ra: true, rcode: 0, question: { name: 'Foo.Example.', type: TYPE.A, class: 1 }, answer: [], authority: [], additional: [], ...over });

t.test('encoded messages: every record type, compression, TC, EDNS, extended rcode', async (t) => {
  const soa = { name: 'example.', type: TYPE.SOA, ttl: 5, data: { mname: 'ns.dns.example.', rname: 'hostmaster.example.', serial: 9, refresh: 7200, retry: 1800, expire: 86400, minimum: 5 } };
  const many = Array.from({ length: 100 }, (_, i) => ({ name: 'big.example.', type: TYPE.A, ttl: 5, data: `10.0.${i >> 8}.${i & 255}` }));
  const cases: [string, Message, number?][] = [
    ['all types', base({
      aa: true, question: { name: 'Foo.Example.', type: TYPE.SRV, class: 1 },
      answer: [
        { name: 'foo.example.', type: TYPE.SRV, ttl: 5, data: { priority: 0, weight: 50, port: 80, target: 'foo.example.' } },
        { name: 'foo.example.', type: TYPE.TXT, ttl: 5, data: ['hello', 'x'.repeat(300), ''] },
        { name: 'foo.example.', type: TYPE.AAAA, ttl: 5, data: 'fd00::1' },
        { name: 'foo.example.', type: TYPE.AAAA, ttl: 5, data: '::ffff:10.1.2.3' },
        { name: 'foo.example.', type: TYPE.A, ttl: 2147483647, data: '10.0.0.1' },
        { name: 'foo.example.', type: TYPE.CNAME, ttl: 5, data: 'bar.other.' },
        { name: '4.3.2.1.in-addr.arpa.', type: TYPE.PTR, ttl: 5, data: 'foo.example.' },
        { name: 'example.', type: TYPE.MX, ttl: 5, data: { preference: 10, exchange: 'mail.example.' } },
        { name: 'example.', type: TYPE.NS, ttl: 5, data: 'ns.dns.example.' },
      ],
      authority: [soa],
      additional: [{ name: 'foo.example.', type: 65280, ttl: 1, data: Buffer.from([1, 2, 3]) }],
      edns: { udpSize: 1232, version: 0, do: true },
    })],
    ['NXDOMAIN with SOA', base({ rcode: 3, authority: [soa] })],
    ['BADVERS (extended rcode in OPT)', base({ rcode: 16, edns: { udpSize: 1232, version: 0, do: false } })],
    ['truncated to 512', base({ question: { name: 'big.example.', type: TYPE.A, class: 1 }, answer: many }), 512],
    ['truncated with OPT', base({ question: { name: 'big.example.', type: TYPE.A, class: 1 }, answer: many, edns: { udpSize: 512, version: 0, do: false } }), 512],
    ['root question, no records', base({ question: { name: '.', type: TYPE.NS, class: 1 } })],
  ];
  for (const [name, m, max] of cases) same(t, name, encodeMessage(m, max));
});

function ask(port: number, name: string, type: number, edns?: Message['edns']): Promise<Buffer> {
  const s = createSocket('udp4');
  return new Promise<Buffer>((resolveReply, reject) => {
    const timer = setTimeout(() => { s.close(); reject(new Error(`no answer for ${name} ${type}`)); }, 3000);
    s.once('message', (b) => { clearTimeout(timer); s.close(); resolveReply(b); });
    s.send(encodeMessage({ id: 99, qr: false, rd: true, rcode: 0, question: { name, type, class: 1 }, answer: [], authority: [], additional: [], ...(edns ? { edns } : {}) }), port, '127.0.0.1');
  });
}

t.test('answers of a running server (hosts, kubernetes, file, whoami)', async (t) => {
  // One block: with port 0, each server block would get a port of its own.
  const srv = await startServer(`. {\n  hosts {\n    192.0.2.7 a.hosts.test\n    2001:db8::7 a.hosts.test\n    fallthrough\n  }\n` +
    `  kubernetes cluster.local 10.in-addr.arpa {\n    manifests ${resolve('zones/cluster.yaml')}\n    pods insecure\n  }\n` +
    `  file ${resolve('zones/example.org.zone')} example.org\n  whoami\n}\n`);
  t.teardown(() => srv.stop());
  const k = (n: string) => `${n}.svc.cluster.local.`;
  const queries: [string, number][] = [
    [k('myweb-svc-ses.default'), TYPE.A], [k('myweb-svc-ses.default'), TYPE.AAAA], [k('myweb-svc-ses.default'), TYPE.SRV],
    [`_http._tcp.${k('myweb-svc-multi.default')}`, TYPE.SRV], ['52.50.103.10.in-addr.arpa.', TYPE.PTR],
    [k('my-service.prod'), TYPE.A], [`web-0.${k('web.default')}`, TYPE.A], [k('web.default'), TYPE.A], [k('web.default'), TYPE.SRV],
    [k('dual.default'), TYPE.AAAA], [k('nothing.default'), TYPE.A], ['cluster.local.', TYPE.SOA], ['cluster.local.', TYPE.NS],
    ['example.org.', TYPE.SOA], ['example.org.', TYPE.NS], ['example.org.', TYPE.MX], ['example.org.', TYPE.TXT], ['Www.Example.Org.', TYPE.A],
    ['www.example.org.', TYPE.AAAA], ['blog.example.org.', TYPE.A], ['docs.example.org.', TYPE.A], ['x.apps.example.org.', TYPE.TXT],
    ['host.lab.example.org.', TYPE.A], ['opaque.example.org.', 65280], ['_https._tcp.example.org.', TYPE.SRV], ['b.deep.example.org.', TYPE.A],
    ['missing.example.org.', TYPE.A], ['a.hosts.test.', TYPE.A], ['a.hosts.test.', TYPE.AAAA], ['whoami.test.', TYPE.A], ['elsewhere.', TYPE.A],
  ];
  for (const [name, type] of queries) {
    same(t, `${name} ${type}`, await ask(srv.port, name, type));
    same(t, `${name} ${type} EDNS 512 DO`, await ask(srv.port, name, type, { udpSize: 512, version: 0, do: true }));
  }
});
