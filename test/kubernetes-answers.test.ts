import t from 'tap';
import { copyFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { checkCases, inProcessServer, type Answer, type InProcessServer } from './helpers/in-process.js';
import { tempDir } from './helpers/temp-dir.js';
import { answerCases, defaultNs, mainCorefile, normaliseSerial, optionCases, optionsCorefile } from './fixtures/kubernetes/cases.js';
import { EXTERNAL_LB_FIXTURE, externalCases, externalCorefile } from './fixtures/kubernetes/external-cases.js';

/*
 * The answer tables of the kubernetes and k8s_external plugins asked in-process (no sockets, no dig): the
 * fast check while working on answer building. test/kubernetes.test.ts and kubernetes-external.test.ts
 * ask the same tables with real dig over UDP.
 */

const root = join(import.meta.dirname, '..');
const dir = tempDir('k8s-answers');
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
copyFileSync(join(root, 'zones', 'cluster.yaml'), join(dir, 'cluster.yaml'));
copyFileSync(join(root, 'test', 'fixtures', 'kubernetes', 'edge-cases.yaml'), join(dir, 'edge-cases.yaml'));
const externalDir = tempDir('k8s-external');
t.teardown(() => rmSync(externalDir, { recursive: true, force: true }));
copyFileSync(join(root, 'zones', 'cluster.yaml'), join(externalDir, 'cluster.yaml'));
copyFileSync(join(root, 'test', 'fixtures', 'kubernetes', EXTERNAL_LB_FIXTURE), join(externalDir, EXTERNAL_LB_FIXTURE));

const normalised = (srv: InProcessServer) => async (q: string, type: string): Promise<Answer> => {
  const r = await srv.ask(q, type);
  return { ...r, answer: r.answer.map(normaliseSerial), ns: r.ns.map(normaliseSerial), extra: r.extra.map(normaliseSerial) };
};

t.test(`kubernetes answers (${answerCases.length} cases, in-process)`, async (t) => {
  const srv = await inProcessServer(mainCorefile(dir));
  t.teardown(() => srv.close());
  await checkCases(t, normalised(srv), answerCases, defaultNs);
  const aa = await Promise.all(answerCases.map(async (c) => (await srv.ask(c.q, c.type)).aa));
  t.ok(aa.every(Boolean), 'every answer is authoritative');
});

t.test(`kubernetes options (${optionCases.length} cases, in-process)`, async (t) => {
  const srv = await inProcessServer(optionsCorefile(dir));
  t.teardown(() => srv.close());
  await checkCases(t, normalised(srv), optionCases);
});

t.test(`k8s_external answers (${externalCases.length} cases, in-process)`, async (t) => {
  const srv = await inProcessServer(externalCorefile(externalDir));
  t.teardown(() => srv.close());
  await checkCases(t, normalised(srv), externalCases);
});
