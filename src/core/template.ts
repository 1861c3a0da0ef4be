// A deliberately small template language: `{{ dotted.name }}` and nothing else.
// Small enough that validation can list every variable a template uses and reject unknown ones
// before a machine ever boots with a half-filled command line.

const NAME = /^[a-zA-Z][a-zA-Z0-9]*(\.[a-zA-Z][a-zA-Z0-9]*)*$/;

/** Variables every template may use; `render` supplies all of them. */
export const TEMPLATE_VARIABLES = [
  'host.name', 'host.ip', 'host.mac', 'host.role', 'host.hostname',
  'site.name', 'site.gateway', 'site.dns', 'site.domain', 'site.netmask', 'site.prefix',
  'agent.url',
  'image.name',
  'urls.kernel', 'urls.initrd', 'urls.config', 'urls.phoneHome', 'urls.report', 'urls.reportTarget', 'urls.nocloud',
  'token',
] as const;

export type TemplateVariable = (typeof TEMPLATE_VARIABLES)[number];
export type TemplateValues = Record<TemplateVariable, string>;

export interface TemplateUse {
  name: string;
  /** Offset of the `{{` in the template text. */
  offset: number;
}

/** Counts the characters a scan looks at (tests check that scanning stays linear in the text's length). */
export interface ScanMeter {
  steps: number;
}

interface Placeholder extends TemplateUse {
  /** Offset just past the closing `}}`. */
  end: number;
}

/**
 * Every `{{ ... }}` in order: a `{{`, then no brace up to the first `}}`, the name trimmed. One pass: each search
 * starts where the last one stopped, so no character is looked at more than twice, whatever the text (a regular
 * expression with `\s*` around a lazy group backtracked cubically on `{{` and a long run of spaces).
 */
function placeholders(text: string, meter?: ScanMeter): Placeholder[] {
  const found: Placeholder[] = [];
  let from = 0;
  for (;;) {
    const open = text.indexOf('{{', from);
    if (meter) meter.steps += (open < 0 ? text.length : open + 2) - from;
    if (open < 0) return found;
    const brace = firstBrace(text, open + 2);
    if (meter) meter.steps += (brace < 0 ? text.length : brace + 1) - (open + 2);
    if (brace < 0) return found;
    if (text[brace] === '}' && text[brace + 1] === '}') {
      found.push({ name: text.slice(open + 2, brace).trim(), offset: open, end: brace + 2 });
      from = brace + 2;
    } else from = open + 1; // `{{{` or a lone `}`: no placeholder starts here
  }
}

function firstBrace(text: string, from: number): number {
  for (let i = from; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x7b || c === 0x7d) return i;
  }
  return -1;
}

/** Every placeholder a template uses, in order. */
export function templateUses(text: string, meter?: ScanMeter): TemplateUse[] {
  return placeholders(text, meter).map(({ name, offset }) => ({ name, offset }));
}

export interface TemplateProblem {
  offset: number;
  message: string;
}

const KNOWN: ReadonlySet<string> = new Set<string>(TEMPLATE_VARIABLES);
const KNOWN_LIST = TEMPLATE_VARIABLES.join(', ');

/** Problems with a template's placeholders: malformed names and unknown variables. */
export function checkTemplate(text: string, meter?: ScanMeter): TemplateProblem[] {
  const known = KNOWN;
  const problems: TemplateProblem[] = [];
  const found = placeholders(text, meter);
  for (const use of found) {
    if (!NAME.test(use.name)) problems.push({ offset: use.offset, message: `malformed template placeholder "{{ ${use.name} }}"` });
    else if (!known.has(use.name)) problems.push({ offset: use.offset, message: `unknown template variable "${use.name}" (known: ${KNOWN_LIST})` });
  }
  const stray = strayBraces(text, found, meter);
  if (stray >= 0) problems.push({ offset: stray, message: 'unbalanced "{{" or "}}" in template' });
  return problems;
}

/** The first `{{` or `}}` outside every placeholder (both of its characters outside), or -1. */
function strayBraces(text: string, found: readonly Placeholder[], meter?: ScanMeter): number {
  let start = 0;
  for (const use of [...found, { offset: text.length, end: text.length }]) {
    const gap = text.slice(start, use.offset);
    if (meter) meter.steps += gap.length;
    const open = gap.indexOf('{{');
    const close = gap.indexOf('}}');
    if (open >= 0 || close >= 0) return start + (open < 0 ? close : close < 0 ? open : Math.min(open, close));
    start = use.end;
  }
  return -1;
}

export class TemplateError extends Error {
  override readonly name = 'TemplateError';
  constructor(message: string, readonly offset: number) {
    super(message);
  }
}

/** Fills a template; throws TemplateError on anything `checkTemplate` would report. */
export function fillTemplate(text: string, values: TemplateValues): string {
  const problem = checkTemplate(text)[0];
  if (problem) throw new TemplateError(problem.message, problem.offset);
  const parts: string[] = [];
  let start = 0;
  for (const use of placeholders(text)) {
    parts.push(text.slice(start, use.offset), values[use.name as TemplateVariable]);
    start = use.end;
  }
  parts.push(text.slice(start));
  return parts.join('');
}
