/**
 * CoreDNS-style log lines, `[INFO] plugin/reload: Running configuration SHA512 = ...`, each tagged with
 * the component that wrote it. A component gets its Logger from whoever starts it (the DNS server hands
 * the kubernetes plugin's sources `plugin/kubernetes`, the VIP programmer hands them `vip`), so a line
 * says which binary part it came from.
 */
type Level = 'INFO' | 'WARNING' | 'ERROR' | 'DEBUG';

let sink: (line: string) => void = (line) => process.stderr.write(line + '\n');

/** Tests capture log lines here; returns the function that restores the previous sink. */
export function setLogSink(fn: (line: string) => void): () => void {
  const prev = sink;
  sink = fn;
  return () => { sink = prev; };
}

function emit(level: Level, tag: string | undefined, msg: string): void {
  sink(`[${level}] ${tag ? tag + ': ' : ''}${msg}`);
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

/** Query log lines go to stdout like CoreDNS's log plugin. */
export function writeQueryLog(line: string): void {
  process.stdout.write(line + '\n');
}
