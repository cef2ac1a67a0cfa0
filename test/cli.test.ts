import t from 'tap';
import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bool, list, parseFlags, port, text, UsageError, value } from '../src/pkg/flags.js';
import { VERSION } from '../src/pkg/version.js';
import { dig } from './helpers/dig.js';
import { freePort } from './helpers/upstream.js';
import { sleep } from './helpers/wait.js';
import { tempDir } from './helpers/temp-dir.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const cli = join(root, 'dist/src/cli.js');
const skip = !existsSync(cli) && 'dist/src/cli.js missing (run tsc -p . first)';

const FLAGS = {
  conf: text('Corefile'),
  'dns.port': value('port', port, { aliases: ['p'], default: 53 }),
  quiet: bool('quiet'),
  'node-ip': list('ips', (s) => s),
};

t.test('flag parser: Go flag semantics', async (t) => {
  const cases: [string[], object, string[]][] = [
    [['-conf', 'C'], { conf: 'C' }, []],
    [['--conf', 'C'], { conf: 'C' }, []],
    [['-conf=C=D'], { conf: 'C=D' }, []],
    [['--conf='], { conf: '' }, []],
    [['-conf', '-quiet'], { conf: '-quiet', quiet: false }, []],
    [['-quiet'], { quiet: true }, []],
    [['-quiet=false'], { quiet: false }, []],
    [['-quiet', 'false'], { quiet: true }, ['false']],
    [['-p', '1053'], { 'dns.port': 1053 }, []],
    [['-dns.port=0', '-p', '5'], { 'dns.port': 5 }, []],
    [[], { 'dns.port': 53, conf: undefined, quiet: false, 'node-ip': [] }, []],
    [['--node-ip', 'a,b', '-node-ip=c'], { 'node-ip': ['a', 'b', 'c'] }, []],
    [['x', '-quiet'], { quiet: false }, ['x', '-quiet']],
    [['-quiet', '--', '-conf'], { quiet: true, conf: undefined }, ['-conf']],
    [['-', '-quiet'], { quiet: false }, ['-', '-quiet']],
  ];
  for (const [argv, values, args] of cases) {
    const r = parseFlags(FLAGS, argv);
    t.match(r.values, values, argv.join(' '));
    t.same(r.args, args, `${argv.join(' ')}: arguments`);
  }
  t.same(parseFlags(FLAGS, ['x', '-quiet', 'y'], { interspersed: true }).args, ['x', 'y'], 'interspersed arguments');
  t.same([...parseFlags(FLAGS, ['-p', '1', '-quiet']).given].sort(), ['dns.port', 'quiet']);
  const errors: [string[], RegExp][] = [
    [['-bogus'], /^flag provided but not defined: -bogus$/],
    [['--bogus=1'], /^flag provided but not defined: --bogus$/],
    [['-conf'], /^flag needs an argument: -conf$/],
    [['-quiet=maybe'], /invalid boolean value 'maybe' for -quiet/],
    [['--dns.port', '70000'], /--dns.port: '70000' is not a port/],
    [['-p', 'x'], /-p: 'x' is not a port/],
  ];
  for (const [argv, want] of errors) t.throws(() => parseFlags(FLAGS, argv), want, argv.join(' '));
  t.throws(() => parseFlags(FLAGS, ['-x']), UsageError);
});

interface Run { code: number | null; stdout: string; stderr: string }

function run(args: string[], input?: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [cli, ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr });
    });
    child.stdin!.end(input ?? '');
  });
}

t.test('unknown flags and stray arguments: usage on stderr, exit 2, nothing started', { skip }, async (t) => {
  const cases = [['-bogus'], ['serve', '-bogus'], ['serve', '--conf', 'x', 'extra'], ['check', '-pidfile', 'x'],
    ['resolve', 'example.org', '-bogus'], ['vip', '-bogus'], ['-dns.port'], ['-workers', '0'], ['check', 'x']];
  const runs = await Promise.all(cases.map((args) => run(args)));
  cases.forEach((args, i) => {
    const r = runs[i]!;
    t.equal(r.code, 2, `${args.join(' ')}: exit 2`);
    t.equal(r.stdout, '', `${args.join(' ')}: nothing on stdout`);
    t.match(r.stderr, /^clusterdns[^\n]*: .+\n[\s\S]*Usage/, `${args.join(' ')}: message then usage`);
  });
  t.match(runs[0]!.stderr, /^clusterdns: flag provided but not defined: -bogus\n/);
  t.match(runs.at(-1)!.stderr, /^clusterdns check: extra command line arguments: x\n/);
});

