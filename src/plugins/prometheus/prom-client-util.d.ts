/** prom-client's internal label hashing, the key of a metric's `hashMap` (see recorder.ts for why we need it). */
declare module 'prom-client/lib/util.js' {
  export function hashObject(labels: Record<string, string | number>, labelNames?: string[]): string;
}
