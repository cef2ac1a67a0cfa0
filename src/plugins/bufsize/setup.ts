import type { PluginDefinition } from '../../server/types.js';
import { SetupArgs } from '../../pkg/args.js';
import { Bufsize } from './handler.js';

/** DNS flag day 2020's recommendation (http://www.dnsflagday.net/2020/), CoreDNS's default. */
export const DEFAULT_BUFSIZE = 1232;

export const definition: PluginDefinition = {
  name: 'bufsize',
  setup(d) {
    const a = new SetupArgs('bufsize');
    const [text] = a.count(d, 0, 1, '[SIZE]');
    a.noBlock(d);
    if (text === undefined) return new Bufsize(DEFAULT_BUFSIZE);
    const size = /^\d+$/.test(text) ? Number(text) : NaN;
    // RFC 6891: 512 is the floor; above 4096 fragmentation is all but certain.
    if (!(size >= 512 && size <= 4096)) throw a.error(d, `SIZE must be a whole number from 512 to 4096, got '${text}'`);
    return new Bufsize(size);
  },
};
