// A deliberately small template language: `{{ dotted.name }}` and nothing else.
// Small enough that validation can list every variable a template uses and reject unknown ones
// before a machine ever boots with a half-filled command line.

const PLACEHOLDER = /\{\{\s*([^{}]*?)\s*\}\}/g;
const NAME = /^[a-zA-Z][a-zA-Z0-9]*(\.[a-zA-Z][a-zA-Z0-9]*)*$/;

/** Variables every template may use; `render` supplies all of them. */
export const TEMPLATE_VARIABLES = [
  'host.name', 'host.ip', 'host.mac', 'host.role', 'host.hostname',
  'site.name', 'site.gateway', 'site.dns', 'site.domain', 'site.netmask', 'site.prefix',
  'agent.url',
  'image.name',
  'urls.kernel', 'urls.initrd', 'urls.config', 'urls.phoneHome',
  'token',
] as const;

export type TemplateVariable = (typeof TEMPLATE_VARIABLES)[number];
export type TemplateValues = Record<TemplateVariable, string>;

export interface TemplateUse {
  name: string;
  /** Offset of the `{{` in the template text. */
  offset: number;
}

/** Every placeholder a template uses, in order. */
export function templateUses(text: string): TemplateUse[] {
  const uses: TemplateUse[] = [];
  for (const m of text.matchAll(PLACEHOLDER)) uses.push({ name: m[1] ?? '', offset: m.index ?? 0 });
  return uses;
}

export interface TemplateProblem {
  offset: number;
  message: string;
}

/** Problems with a template's placeholders: malformed names and unknown variables. */
export function checkTemplate(text: string): TemplateProblem[] {
  const known = new Set<string>(TEMPLATE_VARIABLES);
  const problems: TemplateProblem[] = [];
  for (const use of templateUses(text)) {
    if (!NAME.test(use.name)) problems.push({ offset: use.offset, message: `malformed template placeholder "{{ ${use.name} }}"` });
    else if (!known.has(use.name)) problems.push({ offset: use.offset, message: `unknown template variable "${use.name}" (known: ${TEMPLATE_VARIABLES.join(', ')})` });
  }
  const stray = text.replace(PLACEHOLDER, (m) => ' '.repeat(m.length)).search(/\{\{|\}\}/);
  if (stray >= 0) problems.push({ offset: stray, message: 'unbalanced "{{" or "}}" in template' });
  return problems;
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
  return text.replace(PLACEHOLDER, (_m, name: string) => values[name as TemplateVariable]);
}
