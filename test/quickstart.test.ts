import t from 'tap';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { podnsUnavailable } from './helpers/podns.js';

/**
 * The README's first two commands: `npm start` serves Corefile.example (port 1053, the zones/ snapshot).
 * Run in a private network namespace: its `forward . /etc/resolv.conf` and `loop` probe must not reach
 * any real resolver, and its fixed ports (8080, 8181, 9153) must not collide with the host's.
 */
const run = promisify(execFile);
const ROOT = new URL('../', import.meta.url).pathname;
const skip = podnsUnavailable();

t.test('clusterdns check accepts Corefile.example', async (t) => {
  const { stdout } = await run(process.execPath, ['dist/src/cli.js', 'check', '-conf', 'Corefile.example'], { cwd: ROOT });
  t.match(stdout, /OK/);
});

t.test('npm start answers the README queries', { skip, timeout: 120_000 }, async (t) => {
  const script = `set -u
ip link set lo up
npm start > /tmp/clusterdns-quickstart.$$.log 2>&1 &
for i in $(seq 1 150); do curl -sf localhost:8181/ready >/dev/null 2>&1 && break; sleep 0.1; done
echo "ready=$(curl -s -o /dev/null -w '%{http_code}' localhost:8181/ready)"
echo "health=$(curl -s localhost:8080/health)"
dig @127.0.0.1 -p 1053 +short myweb-svc-ses.default.svc.cluster.local
dig @127.0.0.1 -p 1053 +short -x 10.103.50.52
dig @127.0.0.1 -p 1053 +short my-service.prod.svc.cluster.local
dig @127.0.0.1 -p 1053 +short _http._tcp.myweb-svc-multi.default.svc.cluster.local SRV
curl -s localhost:9153/metrics | grep -c '^coredns_dns_requests_total'
`;
  const { stdout } = await run('unshare', ['--net', '--pid', '--mount', '--mount-proc', '--fork', 'bash', '-c', script], { cwd: ROOT, timeout: 110_000 });
  const lines = stdout.trim().split('\n');
  t.equal(lines[0], 'ready=200');
  t.equal(lines[1], 'health=OK');
  t.equal(lines[2], '10.233.24.46');
  t.equal(lines[3], 'redis.default.svc.cluster.local.');
  t.equal(lines[4], 'my.database.example.com.');
  t.match(lines[5], /^0 \d+ 80 myweb-svc-multi\.default\.svc\.cluster\.local\.$/);
  t.ok(Number(lines.at(-1)) > 0, 'metrics count the queries');
});
