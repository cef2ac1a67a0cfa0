import t from 'tap';
import { readFileSync } from 'node:fs';
import { gaiBinary, inPodNamespace, podnsUnavailable, type PodRun } from './helpers/podns.js';

/**
 * Search path and ndots end to end: a pod's resolv.conf (ndots:5, three search domains), clusterdns on
 * 127.0.0.1:53 with the embedded snapshot and a forward upstream (knotd on 127.0.0.2:5300 serving
 * the root zone), queried by glibc getent, glibc and musl getaddrinfo, nslookup and dig +search.
 */
const skip = podnsUnavailable();
// Every case starts a real server in a fresh namespace: give the file room beyond tap's default.
t.setTimeout(600_000);
const snapshot = readFileSync(new URL('../zones/cluster.yaml', import.meta.url), 'utf8');

const v6only = `apiVersion: v1
kind: Service
metadata: { name: v6only, namespace: default }
spec:
  clusterIP: fd00:10:96::bee
  clusterIPs: [fd00:10:96::bee]
  ipFamilies: [IPv6]
  ports: [{ name: http, port: 80, protocol: TCP }]
`;

const knotConf = `server:
  rundir: "@DIR@/knot"
  listen: 127.0.0.2@5300
  udp-workers: 1
  tcp-workers: 1
  background-workers: 1
database:
  storage: "@DIR@/knot"
log:
  - target: stderr
    any: error
zone:
  - domain: .
    file: "@DIR@/root.zone"
    journal-content: none
`;

/** The upstream is authoritative for the root, so names that exist nowhere get NXDOMAIN like on the Internet. */
const rootZone = `$ORIGIN .
$TTL 300
@ IN SOA ns.example.com. admin.example.com. 1 7200 1800 86400 60
@ IN NS ns.example.com.
ns.example.com. IN A 127.0.0.2
www.example.com. IN A 192.0.2.10
api.example.com. IN A 192.0.2.20
api.example.com. IN AAAA 2001:db8::20
a.b.c.d.example.com. IN A 192.0.2.30
my.database.example.com. IN A 192.0.2.40
`;

const corefile = (autopath: boolean) => `.:53 {
  errors
  log
  ${autopath ? 'autopath @kubernetes' : ''}
  kubernetes cluster.local in-addr.arpa ip6.arpa {
    manifests manifests
    pods ${autopath ? 'verified' : 'insecure'}
    fallthrough in-addr.arpa ip6.arpa
  }
  forward . 127.0.0.2:5300
}
`;

