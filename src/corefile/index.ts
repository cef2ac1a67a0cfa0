export * from './types.js';
export { parseCorefile, loadCorefile, type ParseOptions } from './parser.js';
export { parseServerKey, defaultPort } from './address.js';
export { cidrToReverseZones, isCidr, reverseName, ipFromReverseName } from './reverse.js';
export { validateCorefile, type DirectiveRegistry } from './validate.js';
export { formatDuration, parseDuration, tryParseDuration } from './duration.js';
