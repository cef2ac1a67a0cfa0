/**
 * Go `time.ParseDuration` / `Duration.String` semantics: Corefiles written for CoreDNS use Go durations
 * (`5s`, `1m30s`, `500ms`, `1.5h`) and CoreDNS prints them back in Go's form (`5m0s`) in log lines.
 */
const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, 'μs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Milliseconds of a Go duration string; throws with Go's wording on bad input. */
export function parseDuration(text: string): number {
  const m = /^([-+]?)(.*)$/.exec(text)!;
  const body = m[2]!;
  if (body === '0') return 0;
  if (body === '') throw new Error(`time: invalid duration "${text}"`);
  const part = /(\d*\.?\d*)([a-zµμ]+)/gy;
  let total = 0;
  let at = 0;
  for (let p = part.exec(body); p; p = part.exec(body)) {
    const [, num, unit] = p;
    if (!num || num === '.') throw new Error(`time: invalid duration "${text}"`);
    const scale = UNIT_MS[unit!];
    if (scale === undefined) throw new Error(`time: unknown unit "${unit}" in duration "${text}"`);
    total += Number(num) * scale;
    at = part.lastIndex;
  }
  if (at !== body.length) {
    throw new Error(/^\d*\.?\d*$/.test(body.slice(at)) && at === 0 ? `time: missing unit in duration "${text}"` : `time: invalid duration "${text}"`);
  }
  return m[1] === '-' ? -total : total;
}

/** Milliseconds of a Go duration, or undefined when `text` is not one (for options with their own wording). */
export function tryParseDuration(text: string): number | undefined {
  try {
    return parseDuration(text);
  } catch {
    return undefined;
  }
}

/** Go's `Duration.String()`: `30s`, `5m0s`, `1h0m0s`, `1.5s`, `500ms`, `0s`. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  const sign = ms < 0 ? '-' : '';
  const abs = Math.abs(ms);
  if (abs < 1000) {
    const ns = Math.round(abs * 1e6);
    if (ns < 1000) return `${sign}${ns}ns`;
    if (ns < 1e6) return `${sign}${trim(ns / 1e3)}µs`;
    return `${sign}${trim(ns / 1e6)}ms`;
  }
  const h = Math.floor(abs / 3_600_000);
  const mnt = Math.floor((abs % 3_600_000) / 60_000);
  const s = trim((abs % 60_000) / 1000);
  if (h) return `${sign}${h}h${mnt}m${s}s`;
  if (mnt) return `${sign}${mnt}m${s}s`;
  return `${sign}${s}s`;
}

function trim(n: number): string {
  return String(Number(n.toFixed(9)));
}
