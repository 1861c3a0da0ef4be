import { labLimits, type LabLimits } from '../model/lab-limits.ts';
import { flag, UsageError, type ParsedArgs } from './args.ts';

/** The caps on what a commit may make forseti read, as flags; an agent with raised `lab.limits` wants its CI to match. */
export const LAB_LIMIT_FLAGS: Readonly<Record<string, keyof LabLimits>> = {
  'max-file-bytes': 'maxFileBytes',
  'max-lab-bytes': 'maxLabBytes',
  'max-yaml-aliases': 'maxYamlAliases',
  'max-yaml-depth': 'maxYamlDepth',
  'max-yaml-nodes': 'maxYamlNodes',
  'max-problems': 'maxProblems',
};

export function labLimitsFromArgs(args: ParsedArgs): LabLimits {
  const partial: Partial<Record<keyof LabLimits, number>> = {};
  for (const [name, key] of Object.entries(LAB_LIMIT_FLAGS)) {
    const value = flag(args, name);
    if (value === undefined) continue;
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`--${name} must be a whole number of at least 1`);
    partial[key] = n;
  }
  return labLimits(partial);
}
