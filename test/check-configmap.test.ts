import t from 'tap';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import { corefileFromConfigMap } from '../src/corefile/configmap.js';
import { withoutDirectiveAt } from '../src/server/check.js';
import { tempDir } from './helpers/temp-dir.js';

/**
 * `clusterdns check` on a CoreDNS ConfigMap exactly as `kubectl get configmap coredns -n kube-system -o yaml`
 * prints it, before anything in the cluster changes: every directive that would not load, with the line of
 * the ConfigMap file and the reason; the built CLI, run as an operator would.
 */

const cli = resolve('dist/src/cli.js');
const fixtures = resolve('test/fixtures/configmaps');
const skip = !existsSync(cli) && 'dist/src/cli.js missing (run tsc -p . first)';

function check(file: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    // No KUBERNETES_SERVICE_HOST: the check runs on a workstation, not in a pod.
    const env = { ...process.env, KUBERNETES_SERVICE_HOST: '' };
    execFile(process.execPath, [cli, 'check', '-conf', file], { env, timeout: 30_000 }, (err, stdout, stderr) => {
      done({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

t.test("kubeadm's ConfigMap loads as is, its kubernetes block included (the pod's account is not checked off-cluster)", { skip }, async (t) => {
  const r = await check(join(fixtures, 'kubeadm.yaml'));
  t.equal(r.stderr, '');
  t.equal(r.stdout, `${join(fixtures, 'kubeadm.yaml')} (ConfigMap kube-system/coredns, lines 4-26): OK (1 server block)\n`);
  t.equal(r.code, 0);
});

t.test('a ConfigMap with plugins clusterdns lacks: every failing directive, its ConfigMap line, and why', { skip }, async (t) => {
  const file = join(fixtures, 'with-template.yaml');
  const r = await check(file);
  t.equal(r.code, 1);
  t.equal(r.stdout, '');
  const lines = readFileSync(file, 'utf8').split('\n');
  const reported = r.stderr.trim().split('\n');
  t.same(reported, [
    `${file}:33 - Error during parsing: Unknown directive 'dns64': CoreDNS has this plugin, clusterdns does not (see "How it compares with CoreDNS" in the README)`,
    `${file}:22 - Error during setup: plugin/forward: unknown policy 'fastest' (want random, round_robin or sequential)`,
  ]);
  // The lines named are the ConfigMap file's own.
  t.match(lines[32], /^\s+dns64 /);
  t.match(lines[21], /^\s+policy fastest$/);
});

t.test("AKS's ConfigMap (template blocks, import globs matching nothing) loads as is", { skip }, async (t) => {
  const file = join(fixtures, 'aks.yaml');
  const r = await check(file);
  t.equal(r.stdout, `${file} (ConfigMap kube-system/coredns, lines 4-31): OK (1 server block)\n`);
  t.match(r.stderr, 'No files matching import glob pattern: custom/*.override', 'the empty imports are warnings, as in CoreDNS');
  t.equal(r.code, 0);
});

t.test('kubectl -o json (quoted value): lines are counted within data.Corefile', { skip }, async (t) => {
  const dir = tempDir('check');
  const cm = parse(readFileSync(join(fixtures, 'with-template.yaml'), 'utf8'));
  const file = join(dir, 'coredns.json');
  writeFileSync(file, JSON.stringify(cm, null, 4));
  const r = await check(file);
  t.equal(r.code, 1);
  t.match(r.stderr, new RegExp(`^${file.replace(/[.]/g, '\\.')}#Corefile:30 - Error during parsing: Unknown directive 'dns64'`, 'm'));
});

t.test('a plain Corefile is still a Corefile; a ConfigMap without one is an error', { skip }, async (t) => {
  const dir = tempDir('check');
  writeFileSync(join(dir, 'Corefile'), '.:1053 {\n    whoami\n    bogus\n}\n');
  const plain = await check(join(dir, 'Corefile'));
  t.equal(plain.code, 1);
  t.equal(plain.stderr, `${join(dir, 'Corefile')}:3 - Error during parsing: Unknown directive 'bogus'\n`);
  writeFileSync(join(dir, 'cm.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: other\n  namespace: default\ndata:\n  resolv.conf: nameserver 192.0.2.1\n');
  const none = await check(join(dir, 'cm.yaml'));
  t.equal(none.code, 1);
  t.equal(none.stderr, `${join(dir, 'cm.yaml')}:7: ConfigMap default/other has no data.Corefile (keys: resolv.conf)\n`);
});

t.test('corefileFromConfigMap keeps the ConfigMap line numbers; withoutDirectiveAt keeps everyone else\'s', async (t) => {
  const text = readFileSync(join(fixtures, 'kubeadm.yaml'), 'utf8');
  const cm = corefileFromConfigMap(text, 'cm.yaml')!;
  t.equal(cm.name, 'kube-system/coredns');
  t.same(cm.lines, [4, 26]);
  const fileLines = text.split('\n');
  cm.text.split('\n').forEach((l, i) => { if (l.trim()) t.equal(fileLines[i]!.trim(), l.trim(), `line ${i + 1}`); });
  t.equal(corefileFromConfigMap('.:53 {\n    whoami\n}\n', 'Corefile'), undefined, 'a Corefile is not a ConfigMap');

  const without = withoutDirectiveAt(cm.text, 16)!; // lines 16-18: forward . /etc/resolv.conf { max_concurrent 1000 }
  const a = cm.text.split('\n');
  const b = without.split('\n');
  t.equal(b.length, a.length);
  t.match(a[15], /forward \. \/etc\/resolv\.conf \{/);
  t.same(b.slice(15, 18), ['', '', '']);
  t.same(a.filter((_, i) => i < 15 || i > 17), b.filter((_, i) => i < 15 || i > 17));
  t.equal(withoutDirectiveAt(cm.text, 2), undefined, 'nothing starts on a blank line');
});
