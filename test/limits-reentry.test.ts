import t from 'tap';
import dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { MAX_REENTRIES } from '../src/server/dns-server.js';
import { CLASS, RCODE, TYPE } from '../src/server/wire/constants.js';
import { encodeMessage } from '../src/server/wire/message.js';
import { dig } from './helpers/dig.js';
import { sleep } from './helpers/wait.js';
import { startServer } from './helpers/server.js';

/**
 * Re-entry loops a tenant can build with Services alone: ExternalNames pointing at each other across two
 * cluster zones, or at a name that `rewrite` maps back onto the Service. Before the bound each such query
 * recursed until the stack overflowed (seconds of CPU, a 700-record answer); now it is SERVFAIL at once.
 */

const svc = (name: string, spec: string) => `---\napiVersion: v1\nkind: Service\nmetadata: {name: ${name}, namespace: ns}\nspec: ${spec}\n`;
const ext = (name: string, target: string) => svc(name, `{type: ExternalName, externalName: ${target}}`);
const zoneOf = (i: number) => (i % 2 ? 'cluster.local' : 'cluster2.local');

/** A chain of ExternalNames h1 -> h2 -> ... alternating between the two zones (every hop re-enters), ending at www.example. */
function chain(prefix: string, hops: number): string {
  let out = '';
  for (let i = 1; i <= hops; i++) out += ext(`${prefix}${i}`, i < hops ? `${prefix}${i + 1}.ns.svc.${zoneOf(i + 1)}` : 'www.example');
  return out;
}

const MANIFESTS = 'apiVersion: v1\nkind: Namespace\nmetadata: {name: ns}\n'
  + ext('a', 'b.ns.svc.cluster2.local') + ext('b', 'a.ns.svc.cluster.local')
  + ext('c', 'ext.example')
  + svc('ok', '{clusterIP: 10.0.0.5, ports: [{port: 80, name: http}]}')
  // h1 reaches www.example with MAX_REENTRIES re-entries (h2..h8 and www.example); g1 needs one more.
  + chain('h', MAX_REENTRIES) + chain('g', MAX_REENTRIES + 1);

const COREFILE = `. {
  errors
  cache 30
  rewrite name exact ext.example. c.ns.svc.cluster.local.
  hosts {
    192.0.2.7 www.example
    fallthrough
  }
  kubernetes cluster.local cluster2.local {
    manifests cluster.yaml
  }
}
z1.example {
  file z1.db
}
z2.example {
  file z2.db
}
`;

const soa = (z: string) => `$ORIGIN ${z}.\n@ 300 IN SOA ns.${z}. h.${z}. 1 7200 1800 86400 30\n@ 300 IN NS ns.${z}.\nns 300 IN A 192.0.2.53\n`;

function query(name: string, id: number): Buffer {
  return encodeMessage({ id, qr: false, rd: true, rcode: 0, question: { name, type: TYPE.A, class: CLASS.IN }, answer: [], authority: [], additional: [] });
}

t.test('ExternalName and CNAME loops through the server: SERVFAIL at once, bounded depth, no stack overflow', async (t) => {
  const s = await startServer(COREFILE, {
    files: {
      'cluster.yaml': MANIFESTS,
      'z1.db': soa('z1.example') + 'loop 300 IN CNAME loop.z2.example.\n',
      'z2.db': soa('z2.example') + 'loop 300 IN CNAME loop.z1.example.\n',
    },
  });
  t.teardown(() => s.stop());

  const shapes: [string, string][] = [
    ['a.ns.svc.cluster.local', 'two Services pointing at each other across two cluster zones'],
    ['c.ns.svc.cluster.local', 'a Service whose ExternalName rewrite maps back onto it'],
    ['ext.example', 'the rewritten name itself'],
    ['loop.z1.example', 'CNAMEs between two file zones'],
    [`g1.ns.svc.cluster.local`, `a chain of ${MAX_REENTRIES + 1} re-entries`],
  ];
  for (const [name, what] of shapes) {
    const started = performance.now();
    const r = await dig(s.port, [name]);
    const ms = performance.now() - started;
    t.equal(r.status, 'SERVFAIL', `${what}: SERVFAIL`);
    t.same(r.answer, [], `${what}: no partial chain`);
    t.ok(ms < 1500, `${what}: answered in ${ms.toFixed(0)} ms`);
  }

  const h = await dig(s.port, ['h1.ns.svc.cluster.local']);
  t.equal(h.status, 'NOERROR', `a chain of exactly ${MAX_REENTRIES} re-entries still resolves`);
  t.equal(h.answer.filter((rr) => rr.type === 'CNAME').length, MAX_REENTRIES, 'with every CNAME');
  t.same(h.answer.filter((rr) => rr.type === 'A').map((rr) => rr.data), ['192.0.2.7'], 'and the final address');

  // A burst of loop queries: each is cheap, and other names keep answering in the middle of it.
  const sock = dgram.createSocket('udp4');
  t.teardown(() => sock.close());
  const rcodes: number[] = [];
  sock.on('message', (m) => rcodes.push(m[3]! & 0xf));
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  const cpu = process.cpuUsage();
  const started = performance.now();
  for (let i = 0; i < 300; i++) {
    // A failed loop is not cached (the chain threw): every query walks the loop again.
    sock.send(query(i % 2 ? 'a.ns.svc.cluster.local' : 'ext.example', i), s.port, '127.0.0.1');
    if (i === 150) {
      const ok = await dig(s.port, ['ok.ns.svc.cluster.local', '+short']);
      t.equal(ok.raw.trim().split('\n').pop(), '10.0.0.5', 'a Service answers during the burst');
    }
    if (i % 50 === 49) await sleep(5);
  }
  for (let waited = 0; rcodes.length < 300 && waited < 5000; waited += 50) await sleep(50);
  const used = process.cpuUsage(cpu);
  t.equal(rcodes.length, 300, 'every loop query answered');
  t.ok(rcodes.every((r) => r === RCODE.SERVFAIL), 'all SERVFAIL');
  t.ok(performance.now() - started < 5000, `300 loop queries took ${(performance.now() - started).toFixed(0)} ms`);
  t.ok((used.user + used.system) / 1000 < 4000, `and ${((used.user + used.system) / 1000).toFixed(0)} ms of CPU (seconds each before)`);

  const panics = await s.server.registry.getSingleMetricAsString('coredns_panics_total');
  t.match(panics, /^coredns_panics_total 0$/m, 'no panic (stack overflow) on the way');
});
