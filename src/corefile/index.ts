export * from './types.js';
export { parseCorefile, loadCorefile, type ParseOptions } from './parser.js';
export { parseServerKey, defaultPort } from './address.js';
export { validateCorefile, type DirectiveRegistry } from './validate.js';
export { readConfigFile } from './imports.js';
