import type { Test } from 'tap';

/** Collects the query-log lines (`[INFO] ...`) written to stdout; the test's own TAP stream passes through. */
export function captureQueryLog(t: Test): string[] {
  const lines: string[] = [];
  const write = process.stdout.write;
  process.stdout.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
    const text = String(chunk);
    if (!text.startsWith('[INFO] ')) return write.call(process.stdout, chunk, ...rest);
    lines.push(text.trimEnd());
    return true;
  }) as typeof process.stdout.write;
  t.teardown(() => { process.stdout.write = write; });
  return lines;
}
