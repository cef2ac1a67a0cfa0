/** A plain stub-resolver query: UDP without EDNS like glibc/musl send it, TCP on TC when the stub does. */
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { CLASS } from '../server/wire/constants.js';
import { decodeMessage, encodeMessage, type Message } from '../server/wire/message.js';
import { StreamFrames, tcpFrame } from '../server/wire/stream.js';

export interface Server { host: string; port: number }

export function parseServer(s: string): Server {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(s) ?? /^([^:]+)(?::(\d+))?$/.exec(s);
  if (m) return { host: m[1]!, port: m[2] ? Number(m[2]) : 53 };
  return { host: s, port: 53 }; // bare IPv6
}

function udp(server: Server, query: Buffer, id: number, timeoutMs: number): Promise<Message> {
  return new Promise((resolve, reject) => {
    const sock = createSocket(server.host.includes(':') ? 'udp6' : 'udp4');
    const timer = setTimeout(() => { sock.close(); reject(new Error(`timeout after ${timeoutMs} ms`)); }, timeoutMs);
    sock.on('message', (buf) => {
      let m: Message;
      try {
        m = decodeMessage(buf);
      } catch {
        return; // not a DNS message: keep waiting like a stub would
      }
      if (m.id !== id) return;
      clearTimeout(timer);
      sock.close();
      resolve(m);
    });
    sock.on('error', (e) => { clearTimeout(timer); sock.close(); reject(e); });
    sock.send(query, server.port, server.host);
  });
}

function tcp(server: Server, query: Buffer, timeoutMs: number): Promise<Message> {
  return new Promise((resolve, reject) => {
    const sock = connect(server.port, server.host);
    const frames = new StreamFrames();
    sock.setTimeout(timeoutMs, () => { sock.destroy(); reject(new Error(`TCP timeout after ${timeoutMs} ms`)); });
    sock.on('error', reject);
    sock.on('data', (d) => {
      frames.push(d);
      const answer = frames.next();
      if (answer) {
        sock.end();
        try {
          resolve(decodeMessage(answer));
        } catch (e) {
          reject(e);
        }
      }
    });
    sock.write(tcpFrame(query));
  });
}

/** One question to one server; `tcpFallback` retries over TCP when the UDP answer is truncated. */
export async function ask(server: Server, name: string, type: number, opts: { timeoutMs: number; tcpFallback: boolean }): Promise<{ msg: Message; viaTcp: boolean }> {
  const id = Math.floor(Math.random() * 0x10000);
  const query = encodeMessage({ id, qr: false, rd: true, rcode: 0, question: { name, type, class: CLASS.IN }, answer: [], authority: [], additional: [] });
  const msg = await udp(server, query, id, opts.timeoutMs);
  if (msg.tc && opts.tcpFallback) return { msg: await tcp(server, query, opts.timeoutMs), viaTcp: true };
  return { msg, viaTcp: false };
}
