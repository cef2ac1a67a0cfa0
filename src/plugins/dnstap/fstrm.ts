/**
 * Frame Streams (github.com/farsightsec/fstrm, "Frame Streams Control Frames"): the framing dnstap travels in.
 * A data frame is a 32-bit big-endian length and the payload; a control frame is an escape (a zero length),
 * its own length, a 32-bit type and fields (type, length, value). The bidirectional handshake a writer does:
 * READY (content types) -> reader's ACCEPT -> START (content type), data frames, STOP -> reader's FINISH.
 */

export const CONTROL = { ACCEPT: 1, START: 2, STOP: 3, READY: 4, FINISH: 5 } as const;
const FIELD_CONTENT_TYPE = 1;
/** fstrm's limit on a control frame; a longer one is not Frame Streams. */
const MAX_CONTROL_LENGTH = 512;

/** A control frame of `type` naming `contentType` (READY, ACCEPT, START) or nothing (STOP, FINISH). */
export function controlFrame(type: number, contentType?: string): Buffer {
  const field = contentType === undefined ? Buffer.alloc(0) : Buffer.from(contentType);
  const fieldLength = contentType === undefined ? 0 : 8 + field.length;
  const out = Buffer.alloc(12 + fieldLength);
  out.writeUInt32BE(0, 0);
  out.writeUInt32BE(4 + fieldLength, 4);
  out.writeUInt32BE(type, 8);
  if (contentType !== undefined) {
    out.writeUInt32BE(FIELD_CONTENT_TYPE, 12);
    out.writeUInt32BE(field.length, 16);
    field.copy(out, 20);
  }
  return out;
}

/** `payload` as a data frame. */
export function dataFrame(payload: Buffer): Buffer {
  const out = Buffer.allocUnsafe(4 + payload.length);
  out.writeUInt32BE(payload.length, 0);
  payload.copy(out, 4);
  return out;
}

export interface Control {
  type: number;
  contentTypes: string[];
  /** Bytes of the input the frame took. */
  length: number;
}

/**
 * The control frame at the start of `buf`, or undefined while it is incomplete; throws when the bytes are not
 * a control frame (a reader sends nothing else to a writer).
 */
export function readControl(buf: Buffer): Control | undefined {
  if (buf.length < 8) return undefined;
  if (buf.readUInt32BE(0) !== 0) throw new Error('collector sent a data frame, want a control frame');
  const len = buf.readUInt32BE(4);
  if (len < 4 || len > MAX_CONTROL_LENGTH) throw new Error(`control frame of ${len} bytes`);
  if (buf.length < 8 + len) return undefined;
  const type = buf.readUInt32BE(8);
  const contentTypes: string[] = [];
  for (let off = 12; off < 8 + len;) {
    if (off + 8 > 8 + len) throw new Error('control frame field runs past the frame');
    const fieldType = buf.readUInt32BE(off);
    const fieldLength = buf.readUInt32BE(off + 4);
    if (off + 8 + fieldLength > 8 + len) throw new Error('control frame field runs past the frame');
    if (fieldType === FIELD_CONTENT_TYPE) contentTypes.push(buf.toString('latin1', off + 8, off + 8 + fieldLength));
    off += 8 + fieldLength;
  }
  return { type, contentTypes, length: 8 + len };
}
