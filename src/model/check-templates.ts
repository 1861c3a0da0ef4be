// Template placeholders in boot command lines and config templates, each reported at the
// placeholder's own line:col (in the profile YAML, or in the template file it names).

import { checkTemplate, templateUses } from '../core/template.ts';
import { firstInvisibleChar, INVISIBLE_MESSAGE } from './invisible-chars.ts';
import { firstProblems, problem } from './problems.ts';
import type { LabProblem, Profile } from './types.ts';
import { textRefs, type YamlFile } from './yaml-source.ts';

/** `maxProblems`: a template with more (a 1 MiB file of them) gets that many and one standing for the rest. */
export function checkProfileTemplates(profile: Profile, yaml: YamlFile, maxProblems: number): LabProblem[] {
  const boot = profile.boot;
  if (boot.kind !== 'image') return [];
  const problems = firstProblems(checkTemplate(boot.cmdline), maxProblems, (p) => problem(yaml.refInString(['boot', 'cmdline'], p.offset), 'template', `boot.cmdline: ${p.message}`));
  const config = boot.config;
  if (config) {
    const inFile = config.file !== undefined ? textRefs(config.file, config.template) : undefined;
    problems.push(
      ...firstProblems(checkTemplate(config.template), maxProblems, (p) =>
        inFile ? problem(inFile(p.offset), 'template', p.message) : problem(yaml.refInString(['boot', 'config', 'template'], p.offset), 'template', `boot.config.template: ${p.message}`),
      ),
    );
    // an inline template is a string of the profile, checked with every other string of it
    const invisible = inFile ? firstInvisibleChar(config.template) : undefined;
    if (invisible && inFile) problems.push(problem(inFile(invisible.offset), 'invisible-char', `${invisible.name} is ${INVISIBLE_MESSAGE}`));
  } else {
    for (const use of templateUses(boot.cmdline).filter((u) => u.name === 'urls.config')) {
      problems.push(problem(yaml.refInString(['boot', 'cmdline'], use.offset), 'template', `boot.cmdline uses urls.config but profile ${profile.name} has no boot.config to serve`));
    }
  }
  return problems;
}
