/**
 * `npm run bench [dns] [--services N] [--endpoints N] [--seconds S] [--rounds R] [--no-workers]`
 * Every number is reported next to a reference measured in the same run (these machines are noisy).
 */
import { benchDns } from './dns.js';

function opt(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}

const suites = process.argv.slice(2).filter((a, i, all) => !a.startsWith('--') && !all[i - 1]?.startsWith('--'));
const want = (s: string) => suites.length === 0 || suites.includes(s);

async function main(): Promise<void> {
  const seconds = opt('seconds', 10);
  const rounds = opt('rounds', 3);
  if (want('dns')) {
    console.log(await benchDns({ services: opt('services', 1000), endpoints: opt('endpoints', 10), seconds, rounds, workers: !process.argv.includes('--no-workers') }));
  }
}

main().catch((e: Error) => {
  console.error(e.stack ?? e.message);
  process.exit(1);
});
