import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A new directory under the system's temp dir, named `clusterdns-<name>-XXXXXX`. */
export function tempDir(name: string): string {
  return mkdtempSync(join(tmpdir(), `clusterdns-${name}-`));
}
