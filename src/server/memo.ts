import { LRUCache } from 'lru-cache';
import type { Message } from './wire/message.js';

/** Estimated heap bytes of a Message object graph besides its records: question, sections, Reply, memo key. */
const MESSAGE_BYTES = 1024;
/** ...per record: the RR, its data object and name strings, and its share of the memoised encoding. */
const RECORD_BYTES = 200;

/** Rough heap bytes a Message held in a memo keeps alive, the encoding the server memoises on it included. */
export function messageBytes(m: Message): number {
  return MESSAGE_BYTES + RECORD_BYTES * (m.answer.length + m.authority.length + m.additional.length);
}

/**
 * A plugin's memo of finished answers (so the same Message object, and with it the server's memoised
 * encoding, serves the same question again), bounded by entries and estimated bytes: keys are names
 * askers choose, and a memo that grows with them is a memory leak any client can drive.
 */
export function answerMemo<V extends {}>(maxEntries: number, maxBytes: number, bytes: (v: V) => number): LRUCache<string, V> {
  return new LRUCache<string, V>({ max: maxEntries, maxSize: maxBytes, sizeCalculation: (v) => Math.max(1, bytes(v)) });
}
