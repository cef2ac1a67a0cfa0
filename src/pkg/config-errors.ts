/** The errors a Corefile can raise; below every layer so that argument helpers and plugins share them. */

/** Errors a user can meet carry the place: `Corefile:12 - Error during parsing: ...`. */
export class CorefileError extends Error {
  constructor(readonly file: string, readonly line: number, message: string) {
    super(`${file}:${line} - Error during parsing: ${message}`);
  }
}

/** A plugin's setup error: `Corefile:12 - Error during setup: plugin/forward: ...`. */
export class SetupError extends Error {
  constructor(readonly file: string, readonly line: number, readonly plugin: string, message: string) {
    super(`${file}:${line} - Error during setup: plugin/${plugin}: ${message}`);
  }
}
