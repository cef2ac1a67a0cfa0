/** CoreDNS-style log lines: `[INFO] plugin/reload: Running configuration SHA512 = ...`. */
type Level = 'INFO' | 'WARNING' | 'ERROR' | 'DEBUG';

let sink: (line: string) => void = (line) => process.stderr.write(line + '\n');

/** Tests capture log lines here. */
export function setLogSink(fn: (line: string) => void): () => void {
  const prev = sink;
  sink = fn;
  return () => { sink = prev; };
}

function emit(level: Level, scope: string | undefined, msg: string): void {
  sink(`[${level}] ${scope ? scope + ': ' : ''}${msg}`);
}

export interface Logger {
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

/** A logger for a plugin (`plugin/forward`) or a part of the core. */
export function logger(scope?: string): Logger {
  return {
    info: (m) => emit('INFO', scope, m),
    warn: (m) => emit('WARNING', scope, m),
    error: (m) => emit('ERROR', scope, m),
  };
}

/** Query log lines go to stdout like CoreDNS's log plugin. */
export function writeQueryLog(line: string): void {
  process.stdout.write(line + '\n');
}
