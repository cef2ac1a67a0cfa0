/**
 * CoreDNS-style log lines, `[INFO] plugin/reload: Running configuration SHA512 = ...`, each tagged with
 * the component that wrote it. A component gets its Logger from whoever starts it (the DNS server hands
 * the kubernetes plugin's sources `plugin/kubernetes`, the VIP programmer hands them `vip`), so a line
 * says which binary part it came from.
 */
type Level = 'INFO' | 'WARNING' | 'ERROR' | 'DEBUG';

/**
 * Output not yet taken by the reader of stdout or stderr (Node writes to a pipe asynchronously and buffers
 * what a stalled reader does not take); past it lines are dropped, never queued without end.
 */
export const LOG_BUFFER_BYTES = 1 << 20;

function bounded(stream: NodeJS.WriteStream, line: string): boolean {
  if (stream.writableLength > LOG_BUFFER_BYTES) return false;
  stream.write(line + '\n');
  return true;
}

let sink: (line: string) => void = (line) => { bounded(process.stderr, line); };

/** Tests capture log lines here; returns the function that restores the previous sink. */
export function setLogSink(fn: (line: string) => void): () => void {
  const prev = sink;
  sink = fn;
  return () => { sink = prev; };
}

/** One event, one line: a name or message holding a newline or another control character must not forge lines. */
export function escapeControl(text: string): string {
  // eslint-disable-next-line no-control-regex
  return /[\x00-\x1f\x7f]/.test(text) ? text.replace(/[\x00-\x1f\x7f]/g, (c) => (c === '\n' ? '\\n' : c === '\t' ? '\\t' : c === '\r' ? '\\r' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)) : text;
}

function emit(level: Level, tag: string | undefined, msg: string): void {
  sink(`[${level}] ${tag ? tag + ': ' : ''}${escapeControl(msg)}`);
}

export interface Logger {
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

/** A logger whose lines carry `tag` (`plugin/forward`, `vip`); untagged for the server core. */
export function logger(tag?: string): Logger {
  return {
    info: (m) => emit('INFO', tag, m),
    warn: (m) => emit('WARNING', tag, m),
    error: (m) => emit('ERROR', tag, m),
  };
}

/**
 * Query log lines go to stdout like CoreDNS's log plugin. False when the line was dropped because stdout's
 * reader is LOG_BUFFER_BYTES behind (CoreDNS would block on the write; we keep answering and count the loss).
 */
export function writeQueryLog(line: string): boolean {
  return bounded(process.stdout, line);
}