t.test('-version, -help, -plugins', { skip }, async (t) => {
  const [v, h, p] = await Promise.all([run(['-version']), run(['--help']), run(['-plugins'])]);
  t.equal(v.code, 0);
  t.match(v.stdout, new RegExp(`^clusterdns-${VERSION.replaceAll('.', '\\.')}\\n${process.platform}/${process.arch}, node-v`));
  t.equal(VERSION, JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version);
  t.equal(h.code, 0);
  for (const f of ['-conf', '-dns.port, -p', '-pidfile', '-quiet', '-version', '-plugins']) t.match(h.stdout, `\n  ${f} `.trimEnd());
  // caddy.DescribePlugins: server types, loaders, then the plugins as `<server type>.<name>`, sorted.
  t.equal(p.code, 0);
  t.match(p.stdout, /^Server types:\n {2}dns\n\nCaddyfile loaders:\n {2}flag\n {2}default\n\nOther plugins:\n( {2}dns\.[a-z0-9_]+\n)+\n$/);
  const names = p.stdout.split('Other plugins:\n')[1]!.trim().split('\n').map((l) => l.trim());
  t.same(names, [...names].sort());
  for (const n of ['dns.kubernetes', 'dns.forward', 'dns.cache', 'dns.k8s_external', 'dns.whoami']) t.ok(names.includes(n), n);
});

t.test('check: -conf FILE, -conf stdin, -p', { skip }, async (t) => {
  const dir = tempDir('cli');
  const conf = join(dir, 'Corefile');
  writeFileSync(conf, '. {\n  whoami\n}\n');
  const [file, stdin, bad] = await Promise.all([run(['check', '-conf', conf, '-p', '1053']), run(['check', '--conf=stdin'], '. {\n  whoami\n}\n'),
    run(['check', '-conf', 'stdin'], '. {\n  nope\n}\n')]);
  t.match(file, { code: 0, stdout: `${conf}: OK (1 server block)\n` });
  t.match(stdin, { code: 0, stdout: 'stdin: OK (1 server block)\n' });
  t.match(bad, { code: 1, stderr: /stdin:2/ });
});

t.test('serve: -p, -pidfile written and removed on exit, -quiet', { skip, timeout: 60_000 }, async (t) => {
  const dir = tempDir('cli');
  const conf = join(dir, 'Corefile');
  writeFileSync(conf, '. {\n  bind 127.0.0.1\n  whoami\n}\n');
  for (const quiet of [true, false]) {
    const port = await freePort();
    const pidfile = join(dir, `coredns-${quiet}.pid`);
    const args = ['-conf', conf, quiet ? '-p' : '-dns.port', String(port), `--pidfile=${pidfile}`, ...(quiet ? ['-quiet'] : [])];
    const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL'); });
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += String(d); });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const deadline = Date.now() + 20_000;
    while (!existsSync(pidfile)) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`no pidfile:\n${stderr}`);
      await sleep(50);
    }
    t.equal(readFileSync(pidfile, 'utf8'), `${child.pid}\n`, 'pidfile holds the pid');
    t.equal((await dig(port, ['whoami.example', 'A'])).status, 'NOERROR', `answers on the ${quiet ? '-p' : '-dns.port'} port`);
    if (quiet) t.notMatch(stderr, /serving/, '-quiet: no start-up line');
    else t.match(stderr, `serving dns://:${port}`);
    child.kill('SIGTERM');
    t.equal(await exited, 0);
    t.notOk(existsSync(pidfile), 'pidfile removed on exit');
  }
});

t.test('resolve and vip parse through the same flags', { skip }, async (t) => {
  const [type, stub, mode, help] = await Promise.all([run(['resolve', 'example.org', '-type', 'BOGUS']), run(['resolve', '-stub=uclibc', 'x']),
    run(['vip', '-mode', 'ipvs']), run(['vip', '-help'])]);
  t.match(type, { code: 2, stderr: /^clusterdns resolve: -type: unknown type 'BOGUS'\n/ });
  t.match(stub, { code: 2, stderr: /-stub must be glibc or musl/ });
  t.match(mode, { code: 2, stderr: /^clusterdns vip: -mode: 'ipvs' is not supported/ });
  t.match(help, { code: 0, stdout: /--cluster-cidr CIDR/ });
});
