/**
 * What a PromQL expression reads: metric names with the labels their selectors match on, and the labels
 * grouping clauses (`by`, `without`, `on`, `ignoring`, `group_left/right`) need. A small tokenizer, enough
 * for rules and dashboards: strings, numbers, durations, `$grafana_variables` and `{{ templates }}` are skipped.
 */

export interface PromqlUse {
  /** Metric name → label names its selectors match on. */
  selectors: Map<string, Set<string>>;
  /** Labels named in grouping clauses; they must exist on the metrics aggregated. */
  grouping: Set<string>;
}

const FUNCTIONS_AND_AGGREGATIONS = /^(sum|min|max|avg|group|stddev|stdvar|count|count_values|bottomk|topk|quantile|limitk|limit_ratio|rate|irate|increase|delta|idelta|deriv|predict_linear|histogram_quantile|histogram_count|histogram_sum|histogram_fraction|histogram_avg|histogram_stddev|histogram_stdvar|abs|absent|absent_over_time|ceil|floor|round|clamp|clamp_min|clamp_max|changes|resets|exp|ln|log2|log10|sqrt|scalar|vector|sort|sort_desc|sort_by_label|sort_by_label_desc|time|timestamp|label_replace|label_join|day_of_month|day_of_week|day_of_year|days_in_month|hour|minute|month|year|[a-z_]+_over_time|sgn|pi|deg|rad|acos|asin|atan|cos|sin|tan|acosh|asinh|atanh|cosh|sinh|tanh|label_values|query_result|metrics|label_names)$/;
const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'atan2', 'inf', 'nan']);
const GROUPING = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);

type Tok = { kind: 'ident' | 'punct' | 'string' | 'other'; text: string };

function tokenize(expr: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < expr.length) {
    const c = expr[i]!;
    if (/\s/.test(c)) { i++; continue; }
    if (expr.startsWith('{{', i)) { // Grafana legend / alert annotation templates
      const end = expr.indexOf('}}', i + 2);
      i = end < 0 ? expr.length : end + 2;
      continue;
    }
    if (c === '"' || c === "'" || c === '`') {
      let j = i + 1;
      while (j < expr.length && expr[j] !== c) j += expr[j] === '\\' ? 2 : 1;
      out.push({ kind: 'string', text: expr.slice(i + 1, j) });
      i = j + 1;
      continue;
    }
    if (c === '[') { // range or subquery: durations and $__rate_interval
      const end = expr.indexOf(']', i);
      i = end < 0 ? expr.length : end + 1;
      continue;
    }
    if (c === '$') { // Grafana variables
      let j = i + 1;
      while (j < expr.length && /[\w{}]/.test(expr[j]!)) j++;
      i = j;
      continue;
    }
    const ident = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(expr.slice(i));
    if (ident) {
      out.push({ kind: 'ident', text: ident[0] });
      i += ident[0].length;
      continue;
    }
    const num = /^(0x[0-9a-fA-F]+|[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?[a-z]*)/.exec(expr.slice(i));
    if (num && num[0]) {
      out.push({ kind: 'other', text: num[0] });
      i += num[0].length;
      continue;
    }
    const op = /^(==|!=|=~|!~|>=|<=|[(){},=<>+\-*/%^])/.exec(expr.slice(i));
    out.push({ kind: op ? 'punct' : 'other', text: op ? op[0] : c });
    i += op ? op[0].length : 1;
  }
  return out;
}

export function promqlUses(expr: string): PromqlUse {
  const toks = tokenize(expr);
  const selectors = new Map<string, Set<string>>();
  const grouping = new Set<string>();
  const use = (metric: string) => {
    let s = selectors.get(metric);
    if (!s) selectors.set(metric, (s = new Set()));
    return s;
  };
  /** Label names of a `{...}` matcher list starting at toks[i] === '{'; returns the index after '}'. */
  const matchers = (i: number, into: Set<string>): number => {
    let j = i + 1;
    while (j < toks.length && toks[j]!.text !== '}') {
      if (toks[j]!.kind === 'ident' && /^(=|!=|=~|!~)$/.test(toks[j + 1]?.text ?? '')) into.add(toks[j]!.text);
      j++;
    }
    return j + 1;
  };
  for (let i = 0; i < toks.length; i++) {
    const t = toks[i]!;
    if (t.kind === 'punct' && t.text === '{') { // a selector without a metric name: {__name__="x"}
      const labels = new Set<string>();
      i = matchers(i, labels) - 1;
      continue;
    }
    if (t.kind !== 'ident') continue;
    const next = toks[i + 1];
    if (GROUPING.has(t.text)) {
      if (next?.text === '(') {
        let j = i + 2;
        for (; j < toks.length && toks[j]!.text !== ')'; j++) if (toks[j]!.kind === 'ident') grouping.add(toks[j]!.text);
        i = j;
      }
      continue;
    }
    if (KEYWORDS.has(t.text)) continue;
    // `sum(...)`, and `sum by (x) (...)` / `sum without (x) (...)`
    if ((next?.text === '(' || next?.text === 'by' || next?.text === 'without') && FUNCTIONS_AND_AGGREGATIONS.test(t.text)) continue;
    const labels = use(t.text);
    if (next?.text === '{') i = matchers(i + 1, labels) - 1;
  }
  return { selectors, grouping };
}

/** Grafana's `label_values(metric{...}, label)` / `label_values(label)` variable queries. */
export function labelValuesUses(query: string): PromqlUse {
  const m = /^\s*label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$/s.exec(query);
  if (!m) return promqlUses(query);
  const inner = promqlUses(m[1]!);
  for (const labels of inner.selectors.values()) labels.add(m[2]!);
  return inner;
}

/** Series names → label names seen, from a Prometheus text exposition. */
export function exposedSeries(text: string): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s/.exec(line);
    if (!m) continue;
    let s = out.get(m[1]!);
    if (!s) out.set(m[1]!, (s = new Set()));
    for (const l of (m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"/g)) s.add(l[1]!);
  }
  return out;
}
