import t from 'tap';
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dig } from './helpers/dig.js';
import { startServer } from './helpers/server.js';
import { tempDir } from './helpers/temp-dir.js';

/* autopath @kubernetes in process: the asking pod (127.0.0.1, the dig client) is found through the AutoPather. */

const dir = tempDir('autopath');
copyFileSync(join(import.meta.dirname, '..', 'zones', 'cluster.yaml'), join(dir, 'cluster.yaml'));
writeFileSync(join(dir, 'pod.yaml'), `apiVersion: v1
kind: Pod
metadata: {name: client, namespace: default}
status: {phase: Running, podIP: 127.0.0.1}
`);
// A hostNetwork pod has its node's address (here 127.0.0.2), which says nothing about who asks from it.
writeFileSync(join(dir, 'node-agent.yaml'), `apiVersion: v1
kind: Pod
metadata: {name: node-agent, namespace: default}
spec: {hostNetwork: true}
status: {phase: Running, podIP: 127.0.0.2}
`);
const block = (autopath: string, pods: string) => `. {
  ${autopath}
  hosts {
    192.0.2.10 example.org
    fallthrough
  }
  kubernetes cluster.local {
    manifests ${dir}
    ${pods}
  }
}
`;

t.test('the first search name answers for the whole path, with a CNAME', async (t) => {
  const s = await startServer(block('autopath @kubernetes', 'pods verified'));
  t.teardown(() => s.stop());
  const svc = await dig(s.port, ['redis.default.default.svc.cluster.local.', 'A']);
  t.equal(svc.status, 'NOERROR');
  t.same(svc.answer.map((rr) => `${rr.name} ${rr.type} ${rr.data}`), [
    'redis.default.default.svc.cluster.local. CNAME redis.default.svc.cluster.local.',
    'redis.default.svc.cluster.local. A 10.103.50.52',
  ]);
  const ext = await dig(s.port, ['example.org.default.svc.cluster.local.', 'A']);
  t.same(ext.answer.map((rr) => `${rr.type} ${rr.data}`), ['CNAME example.org.', 'A 192.0.2.10'], 'the bare name, last in the path');
  t.equal((await dig(s.port, ['nosuch.default.svc.cluster.local.', 'A'])).status, 'NXDOMAIN', 'nothing on the path: the first answer');
  t.equal((await dig(s.port, ['redis.default.svc.cluster.local.', 'A'])).answer.length, 1, 'a name that exists answers as is');
});

t.test('no pod search path for an address hostNetwork pods share (CoreDNS #7122)', async (t) => {
  const s = await startServer(block('autopath @kubernetes', 'pods verified'));
  t.teardown(() => s.stop());
  const fromNode = await dig(s.port, ['-b', '127.0.0.2', 'redis.default.default.svc.cluster.local.', 'A']);
  t.equal(fromNode.status, 'NXDOMAIN', 'answered as asked, no search');
  t.same(fromNode.answer, []);
  t.equal((await dig(s.port, ['-b', '127.0.0.2', '1-2-3-4.default.pod.cluster.local.', 'A'])).status, 'NXDOMAIN', 'pods verified unchanged');
  t.same((await dig(s.port, ['-b', '127.0.0.2', '127-0-0-2.default.pod.cluster.local.', 'A'])).answer.map((rr) => rr.data), ['127.0.0.2'],
    'the hostNetwork pod still verifies its pod name');
  const fromPod = await dig(s.port, ['redis.default.default.svc.cluster.local.', 'A']);
  t.equal(fromPod.answer[0]?.type, 'CNAME', 'a pod of its own address still gets its path');
});

t.test('setup: @kubernetes needs the plugin and pods verified', async (t) => {
  await t.rejects(startServer(block('autopath @kubernetes', 'pods insecure')), /Corefile:2 .*plugin\/autopath: @kubernetes needs "pods verified"/);
  await t.rejects(startServer('. {\n  autopath @kubernetes\n  whoami\n}\n'), /Corefile:2 .*@kubernetes needs a kubernetes plugin in the same server block/);
  await t.rejects(startServer('. {\n  autopath @etcd\n  whoami\n}\n'), /unknown plugin 'etcd'/);
});
