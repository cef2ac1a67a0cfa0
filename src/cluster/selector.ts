/**
 * Kubernetes label selectors in their string form (`app=web,tier!=db`, `env in (a,b)`, `!legacy`), as
 * the `labels` and `namespace_labels` options and `kubectl -l` take them.
 */
export type Requirement =
  | { key: string; op: 'in' | 'notin'; values: string[] }
  | { key: string; op: 'exists' | 'notexists' };

export interface LabelSelector {
  readonly text: string;
  readonly requirements: Requirement[];
  matches(labels: Record<string, string>): boolean;
}

export class SelectorError extends Error {}

const KEY = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

/** Splits at commas that are not inside `( ... )`. */
function splitTop(s: string): string[] {
  const out: string[] = [];
  let depth = 0, start = 0;
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '(') depth++;
    else if (s[i] === ')') depth--;
    else if (s[i] === ',' && depth === 0) {
      out.push(s.slice(start, i));
      start = i + 1;
    }
  }
  out.push(s.slice(start));
  return out;
}

function key(k: string, text: string): string {
  if (!KEY.test(k)) throw new SelectorError(`invalid label key ${JSON.stringify(k)} in selector ${JSON.stringify(text)}`);
  return k;
}

function value(v: string, text: string): string {
  if (!VALUE.test(v)) throw new SelectorError(`invalid label value ${JSON.stringify(v)} in selector ${JSON.stringify(text)}`);
  return v;
}

export function parseSelector(text: string): LabelSelector {
  const requirements: Requirement[] = [];
  if (text.trim() !== '') {
    for (const raw of splitTop(text)) {
      const part = raw.trim();
      let m: RegExpExecArray | null;
      if ((m = /^(\S+)\s+(in|notin)\s*\((.*)\)$/.exec(part))) {
        const values = m[3]!.split(',').map((v) => value(v.trim(), text));
        requirements.push({ key: key(m[1]!, text), op: m[2] as 'in' | 'notin', values });
      } else if ((m = /^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(part))) {
        requirements.push({ key: key(m[1]!, text), op: m[2] === '!=' ? 'notin' : 'in', values: [value(m[3]!, text)] });
      } else if ((m = /^!\s*(\S+)$/.exec(part))) {
        requirements.push({ key: key(m[1]!, text), op: 'notexists' });
      } else if (/^\S+$/.test(part)) {
        requirements.push({ key: key(part, text), op: 'exists' });
      } else {
        throw new SelectorError(`cannot parse ${JSON.stringify(part)} in selector ${JSON.stringify(text)}`);
      }
    }
  }
  return {
    text,
    requirements,
    matches(labels) {
      for (const r of requirements) {
        const has = Object.prototype.hasOwnProperty.call(labels, r.key);
        switch (r.op) {
          case 'exists': if (!has) return false; break;
          case 'notexists': if (has) return false; break;
          case 'in': if (!has || !r.values.includes(labels[r.key]!)) return false; break;
          case 'notin': if (has && r.values.includes(labels[r.key]!)) return false; break;
        }
      }
      return true;
    },
  };
}
