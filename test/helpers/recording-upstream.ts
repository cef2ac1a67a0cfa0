import dgram from 'node:dgram';
import { encodeMessage } from '../../src/server/wire/message.js';
import { isParseFailure, parseQuery, type ParsedQuery } from '../../src/server/wire/query.js';
import { freePort } from './upstream.js';

/**
 * A UDP upstream on 127.0.0.1 that keeps every query it receives (as parsed) and answers NOERROR with an
 * empty answer: a capture point for what a plugin put on the wire (EDNS size, options, flags, class).
 */
export async function startRecorder(): Promise<{ port: number; addr: string; queries: ParsedQuery[]; stop(): Promise<void> }> {
  const port = await freePort();
  const queries: ParsedQuery[] = [];
  const udp = dgram.createSocket('udp4');
  udp.on('message', (buf, rinfo) => {
    const q = parseQuery(Buffer.from(buf));
    if (isParseFailure(q)) return;
    queries.push(q);
    udp.send(encodeMessage({
      id: q.id, rd: q.rd, ra: true, rcode: 0, question: { name: q.name, type: q.type, class: q.class },
      answer: [], authority: [], additional: [], edns: q.edns ? { udpSize: 1232, version: 0, do: false } : null,
    }), rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => udp.bind(port, '127.0.0.1', () => r()));
  return { port, addr: `127.0.0.1:${port}`, queries, stop: () => new Promise<void>((r) => udp.close(() => r())) };
}
