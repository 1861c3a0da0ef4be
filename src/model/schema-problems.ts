// Turns ajv's errors into one readable problem per fault, each at the YAML node that has it.

import type { ErrorObject } from 'ajv';
import { problem } from './problems.ts';
import type { LabProblem } from './types.ts';
import type { YamlFile, YamlPath } from './yaml-source.ts';

const FORMAT_MESSAGES: Record<string, string> = { ipv4: 'must be an IPv4 address like 10.77.0.10' };

const TYPE_NAMES: Record<string, string> = {
  object: 'a mapping',
  array: 'a list',
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  boolean: 'true or false',
};

export function schemaProblems(yaml: YamlFile, errors: readonly ErrorObject[]): LabProblem[] {
  const problems: LabProblem[] = [];
  const seen = new Set<string>();
  for (const error of withoutBranchNoise(errors)) {
    const { path, target, message } = describe(error);
    const ref = yaml.refOf(path, target);
    const where = path.join('.');
    const text = where === '' ? message : `${where}: ${message}`;
    const key = `${ref.line}:${ref.col}:${text}`;
    if (seen.has(key)) continue;
    seen.add(key);
    problems.push(problem(ref, 'schema', text));
  }
  return problems;
}

/**
 * A failed oneOf/anyOf also reports why each alternative failed, and a failed if/then reports
 * the `if` itself; the combinator's own message (or the `then` errors) say it better.
 */
function withoutBranchNoise(errors: readonly ErrorObject[]): ErrorObject[] {
  const combinators = new Set(errors.filter((e) => e.keyword === 'oneOf' || e.keyword === 'anyOf').map((e) => e.schemaPath));
  const underCombinator = (schemaPath: string): boolean => {
    // each ancestor of the path, checked in a set: a scan of every combinator per error was quadratic in big files
    for (let i = schemaPath.lastIndexOf('/'); i > 0; i = schemaPath.lastIndexOf('/', i - 1)) if (combinators.has(schemaPath.slice(0, i))) return true;
    return false;
  };
  return errors.filter((e) => e.keyword !== 'if' && !(combinators.size > 0 && underCombinator(e.schemaPath)));
}

function pathOf(instancePath: string): string[] {
  if (instancePath === '') return [];
  return instancePath.slice(1).split('/').map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'));
}

function customMessage(error: ErrorObject, name: 'errorMessage' | 'patternErrorMessage'): string | undefined {
  const message: unknown = error.parentSchema?.[name];
  return typeof message === 'string' ? message : undefined;
}

function describe(error: ErrorObject): { path: YamlPath; target: 'value' | 'key'; message: string } {
  const path = pathOf(error.instancePath);
  const params = error.params as Record<string, unknown>;
  if (error.propertyName !== undefined) {
    return { path: [...path, error.propertyName], target: 'key', message: `key "${error.propertyName}" ${customMessage(error, 'patternErrorMessage') ?? error.message ?? 'is not allowed'}` };
  }
  switch (error.keyword) {
    case 'required':
      return { path, target: 'value', message: `missing required field "${String(params.missingProperty)}"` };
    case 'dependencies':
      return { path, target: 'value', message: `"${String(params.property)}" needs "${String(params.missingProperty)}" as well` };
    case 'additionalProperties': {
      const allowed = Object.keys((error.parentSchema?.properties ?? {}) as object);
      return {
        path: [...path, String(params.additionalProperty)],
        target: 'key',
        message: `unknown field${allowed.length ? ` (allowed: ${allowed.join(', ')})` : ''}`,
      };
    }
    case 'enum':
      return { path, target: 'value', message: `must be one of ${(params.allowedValues as unknown[]).map((v) => String(v)).join(', ')}` };
    case 'const':
      return { path, target: 'value', message: `must be ${JSON.stringify(params.allowedValue)}` };
    case 'type': {
      const types = String(params.type).split(',');
      return { path, target: 'value', message: `must be ${types.map((t) => TYPE_NAMES[t] ?? t).join(' or ')}` };
    }
    case 'pattern':
      return { path, target: 'value', message: customMessage(error, 'patternErrorMessage') ?? `must match ${String(params.pattern)}` };
    case 'format':
      return { path, target: 'value', message: FORMAT_MESSAGES[String(params.format)] ?? `must be a valid ${String(params.format)}` };
    default:
      return { path, target: 'value', message: customMessage(error, 'errorMessage') ?? error.message ?? `fails ${error.keyword}` };
  }
}
