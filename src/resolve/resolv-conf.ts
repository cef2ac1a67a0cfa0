/** resolv.conf as glibc and musl read it (resolv.conf(5)): the parts that decide which names get asked. */
export interface ResolvConf {
  nameservers: string[];
  search: string[];
  ndots: number;
  timeoutSec: number;
  attempts: number;
}

export function parseResolvConf(text: string): ResolvConf {
  const conf: ResolvConf = { nameservers: [], search: [], ndots: 1, timeoutSec: 5, attempts: 2 };
  for (const raw of text.split('\n')) {
    const line = raw.replace(/[#;].*$/, '').trim();
    if (!line) continue;
    const [key, ...args] = line.split(/\s+/);
    switch (key) {
      case 'nameserver':
        if (args[0] && conf.nameservers.length < 3) conf.nameservers.push(args[0]);
        break;
      // The last of `domain` and `search` wins (resolv.conf(5)).
      case 'domain':
        conf.search = args[0] ? [args[0]] : [];
        break;
      case 'search':
        conf.search = args.filter((d) => d !== '.');
        break;
      case 'options':
        for (const o of args) {
          const [k, v] = o.split(':');
          const n = Number(v);
          if (k === 'ndots' && Number.isInteger(n)) conf.ndots = Math.min(Math.max(n, 0), 15);
          else if (k === 'timeout' && Number.isInteger(n)) conf.timeoutSec = Math.min(Math.max(n, 1), 30);
          else if (k === 'attempts' && Number.isInteger(n)) conf.attempts = Math.min(Math.max(n, 1), 5);
        }
        break;
    }
  }
  if (!conf.nameservers.length) conf.nameservers.push('127.0.0.1');
  return conf;
}
