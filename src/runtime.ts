// Imported first by every entry point: ES modules run in import order, so this body runs before any
// other module of ours allocates much.

/** The Node release lines the suite and the benchmark run on (README "Runtime"); the first one is the image's. */
export const SUPPORTED_LINES = [26, 24, 22] as const;

/**
 * A small young generation: loading 10k Services promotes ~40 MB through it, and V8 keeps a large one
 * resident for good (README "Runtime"). V8 sizes the heap when the isolate starts, so
 * v8.setFlagsFromString() is too late; `env -S` in the shebang is GNU-only (BusyBox env refuses it).
 */
export const SEMI_SPACE_FLAG = '--max-semi-space-size=2';

const given = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)].some((a) => a.startsWith('--max-semi-space-size'));
// Node >= 22.15: replaces this process (same pid, so pid files and signals still hold). Not in @types/node 20.
const execve = (process as { execve?: (file: string, args: string[]) => never }).execve;
if (!given && execve) execve(process.execPath, [process.execPath, SEMI_SPACE_FLAG, ...process.execArgv, ...process.argv.slice(1)]);

/** Why this Node is not one the project supports, for the server's start-up log; undefined when it is. */
export function unsupportedRuntime(version = process.versions.node): string | undefined {
  if ((SUPPORTED_LINES as readonly number[]).includes(Number(version.split('.')[0]))) return undefined;
  return `Node ${version} is outside the supported lines (${SUPPORTED_LINES.join(', ')}; README "Runtime")` +
    (given ? '' : `, and runs without ${SEMI_SPACE_FLAG} (more memory)`);
}
