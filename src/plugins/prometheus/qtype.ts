import { typeName } from '../../server/wire/constants.js';

/** CoreDNS's `monitorType`: the qtypes that get their own `type` label; everything else is "other". */
const MONITORED = new Set([1, 28, 5, 48, 43, 15, 50, 47, 2, 12, 46, 6, 33, 16, 65, 64, 251, 252, 255]);

export function metricType(t: number): string {
  return MONITORED.has(t) ? typeName(t) : 'other';
}
