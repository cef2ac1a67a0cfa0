import dgram from 'node:dgram';
import { randomInt } from 'node:crypto';
import type { HostAndPort } from '../../pkg/ip.js';
import { CLASS, OPCODE, RCODE, rcodeName, TYPE } from '../../server/wire/constants.js';
import { decodeMessage, encodeMessage } from '../../server/wire/message.js';

/** CoreDNS sends a NOTIFY up to three times (miekg/dns's 2 s read timeout each) until one gets NOERROR. */
const TRIES = 3;
const TIMEOUT_MS = 2000;

/**
 * One NOTIFY (RFC 1996) for `zone` to `to` over UDP, from `source` when given; undefined once it was accepted,
 * else why not (CoreDNS's sendNotify).
 */
export async function sendNotify(zone: string, to: HostAndPort, source?: string): Promise<string | undefined> {
  const v6 = to.host.includes(':');
  const sock = dgram.createSocket(v6 ? 'udp6' : 'udp4');
  // A secondary that never answers must not keep a stopping process alive for the retries.
  sock.unref();
  let why = '';
  try {
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind({ address: source ?? (v6 ? '::' : '0.0.0.0'), port: 0 }, () => { sock.off('error', reject); resolve(); });
    });
    for (let i = 0; i < TRIES; i++) {
      const id = randomInt(0x10000);
      const query = encodeMessage({
        id, qr: false, opcode: OPCODE.NOTIFY, aa: true, rcode: 0, question: { name: zone, type: TYPE.SOA, class: CLASS.IN },
        answer: [], authority: [], additional: [],
      });
      const rcode = await exchange(sock, query, id, to);
      if (rcode === RCODE.NOERROR) return undefined;
      why = typeof rcode === 'number' ? `rcode was "${rcodeName(rcode)}"` : rcode;
    }
  } catch (e) {
    why = (e as Error).message;
  } finally {
    sock.close();
  }
  return `notify for zone "${zone}" was not accepted by "${to.host}:${to.port}": ${why}`;
}

/** Sends `query` and waits for the reply with its id: the rcode, or why none came. */
function exchange(sock: dgram.Socket, query: Buffer, id: number, to: HostAndPort): Promise<number | string> {
  return new Promise((resolve) => {
    const done = (r: number | string): void => {
      clearTimeout(timer);
      sock.off('message', onMessage);
      resolve(r);
    };
    const onMessage = (buf: Buffer, from: dgram.RemoteInfo): void => {
      if (from.port !== to.port) return;
      try {
        const m = decodeMessage(buf);
        if (m.id === id && m.qr) done(m.rcode);
      } catch { /* not a DNS reply: keep waiting for ours */ }
    };
    const timer = setTimeout(() => done('i/o timeout'), TIMEOUT_MS);
    timer.unref();
    sock.on('message', onMessage);
    sock.send(query, to.port, to.host, (e) => { if (e) done(e.message); });
  });
}
