/**
 * `{$VAR}` and `{%VAR%}` substitution, applied by the parser to keys, directive names, arguments and import
 * patterns. An unset variable becomes the empty string; there are no defaults (CoreDNS replaceEnvVars).
 */
export function expandEnv(token: string, env: NodeJS.ProcessEnv): string {
  return replaceReferences(replaceReferences(token, '{%', '%}', env), '{$', '}', env);
}

function replaceReferences(s: string, open: string, close: string, env: NodeJS.ProcessEnv): string {
  let out = '';
  let rest = s;
  for (;;) {
    const start = rest.indexOf(open);
    if (start < 0) break;
    const end = rest.indexOf(close, start + open.length);
    // An empty name (`{$}`) stops substitution for the rest of the token, as in CoreDNS.
    if (end <= start + open.length) break;
    out += rest.slice(0, start) + (env[rest.slice(start + open.length, end)] ?? '');
    rest = rest.slice(end + close.length);
  }
  return out + rest;
}
