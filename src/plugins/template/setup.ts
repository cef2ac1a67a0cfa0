import type { Directive } from '../../corefile/types.js';
import type { PluginDefinition } from '../../server/types.js';
import { classNumber, rcodeNumber, typeByMnemonic } from '../../server/wire/constants.js';
import { SetupArgs } from '../../pkg/args.js';
import { Fall } from '../../pkg/fall.js';
import { GoRegexpError, goRegexp } from '../../pkg/goregexp.js';
import { GoTemplate, TemplateSyntaxError } from './gotemplate.js';
import { Template, templateMetrics, type TemplateRule } from './handler.js';

export function parseTemplate(d: Directive, blockZones: string[]): TemplateRule {
  const a = new SetupArgs('template');
  const [klass, type] = a.count(d, 2, Infinity, 'CLASS TYPE [ZONE...]');
  const qclass = classNumber(klass!);
  if (qclass === undefined) throw a.error(d, `invalid query class ${klass}`);
  const qtype = typeByMnemonic(type!);
  if (qtype === undefined) throw a.error(d, `invalid RR class ${type}`);
  const zones = d.args.length > 2 ? a.zones(d, d.args.slice(2)) : blockZones;
  const rule: TemplateRule = {
    zones, qclass, qtype, regex: [], regexText: [], answer: [], additional: [], authority: [], rcode: 0, fall: Fall.never,
  };
  for (const c of d.children) {
    switch (c.name) {
      case 'match':
        for (const re of a.count(c, 1, Infinity, 'REGEX...')) {
          try {
            rule.regex.push(goRegexp(re));
          } catch (e) {
            if (!(e instanceof GoRegexpError)) throw e;
            throw a.error(c, `could not parse regex: ${re}, ${e.message}`);
          }
          rule.regexText.push(re);
        }
        break;
      case 'answer': case 'additional': case 'authority':
        for (const text of a.count(c, 1, Infinity, 'RR...')) {
          try {
            rule[c.name].push(GoTemplate.parse(c.name, text));
          } catch (e) {
            if (!(e instanceof TemplateSyntaxError)) throw e;
            throw a.error(c, `could not compile template: ${text}, ${e.message}`);
          }
        }
        break;
      case 'rcode': {
        const [code] = a.count(c, 1, 1, 'CODE');
        const rcode = rcodeNumber(code!);
        if (rcode === undefined) throw a.error(c, `unknown rcode ${code}`);
        rule.rcode = rcode;
        break;
      }
      case 'fallthrough':
        rule.fall = a.fall(c);
        break;
      case 'upstream':
        // Deprecated in CoreDNS and ignored there: CNAME targets are always resolved through the server.
        break;
      case 'var': case 'expr':
        throw a.error(c, `'${c.name}' needs CoreDNS's expression language (expr-lang), which clusterdns does not implement`);
      case 'ederror': {
        const [code, reason] = a.count(c, 1, 2, 'EXTENDED_ERROR_CODE [EXTRA_REASON]');
        rule.ede = { code: a.uint(c, code, 0xffff), text: reason };
        break;
      }
      default:
        throw a.error(c, `unknown property '${c.name}'`);
    }
  }
  if (!rule.regex.length) {
    rule.regex.push(/.*/);
    rule.regexText.push('.*');
  }
  return rule;
}

export const definition: PluginDefinition = {
  name: 'template',
  setup(d, ctx) {
    return new Template(parseTemplate(d, ctx.zones), templateMetrics(ctx.shared.registry), ctx.shared, ctx.view);
  },
};
