import t from 'tap';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadManifests, validateManifest } from './helpers/k8s-schema.js';
import { tempDir } from './helpers/temp-dir.js';

/**
 * Every object under deploy/ (monitoring/ included) is valid against the Kubernetes API schemas, offline:
 * the checks `kubectl apply` would have the API server make (types, enums, required fields, unknown fields),
 * so a typo in a manifest fails `npm test` instead of a rollout.
 */

const manifests = loadManifests(resolve('deploy'));

t.test('every manifest in deploy/ passes the API schema, strict about unknown fields', async (t) => {
  t.ok(manifests.length >= 12, `${manifests.length} objects`);
  for (const m of manifests) {
    t.same(await validateManifest(m), [], `${m.file}: ${m.object.kind} ${m.object.metadata.name}`);
  }
});

t.test('the validator rejects what the API server would, with file:line', async (t) => {
  const dir = tempDir('schema');
  mkdirSync(join(dir, 'deploy'));
  writeFileSync(join(dir, 'deploy', 'bad.yaml'), `apiVersion: apps/v1
kind: Deployment
metadata:
  name: bad
spec:
  replica: 2
  selector:
    matchLabels: {app: bad}
  template:
    metadata:
      labels: {app: bad}
    spec:
      containers:
        - name: c
          image: example/c
          ports:
            - containerPort: dns
          securityContext:
            capabilities:
              add: NET_BIND_SERVICE
---
apiVersion: v1
kind: Service
metadata:
  name: nosvc
spec:
  ports:
    - port: 53
      protocol: UDPP
---
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: rules
spec:
  groups:
    - name: g
      rules:
        - alert: A
          expr: up == 0
          for: five minutes
`);
  const problems = (await Promise.all(loadManifests(join(dir, 'deploy'), dir).map(validateManifest))).flat();
  const has = (re: RegExp) => t.ok(problems.some((p) => re.test(p)), `${re} in\n${problems.join('\n')}`);
  has(/^deploy\/bad\.yaml:6: Deployment bad: unknown field "spec\.replica"$/);
  has(/^deploy\/bad\.yaml:17: Deployment bad: \/spec\/template\/spec\/containers\/0\/ports\/0\/containerPort must be integer$/);
  has(/^deploy\/bad\.yaml:20: .*capabilities\/add must be array/);
  has(/^deploy\/bad\.yaml:29: Service nosvc: .*protocol must be equal to one of the allowed values/);
  has(/^deploy\/bad\.yaml:41: PrometheusRule rules: .*\/for must match pattern/);
});
