import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dig } from './helpers/dig.js';
import { startServer } from './helpers/server.js';
import { tempDir } from './helpers/temp-dir.js';
import { startUnbound } from './helpers/upstream.js';

/* Names outside the zone (ExternalName targets, balancer hostnames) chased through forward to a real unbound. */

const dir = tempDir('extname');
writeFileSync(join(dir, 'cluster.yaml'), `apiVersion: v1
kind: Namespace
metadata: {name: default}
---
apiVersion: v1
kind: Service
metadata: {name: big, namespace: default}
spec: {type: ExternalName, externalName: big.example.net}
---
apiVersion: v1
kind: Service
metadata: {name: small, namespace: default}
spec: {type: ExternalName, externalName: small.example.net}
---
apiVersion: v1
kind: Service
metadata: {name: big-lb, namespace: default}
spec: {type: LoadBalancer, clusterIP: 10.96.0.77, ports: [{name: http, port: 80}]}
status: {loadBalancer: {ingress: [{hostname: big.example.net}]}}
`);

// 4096 A records (unbound's RRset limit) do not fit a 64 KiB message: unbound answers TC even over TCP.
const big = Array.from({ length: 4096 }, (_, i) => `big.example.net. 300 IN A 10.0.${i >> 8}.${i & 255}`);
const up = await startUnbound([...big, 'small.example.net. 300 IN A 192.0.2.7']);
t.teardown(up.stop);
const srv = await startServer(`. {
  k8s_external example.com
  kubernetes cluster.local {
    manifests ${dir}
  }
  forward . ${up.addr}
}
`);
t.teardown(srv.stop);

t.test('a truncated upstream answer for the target sets TC on the reply (CoreDNS backend_lookup)', async (t) => {
  for (const proto of ['+notcp', '+tcp']) {
    const r = await dig(srv.port, ['big.default.svc.cluster.local', 'A', proto, '+ignore']);
    t.equal(r.status, 'NOERROR', proto);
    t.ok(r.flags.includes('tc'), `${proto}: TC set`);
    t.same(r.answer.map((rr) => `${rr.type} ${rr.data}`), ['CNAME big.example.net.'], `${proto}: the CNAME and what the upstream gave (nothing)`);
  }
  const small = await dig(srv.port, ['small.default.svc.cluster.local', 'A', '+ignore']);
  t.notOk(small.flags.includes('tc'), 'a whole upstream answer: no TC');
  t.same(small.answer.map((rr) => `${rr.type} ${rr.data}`), ['CNAME small.example.net.', 'A 192.0.2.7']);
});

t.test('k8s_external: a truncated answer for a balancer hostname sets TC too (CoreDNS k8s_external a())', async (t) => {
  const r = await dig(srv.port, ['big-lb.default.example.com', 'A', '+ignore']);
  t.equal(r.status, 'NOERROR');
  t.ok(r.flags.includes('tc'), 'TC set');
  t.same(r.answer.map((rr) => `${rr.type} ${rr.data}`), ['CNAME big.example.net.']);
});
