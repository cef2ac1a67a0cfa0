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

t.test('setup: @kubernetes needs the plugin and pods verified', async (t) => {
  await t.rejects(startServer(block('autopath @kubernetes', 'pods insecure')), /Corefile:2 .*plugin\/autopath: @kubernetes needs "pods verified"/);
  await t.rejects(startServer('. {\n  autopath @kubernetes\n  whoami\n}\n'), /Corefile:2 .*@kubernetes needs a kubernetes plugin in the same server block/);
  await t.rejects(startServer('. {\n  autopath @etcd\n  whoami\n}\n'), /unknown plugin 'etcd'/);
});
