import t from 'tap';
import { startServer } from './helpers/server.js';
import { dig } from './helpers/dig.js';
import { startKnot } from './helpers/upstream.js';
import { startRecorder } from './helpers/recording-upstream.js';
import { readFileSync } from 'node:fs';

const ZONE = readFileSync(new URL('../zones/example.org.zone', import.meta.url), 'utf8');
const flags = (f: string[]) => f.filter((x) => x !== 'qr').sort().join(' ');

t.test('header: response rules set and clear flags of every answer, last rule wins', async (t) => {
  const srv = await startServer(`example.org {
    header {
        response set ra aa
        response clear rd
        response set rd
        response clear aa
    }
    file db
}
`, { files: { db: ZONE } });
  t.teardown(() => srv.stop());
  const r = await dig(srv.port, ['www.example.org', 'A']);
  t.equal(r.status, 'NOERROR');
  t.equal(flags(r.flags), 'ra rd', 'aa cleared by the later rule, ra set (no forward), rd set again');
  t.equal(r.answer.length, 2);
  const nx = await dig(srv.port, ['nope.example.org', 'A', '+nordflag']);
  t.equal(nx.status, 'NXDOMAIN');
  t.equal(flags(nx.flags), 'ra rd', 'negative answers too, rd set though the query had none');
  const plain = await startServer('example.org {\n    file db\n}\n', { files: { db: ZONE } });
  t.teardown(() => plain.stop());
  t.equal(flags((await dig(plain.port, ['www.example.org', 'A'])).flags), 'aa rd', 'without header: the file plugin\'s own flags');
});

t.test('header: query rules change what the upstream and the echo see', async (t) => {
  const rec = await startRecorder();
  t.teardown(() => rec.stop());
  const srv = await startServer(`. {\n    header {\n        query clear rd\n    }\n    forward . ${rec.addr}\n}\n`);
  t.teardown(() => srv.stop());
  const r = await dig(srv.port, ['example.org', 'A']);
  t.equal(rec.queries.at(-1)!.rd, false, 'upstream got RD clear');
  t.equal(flags(r.flags), 'ra', 'the response echoes the changed RD, RA from forward');

  const knot = await startKnot({ zones: { 'example.org.': ZONE } });
  t.teardown(() => knot.stop());
  const set = await startServer(`. {\n    header {\n        query set rd\n        response clear ra\n    }\n    forward . ${knot.addr}\n}\n`);
  t.teardown(() => set.stop());
  const k = await dig(set.port, ['www.example.org', 'A', '+nordflag']);
  t.equal(k.status, 'NOERROR');
  t.equal(flags(k.flags), 'aa rd', 'knotd\'s AA kept, RD set by the query rule, RA cleared');
  t.equal(k.answer.length, 2);
});

t.test('header: two header lines, the first one wins a flag both name (CoreDNS nests their writers)', async (t) => {
  const srv = await startServer(`example.org {
    header {
        response clear aa
        response set ra
    }
    header {
        response set aa
        response clear rd ra
    }
    file db
}
`, { files: { db: ZONE } });
  t.teardown(() => srv.stop());
  t.equal(flags((await dig(srv.port, ['www.example.org', 'A'])).flags), 'ra', 'aa and ra from the first, rd cleared by the second');
});

t.test('header: bad config', async (t) => {
  const rows: [string, RegExp][] = [
    ['header', /Corefile:2 - Error during setup: plugin\/header: want a block of rules/],
    ['header x {\n        response set ra\n    }', /plugin\/header: takes no arguments, got 'x'/],
    ['header {\n        request set ra\n    }', /Corefile:3 - Error during setup: plugin\/header: invalid selector 'request': want query or response/],
    ['header {\n        response toggle ra\n    }', /unknown flag action 'toggle': want set or clear/],
    ['header {\n        response set\n    }', /response set: at least one flag/],
    ['header {\n        response set ad\n    }', /unknown or unsupported flag 'ad' \(want aa, ra or rd\)/],
  ];
  for (const [text, re] of rows) await t.rejects(startServer(`. {\n    ${text}\n    whoami\n}\n`), re, text);
});