/** The questions the server saw, in order: `A redis.default.svc.cluster.local.` (from the log plugin). */
function seen(run: PodRun): string[] {
  return [...run.serverLog.matchAll(/"(\w+) IN (\S+) (?:udp|tcp) /g)].map((m) => `${m[1]} ${m[2]}`)
    .filter((q) => !q.startsWith('HINFO') && !q.includes('dns-version') && q !== 'NS .');
}

/** The asking pod itself: autopath (pods verified) finds its namespace by the source address. */
const clientPod = `apiVersion: v1
kind: Pod
metadata: { name: client, namespace: default }
spec: { containers: [{ name: c, image: busybox }] }
status: { phase: Running, podIP: 127.0.0.1, podIPs: [{ ip: 127.0.0.1 }] }
`;

async function pod(commands: string[], autopath = false): Promise<PodRun> {
  return inPodNamespace({
    corefile: corefile(autopath),
    files: {
      'manifests/cluster.yaml': snapshot, 'manifests/v6only.yaml': v6only, 'manifests/client.yaml': clientPod,
      'knot.conf': knotConf, 'root.zone': rootZone,
    },
    // knotd resolves relative paths against its storage directory, not the working directory.
    before: 'mkdir -p knot; sed -i "s#@DIR@#$PWD#g" knot.conf; knotd -c knot.conf >knot.log 2>&1 & for i in $(seq 1 50); do dig @127.0.0.2 -p 5300 +time=1 +tries=1 +short www.example.com | grep -q . && break; sleep 0.1; done',
    commands,
  });
}

t.test('names resolve through the search path with every stub', { skip }, async (t) => {
  const glibc = gaiBinary('glibc');
  const musl = gaiBinary('musl');
  const cases: [string, string | RegExp][] = [
    ['redis', '10.103.50.52'],
    ['redis.default', '10.103.50.52'],
    ['redis.default.svc', '10.103.50.52'],
    ['redis.default.svc.cluster.local', '10.103.50.52'],
    ['redis.default.svc.cluster.local.', '10.103.50.52'],
    ['cluster-test-01-svc.cluster-test-01', '172.20.4.192'],
    ['web-0.web', /^10\./],
    ['v6only', 'fd00:10:96::bee'],
    ['www.example.com', '192.0.2.10'],
    ['a.b.c.d.example.com', '192.0.2.30'],
    ['my-service.prod', '192.0.2.40'],
  ];
  // getent ahosts passes AI_ADDRCONFIG: without a global IPv6 address it never asks AAAA, so the
  // IPv6-only Service goes through gethostbyname2 (`getent hosts`) instead.
  const cmds = cases.flatMap(([name]) => [`getent ${name === 'v6only' ? 'hosts' : 'ahosts'} ${name}`, `${glibc} ${name}`, `${musl} ${name}`]);
  const run = await pod(cmds);
  cases.forEach(([name, want], i) => {
    for (const [j, who] of ['getent', 'glibc gai', 'musl gai'].entries()) {
      const r = run.results[i * 3 + j]!;
      t.equal(r.code, 0, `${who} ${name} resolves`);
      const first = r.stdout.trim().split('\n')[0]?.split(/\s+/)[0] ?? '';
      if (typeof want === 'string') t.ok(r.stdout.includes(want), `${who} ${name} -> ${want} (got ${first})`);
      else t.match(first, want, `${who} ${name}`);
    }
  });
});

t.test('unknown names fail with "not found" for every stub', { skip }, async (t) => {
  const glibc = gaiBinary('glibc');
  const musl = gaiBinary('musl');
  const run = await pod(['getent ahosts nosuchsvc', `${glibc} nosuchsvc`, `${musl} nosuchsvc`, 'nslookup nosuchsvc', 'getent hosts nosuch.example.com']);
  t.equal(run.results[0]!.code, 2, 'getent exits 2 (not found)');
  t.match(run.results[1]!.stdout, /Name or service not known/);
  t.match(run.results[2]!.stdout, /Name does not resolve|not known/i);
  t.match(run.results[3]!.stdout, /NXDOMAIN|can't find/);
  t.equal(run.results[4]!.code, 2);
});

t.test('nslookup and dig +search: SRV, reverse, ExternalName', { skip }, async (t) => {
  const run = await pod([
    'nslookup -type=SRV _http._tcp.myweb-svc-multi',
    'nslookup 10.103.50.52',
    'nslookup my-service.prod',
    'dig +search +short redis',
    'dig +search +short -x 10.233.60.121',
    'dig +search my-service.prod',
  ]);
  t.match(run.results[0]!.stdout, /_http\._tcp\.myweb-svc-multi\.default\.svc\.cluster\.local\s+service = 0 \d+ 80 myweb-svc-multi\.default\.svc\.cluster\.local\./);
  t.match(run.results[1]!.stdout, /name = redis\.default\.svc\.cluster\.local\./);
  t.match(run.results[2]!.stdout, /canonical name = my\.database\.example\.com/);
  t.match(run.results[2]!.stdout, /Address: 192\.0\.2\.40/);
  t.equal(run.results[3]!.stdout.trim(), '10.103.50.52');
  t.equal(run.results[4]!.stdout.trim(), 'myweb-svc-multi.default.svc.cluster.local.');
  t.match(run.results[5]!.stdout, /my-service\.prod\.svc\.cluster\.local\.\s+\d+\s+IN\s+CNAME\s+my\.database\.example\.com\./);
});

t.test('the exact query sequence: redis and an external name, and clusterdns resolve agrees', { skip }, async (t) => {
  const glibc = gaiBinary('glibc');
  const musl = gaiBinary('musl');
  const steps = ['redis', 'www.example.com'];
  for (const bin of [glibc, musl]) {
    for (const name of steps) {
      const run = await pod([`${bin} ${name}`, `node ${new URL('../dist/src/cli.js', import.meta.url).pathname} resolve ${name} --resolv-conf /etc/resolv.conf --stub ${bin === musl ? 'musl' : 'glibc'}`]);
      const queries = seen(run);
      const half = queries.length / 2;
      const stubSaw = queries.slice(0, half);
      const resolveSaw = queries.slice(half);
      const expected = name === 'redis'
        ? ['redis.default.svc.cluster.local.']
        : ['www.example.com.default.svc.cluster.local.', 'www.example.com.svc.cluster.local.', 'www.example.com.cluster.local.', 'www.example.com.'];
      const names = [...new Set(stubSaw.map((q) => q.split(' ')[1]))];
      t.same(names, expected, `${bin === musl ? 'musl' : 'glibc'} ${name}: names in order`);
      t.equal(stubSaw.length, expected.length * 2, `${name}: an A and an AAAA per name (${stubSaw.length} queries)`);
      t.same([...resolveSaw].sort(), [...stubSaw].sort(), `clusterdns resolve sends the same queries for ${name}`);
      t.match(run.results[1]!.stdout, new RegExp(`after ${stubSaw.length} queries`));
    }
  }
});

t.test('autopath @kubernetes answers the first search name: 2 queries instead of 8', { skip }, async (t) => {
  const glibc = gaiBinary('glibc');
  const musl = gaiBinary('musl');
  for (const [bin, stub] of [[glibc, 'glibc'], [musl, 'musl']] as const) {
    const run = await pod([`${bin} www.example.com`, `${bin} redis`, `${bin} my-service.prod`, `${bin} nosuch.example.com`], true);
    const [ext, redis, extName, missing] = run.results;
    t.equal(ext!.stdout.trim(), '192.0.2.10', `${stub}: external name through autopath`);
    t.equal(redis!.stdout.trim(), '10.103.50.52', `${stub}: redis`);
    t.equal(extName!.stdout.trim(), '192.0.2.40', `${stub}: ExternalName in another namespace`);
    t.equal(missing!.code, 2, `${stub}: a name that exists nowhere still fails`);
    const queries = seen(run);
    const forName = (n: string) => queries.filter((q) => q.split(' ')[1]!.startsWith(n));
    t.same(forName('www.example.com').map((q) => q.split(' ')[1]), ['www.example.com.default.svc.cluster.local.', 'www.example.com.default.svc.cluster.local.'],
      `${stub}: the pod asked only its first search name (A+AAAA)`);
    t.equal(forName('redis').length, 2, `${stub}: redis costs 2 queries`);
  }
  const dig = await pod(['dig +search www.example.com'], true);
  t.match(dig.results[0]!.stdout, /www\.example\.com\.default\.svc\.cluster\.local\.\s+\d+\s+IN\s+CNAME\s+www\.example\.com\./, 'CNAME from the asked name');
});
