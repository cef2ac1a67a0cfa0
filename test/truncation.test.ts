import t from 'tap';
import { gaiBinary, inPodNamespace, podnsUnavailable } from './helpers/podns.js';

/** A headless Service with 120 ready endpoints: the answer (1.9 kB) never fits 512 bytes of plain UDP. */
function bigHeadless(n: number): string {
  const eps = Array.from({ length: n }, (_, i) => `      - addresses: ["10.244.${i >> 8}.${(i & 255) + 1}"]\n        conditions: { ready: true }`).join('\n');
  return `apiVersion: v1
kind: Service
metadata: { name: big, namespace: default }
spec:
  clusterIP: None
  ports: [{ name: http, port: 80, protocol: TCP }]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: big-x1
  namespace: default
  labels: { kubernetes.io/service-name: big }
addressType: IPv4
ports: [{ name: http, port: 80, protocol: TCP }]
endpoints:
${eps}
`;
}

const skip = podnsUnavailable();
/** Answer records in dig output (the question line starts with ';'). */
const aRecords = (out: string) => (out.match(/^[^;\s]\S*\s+\d+\s+IN\s+A\s/gm) ?? []).length;
const N = 120;

t.test('large answers: glibc retries over TCP, musl keeps what fit', { skip }, async (t) => {
  const glibc = gaiBinary('glibc');
  const musl = gaiBinary('musl');
  const run = await inPodNamespace({
    corefile: `.:53 {\n  log\n  kubernetes cluster.local {\n    manifests big.yaml\n  }\n}\n`,
    files: { 'big.yaml': bigHeadless(N) },
    commands: [
      'dig +noedns +ignore big.default.svc.cluster.local',
      'dig +noedns big.default.svc.cluster.local',
      `${glibc} big`,
      `${musl} big`,
      'getent ahostsv4 big.default.svc.cluster.local',
    ],
  });
  const [udpOnly, digTcp, g, m, getent] = run.results;
  t.match(udpOnly!.stdout, /flags: qr aa tc rd|flags: qr tc aa rd|flags:[^;]*\btc\b/, 'UDP answer has TC');
  const udpCount = aRecords(udpOnly!.stdout);
  t.ok(udpCount > 10 && udpCount < N, `truncated UDP answer still carries ${udpCount} records (not zero)`);
  const tcpCount = aRecords(digTcp!.stdout);
  t.equal(tcpCount, N, `dig retried over TCP and got ${tcpCount}`);
  t.equal(g!.code, 0, 'glibc getaddrinfo resolves');
  t.equal(g!.stdout.trim().split('\n').length, N, 'glibc got every address (TC -> TCP)');
  t.equal(m!.code, 0, `musl getaddrinfo resolves: ${m!.stdout}`);
  const muslCount = m!.stdout.trim().split('\n').length;
  t.ok(muslCount > 10 && muslCount <= N, `musl got ${muslCount} addresses from the truncated UDP answer`);
  t.equal(getent!.stdout.trim().split('\n').filter((l) => /STREAM/.test(l)).length, N, 'getent ahostsv4 lists all');
  t.match(run.serverLog, /"A IN big\.default\.svc\.cluster\.local\. tcp/, 'the server saw the TCP retry');
});
